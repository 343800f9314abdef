"""The results schema: one JSON per submission and task, versioned, written atomically.

Layout (schema_version 2)::

    {"schema_version": 2,
     "submission": {model card from submission.yaml + "parameters"},
     "task": {"name", "fingerprint", "lead_hours", "channels": [{"key", "units"}]},
     "data": {"fingerprint", "title", "store", "climatology", "split", "n_init_times", "first_init_time", "last_init_time"},
     "metrics": {channel: {"physical" | "normalized": {metric: [value per lead]}}},
     "error_maps": {channel: {"lead_hours": int, "units": str, "rmse": [[lat x lon]]}},
     "provenance": {"git_commit", "git_dirty", "harness_version", "hardware", "wall_time_s", "evaluated_at"},
     "training": optional, trained submissions only: bench.training_record's summary and curve,
     "codec": codec-track results only (bench.codec_eval): latent shape and dtype, compression ratio,
              encode/decode throughput, the codec's describe(), zonal power spectra,
     "ensemble": optional, ensemble (probabilistic-track) submissions only: {"members", "spread_skill_correction",
                 "rank_histogram": {"weighting", "lead_hours", "frequencies": {channel: [[freq per rank] per lead]}},
                 "seconds_per_init_time": wall time of the evaluation per init time}}

Codec-track results (``submission.track == "codec"``) have one value per metric (a reconstruction has no
lead time: ``metrics[channel][space][metric] = [value]``), a third space ``unit_range`` (fields scaled
to [0, 1] by the train-split range, where PSNR and SSIM live) and the ``codec`` section; forecaster
files never carry ``codec``. Readers of schema_version 1 that predate the codec track refuse codec
files by the unknown ``codec`` field, with a message, rather than misreading them.

Version 2 names the data store by its title, fingerprint and file name (``store``; the URL of a remote
store), never by a local path, and records how the climatology was built (``bench.climatology``).
Version 1 files (``data.source``: the path the evaluator used) are still read and shown.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import ResultsError

SCHEMA_VERSION = 2
READABLE_SCHEMA_VERSIONS = (1, 2)
SPACES = ("physical", "normalized")
CODEC_SPACES = SPACES + ("unit_range",)  # codec track: fields scaled to [0, 1] by the train-split range


@dataclasses.dataclass
class Results:
    """One evaluation of one submission on one task."""

    submission: dict[str, Any]
    task: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, list[float | None]]]]
    error_maps: dict[str, dict[str, Any]]
    provenance: dict[str, Any]
    schema_version: int = SCHEMA_VERSION
    training: dict[str, Any] | None = None
    codec: dict[str, Any] | None = None
    ensemble: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        raw = dataclasses.asdict(self)
        if raw["codec"] is None:
            del raw["codec"]  # forecaster files stay exactly as before the codec track
        return raw

    @property
    def is_codec(self) -> bool:
        """True for codec-track (reconstruction) results."""
        return self.submission.get("track") == "codec"

    @classmethod
    def from_json(cls, raw: Any, source: str = "results") -> "Results":
        validate_results_json(raw, source)
        return cls(**raw)

    @classmethod
    def read(cls, path: Path) -> "Results":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ResultsError(f"{path}: not readable JSON ({exc})") from exc
        return cls.from_json(raw, str(path))

    def metric(self, channel: str, metric: str, space: str = "physical") -> list[float | None]:
        return self.metrics[channel][space][metric]


def validate_results_json(raw: Any, source: str = "results") -> None:
    """Check a results document against schema_version 1 or 2; raise ResultsError naming the problem."""
    if not isinstance(raw, dict):
        raise ResultsError(f"{source}: top level is not an object")
    if raw.get("schema_version") not in READABLE_SCHEMA_VERSIONS:
        raise ResultsError(f"{source}: schema_version {raw.get('schema_version')!r}, this harness reads {list(READABLE_SCHEMA_VERSIONS)}; "
                           "re-score it with bench evaluate (or bench reproduce --rewrite)")
    required = {"submission": dict, "task": dict, "data": dict, "metrics": dict, "error_maps": dict, "provenance": dict}
    for key, kind in required.items():
        if not isinstance(raw.get(key), kind):
            raise ResultsError(f"{source}: field {key!r} is missing or not an {kind.__name__}")
    for key in ("name", "track"):
        if not isinstance(raw["submission"].get(key), str):
            raise ResultsError(f"{source}: submission.{key} is missing")
    for key in ("name", "fingerprint", "lead_hours", "channels"):
        if key not in raw["task"]:
            raise ResultsError(f"{source}: task.{key} is missing")
    if "fingerprint" not in raw["data"]:
        raise ResultsError(f"{source}: data.fingerprint is missing")
    is_codec = raw["submission"]["track"] == "codec"
    # A reconstruction has no lead time: codec results hold one value per metric.
    n_leads = 1 if is_codec else len(raw["task"]["lead_hours"])
    spaces_allowed = CODEC_SPACES if is_codec else SPACES
    if is_codec != isinstance(raw.get("codec"), dict):
        raise ResultsError(f"{source}: " + ("codec-track results need a 'codec' object" if is_codec else "only codec-track results carry 'codec'"))
    for channel, spaces in raw["metrics"].items():
        if not isinstance(spaces, dict) or not all(isinstance(m, dict) for m in spaces.values()):
            raise ResultsError(f"{source}: metrics.{channel} must map spaces to metric tables")
        for space, metrics in spaces.items():
            if space not in spaces_allowed:
                raise ResultsError(f"{source}: metrics.{channel} has unknown space {space!r}")
            for name, values in metrics.items():
                if not isinstance(values, list) or len(values) != n_leads:
                    raise ResultsError(f"{source}: metrics.{channel}.{space}.{name} must have {n_leads} values")
                if not all(v is None or isinstance(v, (int, float)) for v in values):
                    raise ResultsError(f"{source}: metrics.{channel}.{space}.{name} holds non-numbers")
    if raw.get("training") is not None and not isinstance(raw["training"], dict):
        raise ResultsError(f"{source}: training must be an object or absent")
    if raw.get("ensemble") is not None:
        validate_ensemble_json(raw["ensemble"], n_leads, source)
    unknown = set(raw) - set(required) - {"schema_version", "training", "codec", "ensemble"}
    if unknown:
        raise ResultsError(f"{source}: unknown fields {sorted(unknown)}")


def store_name(source: str) -> str:
    """How results name a data store: a remote store's URL, a local one's file name (a local path means nothing to a reader)."""
    text = str(source)
    return text if "://" in text else Path(text).name


def recorded_store(data: dict) -> str | None:
    """A results file's store name: recorded (schema 2), or the file name of schema 1's absolute source path."""
    if data.get("store"):
        return str(data["store"])
    return store_name(str(data["source"])) if data.get("source") else None


def validate_ensemble_json(ensemble: Any, n_leads: int, source: str) -> None:
    """Check the optional ensemble block: member count and one frequency row of M + 1 ranks per lead."""
    if not isinstance(ensemble, dict):
        raise ResultsError(f"{source}: ensemble must be an object or absent")
    members = ensemble.get("members")
    if type(members) is not int or members < 1:
        raise ResultsError(f"{source}: ensemble.members must be a positive integer")
    histogram = ensemble.get("rank_histogram")
    frequencies = histogram.get("frequencies") if isinstance(histogram, dict) else None
    if not isinstance(frequencies, dict):
        raise ResultsError(f"{source}: ensemble.rank_histogram.frequencies must map channels to rows per lead")
    for channel, rows in frequencies.items():
        if not (isinstance(rows, list) and len(rows) == n_leads and all(
                isinstance(row, list) and len(row) == members + 1 and all(isinstance(v, (int, float)) for v in row)
                for row in rows)):
            raise ResultsError(f"{source}: ensemble.rank_histogram.frequencies.{channel} must hold {n_leads} rows of {members + 1} numbers")


def json_number(value: float, digits: int = 7) -> float | None:
    """A float rounded to ``digits`` significant digits for JSON; NaN becomes null."""
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{digits}g}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temp file and a rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def results_path(out_dir: Path, task_name: str, submission_name: str, variant: str | None = None) -> Path:
    """Where a submission's results for a task live: ``OUT/TASK/NAME.json``, or ``OUT/TASK/NAME.VARIANT.json``
    for a second board of the same task (e.g. a codec scored on the real ERA5 sample)."""
    return Path(out_dir) / task_name / (f"{submission_name}.{variant}.json" if variant else f"{submission_name}.json")


def write_results_json(raw: dict[str, Any], path: Path) -> Path:
    """Validate a results document and write it to ``path`` atomically, in the committed layout; returns the path."""
    validate_results_json(raw, str(path))
    atomic_write_text(Path(path), json.dumps(raw, indent=1, allow_nan=False) + "\n")
    return Path(path)


def write_results(results: Results, out_dir: Path, variant: str | None = None) -> Path:
    """Validate and write a results file atomically; returns its path."""
    path = results_path(out_dir, results.task["name"], results.submission["name"], variant)
    return write_results_json(results.to_json(), path)


def find_results(results_dir: Path) -> list[Path]:
    """Every results JSON under ``results_dir`` (one folder per task)."""
    return sorted(Path(results_dir).glob("*/*.json"))
