"""The results schema: one JSON per submission and task, versioned, written atomically.

Layout (schema_version 1)::

    {"schema_version": 1,
     "submission": {model card from submission.yaml + "parameters"},
     "task": {"name", "fingerprint", "lead_hours", "channels": [{"key", "units"}]},
     "data": {"fingerprint", "source", "title", "split", "n_init_times", "first_init_time", "last_init_time"},
     "metrics": {channel: {"physical" | "normalized": {metric: [value per lead]}}},
     "error_maps": {channel: {"lead_hours": int, "units": str, "rmse": [[lat x lon]]}},
     "provenance": {"git_commit", "git_dirty", "harness_version", "hardware", "wall_time_s", "evaluated_at"},
     "training": optional, trained submissions only: bench.training_record's summary and curve}
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

SCHEMA_VERSION = 1
SPACES = ("physical", "normalized")


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

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

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
    """Check a results document against schema_version 1; raise ResultsError naming the problem."""
    if not isinstance(raw, dict):
        raise ResultsError(f"{source}: top level is not an object")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema_version {raw.get('schema_version')!r}, expected {SCHEMA_VERSION}")
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
    n_leads = len(raw["task"]["lead_hours"])
    for channel, spaces in raw["metrics"].items():
        if not isinstance(spaces, dict) or not all(isinstance(m, dict) for m in spaces.values()):
            raise ResultsError(f"{source}: metrics.{channel} must map spaces to metric tables")
        for space, metrics in spaces.items():
            if space not in SPACES:
                raise ResultsError(f"{source}: metrics.{channel} has unknown space {space!r}")
            for name, values in metrics.items():
                if not isinstance(values, list) or len(values) != n_leads:
                    raise ResultsError(f"{source}: metrics.{channel}.{space}.{name} must have {n_leads} values")
                if not all(v is None or isinstance(v, (int, float)) for v in values):
                    raise ResultsError(f"{source}: metrics.{channel}.{space}.{name} holds non-numbers")
    if raw.get("training") is not None and not isinstance(raw["training"], dict):
        raise ResultsError(f"{source}: training must be an object or absent")
    unknown = set(raw) - set(required) - {"schema_version", "training"}
    if unknown:
        raise ResultsError(f"{source}: unknown fields {sorted(unknown)}")


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


def results_path(out_dir: Path, task_name: str, submission_name: str) -> Path:
    """Where a submission's results for a task live: ``OUT/TASK/NAME.json``."""
    return Path(out_dir) / task_name / f"{submission_name}.json"


def write_results(results: Results, out_dir: Path) -> Path:
    """Validate and write a results file atomically; returns its path."""
    raw = results.to_json()
    validate_results_json(raw)
    path = results_path(out_dir, results.task["name"], results.submission["name"])
    atomic_write_text(path, json.dumps(raw, indent=1, allow_nan=False) + "\n")
    return path


def find_results(results_dir: Path) -> list[Path]:
    """Every results JSON under ``results_dir`` (one folder per task)."""
    return sorted(Path(results_dir).glob("*/*.json"))
