"""`bench reproduce`: re-derive every committed result from the submissions and a named data store,
and compare each new number with the committed one.

Each committed results file (submission x task) is evaluated again, from the submission's code
(and committed weights) or its predictions file, on the store the user names; every metric value,
every error-map value and the facts (task and data fingerprints, init times, parameter count) are
compared. Numbers are stored rounded (7 significant digits for metrics, 4 for error maps), so two
numbers are equal when they differ by at most one unit in the last stored digit: a re-derivation
that rounds the other way on the last digit is equal, anything more is a difference, named with the
submission, metric, lead and both values. Nothing is written to the results unless ``--rewrite``
asks for it (after a deliberate harness change): then the differing files are re-written, and the
report lists what moved. Inputs of committed results that are not in git (an example predictions
file) are made first by the command ``leaderboard/reproduce.yaml`` records for them.
"""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

import bench
from bench.errors import BenchError, ReproduceError
from bench.provenance import PROJECT_ROOT, git_state
from bench.results import Results, atomic_write_text, find_results, recorded_store, store_name, write_results_json

if TYPE_CHECKING:
    from bench.evaluate import EvaluationSettings

REPORT_SCHEMA = "bench-reproduce/1"
SUBMISSION_FOLDERS = ("baselines", "submissions")
RECIPE_FILE = "reproduce.yaml"
MAX_LISTED_DIFFERENCES = 200


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Equal when two numbers differ by at most ``units`` in the last of ``digits`` stored significant digits."""

    digits: int
    units: float = 1.0

    def describe(self) -> str:
        return f"at most {self.units:g} unit in the {self.digits}th significant digit (the precision results files store)"

    def allows(self, committed: float | None, new: float | None) -> bool:
        if committed is None or new is None:
            return committed is None and new is None
        if committed == new:
            return True
        scale = max(abs(committed), abs(new))
        unit = 10.0 ** (math.floor(math.log10(scale)) - self.digits + 1)
        return abs(new - committed) <= self.units * unit * (1 + 1e-9)


DEFAULT_METRIC_TOLERANCE = Tolerance(7)
# Per metric; a metric not listed uses the default. Every metric is stored with 7 significant digits.
METRIC_TOLERANCES: dict[str, Tolerance] = {name: DEFAULT_METRIC_TOLERANCE for name in ("rmse", "mae", "bias", "acc", "crps", "spread")}
ERROR_MAP_TOLERANCE = Tolerance(4)
FACTS = (("task", "fingerprint"), ("data", "fingerprint"), ("data", "split"), ("data", "n_init_times"),
         ("data", "first_init_time"), ("data", "last_init_time"), ("submission", "parameters"))


@dataclasses.dataclass
class Difference:
    """One committed number (or fact) that the re-derivation does not reproduce."""

    where: str  # e.g. "metrics.2m_temperature.physical.rmse", "error_maps.2m_temperature", "data.fingerprint"
    committed: Any
    new: Any
    lead_hours: int | None = None
    note: str = ""

    def line(self) -> str:
        lead = f" at +{self.lead_hours}h" if self.lead_hours is not None else ""
        return f"{self.where}{lead}: committed {self.committed!r}, re-derived {self.new!r}{(' (' + self.note + ')') if self.note else ''}"


@dataclasses.dataclass
class Comparison:
    """How a re-derived results document compares with the committed one."""

    n_compared: int = 0
    differences: list[Difference] = dataclasses.field(default_factory=list)
    max_rel_diff: float = 0.0

    @property
    def equal(self) -> bool:
        return not self.differences

    def _track(self, committed: float | None, new: float | None) -> None:
        if committed is not None and new is not None and committed != new:
            self.max_rel_diff = max(self.max_rel_diff, abs(new - committed) / max(abs(committed), 1e-300))


def compare_results(committed: Results, new: Results) -> Comparison:
    """Every metric value, error-map value and fact of ``committed`` against ``new``."""
    out = Comparison()
    for section, key in FACTS:
        old_value, new_value = getattr(committed, section).get(key), getattr(new, section).get(key)
        out.n_compared += 1
        if old_value != new_value:
            out.differences.append(Difference(f"{section}.{key}", old_value, new_value, note=_fact_note(committed, section, key)))
    leads = committed.task.get("lead_hours", [])
    for channel, spaces in committed.metrics.items():
        for space, table in spaces.items():
            for metric, values in table.items():
                where = f"metrics.{channel}.{space}.{metric}"
                fresh = new.metrics.get(channel, {}).get(space, {}).get(metric)
                if fresh is None:
                    out.differences.append(Difference(where, values, None, note="not computed by this harness"))
                    continue
                tolerance = METRIC_TOLERANCES.get(metric, DEFAULT_METRIC_TOLERANCE)
                for i, (a, b) in enumerate(zip(values, fresh)):
                    out.n_compared += 1
                    out._track(a, b)
                    if not tolerance.allows(a, b):
                        out.differences.append(Difference(where, a, b, leads[i] if i < len(leads) else None))
    for channel, error_map in committed.error_maps.items():
        fresh = new.error_maps.get(channel, {}).get("rmse")
        old = error_map.get("rmse")
        where = f"error_maps.{channel}"
        if fresh is None or old is None or len(fresh) != len(old):
            out.differences.append(Difference(where, "present" if old else None, "present" if fresh else None))
            continue
        bad, worst = 0, (0.0, None, None)
        for row_old, row_new in zip(old, fresh):
            for a, b in zip(row_old, row_new):
                out.n_compared += 1
                out._track(a, b)
                if not ERROR_MAP_TOLERANCE.allows(a, b):
                    bad += 1
                    gap = abs((b or 0) - (a or 0))
                    if gap >= worst[0]:
                        worst = (gap, a, b)
        if bad:
            out.differences.append(Difference(where, worst[1], worst[2], error_map.get("lead_hours"),
                                              note=f"{bad} grid points differ; the largest shown"))
    return out


def _fact_note(committed: Results, section: str, key: str) -> str:
    """Why a fact differs, where the cause is known: another data store makes every number after it differ."""
    if (section, key) != ("data", "fingerprint"):
        return ""
    command = reproduce_command(committed.task.get("name"), committed.data, committed.submission.get("name"))
    return f"re-derived on another data store, so the numbers below differ too; pass --data with the store the committed result was computed on: {command}"


# ---- what to reproduce ------------------------------------------------------------------------


def find_submissions(project_root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Submission name -> directory, for every submission.yaml under baselines/ and submissions/."""
    found: dict[str, Path] = {}
    for folder in SUBMISSION_FOLDERS:
        for manifest in sorted((Path(project_root) / folder).glob("*/submission.yaml")):
            try:
                name = yaml.safe_load(manifest.read_text()).get("name")
            except (yaml.YAMLError, AttributeError):
                continue
            if isinstance(name, str):
                found.setdefault(name, manifest.parent)
    return found


@dataclasses.dataclass
class Entry:
    """One committed result and what re-deriving it gave."""

    path: Path
    submission: str
    task: str
    track: str = ""
    submission_dir: Path | None = None
    committed: Results | None = None
    new: Results | None = None
    status: str = "pending"  # equal | different | rewritten | failed
    comparison: Comparison | None = None
    error: str | None = None
    wall_time_s: float = 0.0


def plan(results_dir: Path, only: tuple[str, ...] = (), tasks: tuple[str, ...] = (),
         project_root: Path = PROJECT_ROOT) -> list[Entry]:
    """The committed results to re-derive, each with its submission directory (or the reason it has none)."""
    submissions = find_submissions(project_root)
    entries = []
    paths = find_results(results_dir)
    if not paths:
        raise ReproduceError(f"no committed results under {results_dir}; point --results at the results folder (leaderboard/results)")
    for path in paths:
        task, name = path.parent.name, path.stem
        entry = Entry(path=path, submission=name, task=task)
        try:
            entry.committed = Results.read(path)
            entry.submission, entry.task = entry.committed.submission["name"], entry.committed.task["name"]
            entry.track = entry.committed.submission.get("track", "")
        except BenchError as exc:
            entry.status, entry.error = "failed", f"committed file unreadable: {exc}"
        if (only and entry.submission not in only) or (tasks and entry.task not in tasks):
            continue
        entry.submission_dir = submissions.get(entry.submission)
        if entry.submission_dir is None and entry.status != "failed":
            entry.status = "failed"
            entry.error = f"no submission named {entry.submission!r} in {' or '.join(SUBMISSION_FOLDERS)}/; restore its directory"
        entries.append(entry)
    if only:
        unknown = set(only) - {e.submission for e in entries}
        if unknown:
            raise ReproduceError(f"--only {sorted(unknown)}: no committed results of that name under {results_dir}")
    return entries


def make_missing_inputs(entries: list[Entry], settings: EvaluationSettings, project_root: Path = PROJECT_ROOT,
                        log=print) -> list[str]:
    """Run the recorded command for every missing predictions file of a planned entry (``reproduce.yaml``)."""
    from bench.evaluate import predict
    from bench.submission import load_submission

    recipe_path = Path(project_root) / "leaderboard" / RECIPE_FILE
    recipes = (yaml.safe_load(recipe_path.read_text()) or {}).get("predictions", []) if recipe_path.is_file() else []
    made = []
    for entry in entries:
        if entry.submission_dir is None or entry.status == "failed":
            continue
        manifest = load_submission(entry.submission_dir).manifest
        if manifest.kind != "predictions" or entry.task not in manifest.predictions:
            continue
        target = entry.submission_dir / str(manifest.predictions[entry.task])
        if target.exists():
            continue
        recipe = next((r for r in recipes if (Path(project_root) / r["submission"]).resolve() == entry.submission_dir.resolve()
                       and r["task"] == entry.task), None)
        if recipe is None:
            entry.status = "failed"
            entry.error = f"predictions file {target} is missing and {RECIPE_FILE} records no command that makes it"
            continue
        source = Path(project_root) / recipe["from_code"]
        log(f"making {target.relative_to(project_root)}: bench predict {recipe['from_code']} --task {entry.task} --out {target.relative_to(project_root)}")
        predict(source, entry.task, dataclasses.replace(settings, split=entry.committed.data.get("split", "test")), target)
        made.append(str(target.relative_to(project_root)))
    return made


# ---- running and reporting --------------------------------------------------------------------


@dataclasses.dataclass
class ReproduceOptions:
    """How to run bench reproduce."""

    results_dir: Path
    settings: EvaluationSettings
    only: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    scheduler: str | None = None
    rewrite: bool = False
    report_path: Path | None = None
    chunk_batches: int = 8
    command: str = ""
    project_root: Path = PROJECT_ROOT  # where baselines/ and submissions/ live
    fields_stores: tuple[str, ...] = ()  # stores that codec results of other boards were scored on (--fields)


def fields_store_for(entry: Entry, stores: tuple[str, ...]) -> str | None:
    """The store a codec result of another board (e.g. real ERA5) was scored on, found by its recorded name."""
    data = entry.committed.data if entry.committed is not None else {}
    if entry.track != "codec" or not data.get("statistics"):
        return None  # scored on the prepared data's split
    wanted = recorded_store(data)
    for store in stores:
        if store_name(store) == wanted:
            return store
    raise ReproduceError(f"{entry.path} was scored on the store {wanted!r}; name it with --fields PATH/{wanted}")


def rewrite_file(path: Path, results: Results) -> None:
    """Re-write one committed results file in place (validated, atomic; a codec's board suffix is kept)."""
    write_results_json(results.to_json(), path)


def run_reproduce(options: ReproduceOptions, log=print) -> tuple[list[Entry], dict]:
    """Re-derive and compare every planned entry; returns the entries and the report (also written)."""
    from bench.distributed import EvaluationJob, open_runner, progress_over

    started = time.perf_counter()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    entries = plan(options.results_dir, options.only, options.tasks, options.project_root)
    made = make_missing_inputs(entries, options.settings, options.project_root, log=log)
    stores = {}
    for entry in entries:
        if entry.status != "failed":
            try:
                stores[entry.path] = fields_store_for(entry, options.fields_stores)
            except ReproduceError as exc:
                entry.status, entry.error = "failed", str(exc)
    runnable = [e for e in entries if e.status != "failed"]
    jobs = [EvaluationJob(e.submission_dir, e.task, dataclasses.replace(options.settings, split=e.committed.data.get("split", "test")),
                          stores[e.path]) for e in runnable]
    # (submission directory, task) names one committed result: a runner may hand back copies of the jobs.
    by_job = {(str(j.submission_dir), j.task_name, j.fields_store): e for j, e in zip(jobs, runnable)}
    with open_runner(options.scheduler, options.chunk_batches) as runner:
        log(f"re-deriving {len(jobs)} committed result(s) on {runner.address} "
            f"({len(entries) - len(jobs)} cannot run)")
        outcomes = runner.run(jobs)
        for job, value, elapsed in progress_over(outcomes, len(jobs), options.settings.progress,
                                                 lambda j: f"{Path(j.submission_dir).name}/{j.task_name}"):
            entry = by_job[(str(job.submission_dir), job.task_name, job.fields_store)]
            entry.wall_time_s = elapsed
            if isinstance(value, BaseException):
                entry.status, entry.error = "failed", f"{type(value).__name__}: {' '.join(str(value).split())[:500]}"
                continue
            entry.new = value
            entry.comparison = compare_results(entry.committed, value)
            entry.status = "equal" if entry.comparison.equal else "different"
    if options.rewrite:
        for entry in entries:
            if entry.status == "different":
                rewrite_file(entry.path, entry.new)
                entry.status = "rewritten"
    report = build_report(entries, options, started_at, time.perf_counter() - started, made)
    if options.report_path is not None:
        write_report(report, options.report_path)
    return entries, report


def _entry_json(entry: Entry, now: str, previous: dict | None) -> dict:
    comparison = entry.comparison or Comparison()
    ok = entry.status in ("equal", "rewritten")
    return {
        "submission": entry.submission, "task": entry.task, "track": entry.track,
        "results_file": entry.path.name if entry.path else None,
        "status": entry.status, "numbers_compared": comparison.n_compared,
        "max_relative_difference": comparison.max_rel_diff,
        "differences": [dataclasses.asdict(d) for d in comparison.differences[:MAX_LISTED_DIFFERENCES]],
        "n_differences": len(comparison.differences),
        "error": entry.error, "wall_time_s": round(entry.wall_time_s, 2),
        "reproduced_at": now,
        "last_equal_at": now if ok else (previous or {}).get("last_equal_at"),
        "command": reproduce_command(entry.task, entry.committed.data if entry.committed else {}, entry.submission),
        "data_fingerprint": (entry.committed.data if entry.committed else {}).get("fingerprint"),
    }


def report_key(record: dict) -> tuple:
    """A report entry's identity: a submission has one results file per board (codecs: also other stores)."""
    return record.get("task"), record.get("submission"), record.get("results_file")


def reproduce_command(task: str | None, data: dict, submission: str | None = None) -> str:
    """The exact command that re-derives a board (or one submission on it) from a store named by the reader."""
    store = data.get("store") or store_name(str(data.get("source") or "STORE"))
    parts = ["bench reproduce"]
    if task:
        parts.append(f"--task {task}")
    if submission:
        parts.append(f"--only {submission}")
    parts.append(f"--data {store}")
    return " ".join(parts)


def read_report(path: Path) -> dict | None:
    """A previous report, or None when absent or unreadable."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) and raw.get("schema") == REPORT_SCHEMA else None


def build_report(entries: list[Entry], options: ReproduceOptions, started_at: str, wall_time_s: float, made: list[str]) -> dict:
    """The JSON report the site links to; entries not re-derived this time keep their previous state."""
    previous = read_report(options.report_path) if options.report_path else None
    old_entries = {report_key(e): e for e in (previous or {}).get("entries", [])}
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    fresh = [_entry_json(e, now, old_entries.get((e.task, e.submission, e.path.name if e.path else None))) for e in entries]
    keys = {report_key(e) for e in fresh}
    kept = [e for k, e in old_entries.items() if k not in keys]
    commit, dirty = git_state()
    # the --data store's description: from a result scored on it (not a codec result of a --fields store)
    scored = [e.new.data for e in entries if e.new is not None]
    data = next((d for d in scored if not d.get("statistics")), scored[0] if scored else {})
    ok = all(e.status in ("equal", "rewritten") for e in entries)
    counts = {status: sum(e.status == status for e in entries) for status in ("equal", "different", "rewritten", "failed")}
    return {
        "schema": REPORT_SCHEMA,
        "ok": ok,
        "command": options.command,
        "harness_version": bench.__version__,
        "git_commit": commit, "git_dirty": dirty,
        "data": {"title": data.get("title"), "fingerprint": data.get("fingerprint"), "store": data.get("store"),
                 "climatology": data.get("climatology")},
        "scheduler": options.scheduler or "this process",
        "rewrite": options.rewrite,
        "started_at": started_at, "finished_at": now, "wall_time_s": round(wall_time_s, 1),
        "tolerance": {"metrics": {name: t.describe() for name, t in METRIC_TOLERANCES.items()},
                      "error_maps": ERROR_MAP_TOLERANCE.describe(),
                      "facts": "identical (" + ", ".join(f"{s}.{k}" for s, k in FACTS) + ")"},
        "counts": counts, "inputs_made": made,
        "last_success_at": now if ok else (previous or {}).get("last_success_at"),
        "entries": sorted(fresh + kept, key=lambda e: (e["task"], e["submission"])),
    }


def write_report(report: dict, path: Path) -> Path:
    """Write the report atomically."""
    atomic_write_text(Path(path), json.dumps(report, indent=1, allow_nan=False) + "\n")
    return Path(path)


def summary_table(entries: list[Entry]) -> str:
    """One line per committed result: status, numbers compared, largest relative difference, wall time."""
    lines = [f"{'submission':26s} {'task':28s} {'status':10s} {'numbers':>8s} {'max rel diff':>12s} {'wall s':>7s}"]
    for e in sorted(entries, key=lambda e: (e.task, e.submission)):
        c = e.comparison or Comparison()
        lines.append(f"{e.submission[:26]:26s} {e.task[:28]:28s} {e.status:10s} {c.n_compared:8d} {c.max_rel_diff:12.2e} {e.wall_time_s:7.1f}")
    return "\n".join(lines)


def difference_lines(entries: list[Entry], limit: int = 40) -> list[str]:
    """Every difference and failure, named by submission, task, metric and lead."""
    lines = []
    for e in entries:
        if e.error:
            lines.append(f"{e.submission} on {e.task}: FAILED: {e.error}")
        for d in (e.comparison.differences if e.comparison else []):
            lines.append(f"{e.submission} on {e.task}: {d.line()}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more (see the JSON report)"]
    return lines


# ---- --train ----------------------------------------------------------------------------------


def retrain_and_compare(name: str, task: str, settings: EvaluationSettings, results_dir: Path,
                        epochs: int | None = None, progress: bool = True, project_root: Path = PROJECT_ROOT) -> dict:
    """Retrain baseline ``name`` with its recorded recipe in a scratch copy; how far its scores land from the committed ones.

    Training is seeded and deterministic on one machine and thread count, not bit-reproducible across
    hardware (floating-point reduction order, BLAS kernels, thread count): the distances are measured, not asserted.
    """
    from bench.evaluate import score
    from bench.submission import load_submission
    from bench.task import load_task
    from bench.zoo.runner import train_submission

    directory = find_submissions(project_root).get(name)
    if directory is None:
        raise ReproduceError(f"--train {name!r}: no submission of that name in {' or '.join(SUBMISSION_FOLDERS)}/")
    committed_meta_path = directory / "weights" / task / "meta.json"
    if not (directory / "train.yaml").is_file() or not committed_meta_path.is_file():
        raise ReproduceError(f"--train {name!r}: needs train.yaml and committed weights/{task}/meta.json; it is not a trained baseline")
    committed_meta = json.loads(committed_meta_path.read_text())
    scratch = Path(tempfile.mkdtemp(prefix=f"bench-retrain-{directory.name}-"))
    try:
        copy = scratch / directory.name
        shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("weights", ".train", "__pycache__"))
        manifest = yaml.safe_load((copy / "submission.yaml").read_text())
        # The copy may not take the baseline's name (names are unique across the project).
        (copy / "submission.yaml").write_text(yaml.safe_dump({**manifest, "name": f"retrained-{name}"}, sort_keys=False))
        started = time.perf_counter()
        result = train_submission(copy, task, settings.data_dir, epochs=epochs, progress=progress)
        train_wall = time.perf_counter() - started
        new = score(load_submission(copy), load_task(task), settings)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    committed_path = results_dir / task / f"{name}.json"
    committed = Results.read(committed_path) if committed_path.is_file() else None
    validation = {}
    for channel, values in result.meta["validation"]["rmse"].items():
        old = committed_meta["validation"]["rmse"].get(channel, [])
        validation[channel] = [_distance(a, b) for a, b in zip(old, values)]
    test = {}
    for channel in new.metrics:
        old = committed.metrics.get(channel, {}).get("physical", {}).get("rmse", []) if committed else []
        test[channel] = [_distance(a, b) for a, b in zip(old, new.metrics[channel]["physical"]["rmse"])]
    worst = max((abs(d["relative"]) for rows in (validation, test) for row in rows.values() for d in row if d["relative"] is not None),
                default=None)
    return {
        "submission": name, "task": task, "epochs": result.meta.get("epochs_run"), "train_wall_time_s": round(train_wall, 1),
        "validation_rmse": validation, "test_rmse": test, "max_abs_relative_difference": worst,
        "validation_score": _distance(committed_meta["validation"].get("score"), result.meta["validation"].get("score")),
        "committed_hardware": committed_meta.get("hardware") or committed_meta.get("training", {}).get("hardware"),
        "note": "training is seeded and deterministic on one machine and thread count, not bit-reproducible across "
                "hardware or thread counts; these distances are measured, not a pass/fail check",
    }


def _distance(committed: float | None, new: float | None) -> dict:
    if committed is None or new is None:
        return {"committed": committed, "new": new, "relative": None}
    return {"committed": committed, "new": new, "relative": (new - committed) / committed if committed else None}


def main_exit_code(entries: list[Entry]) -> int:
    """0 when every result was reproduced (or deliberately rewritten), 1 otherwise."""
    return 0 if all(e.status in ("equal", "rewritten") for e in entries) else 1

