"""Choose a multi-model mean's members on the validation year (2019), never on the test year.

Every candidate runs once over the validation init times (each in its own sandbox, as in an
evaluation); then every subset of candidates (singles too, as the reference) is scored as an equal-weight mean with
the harness's own accumulator. The table is written atomically next to the mean, and its card
shows it, so the choice of members is a measured one.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from bench.dataset import PreparedData, climatology_for, valid_times
from bench.errors import SubmissionError
from bench.prepare import verify_prepared
from bench.results import atomic_write_text
from bench.scoring import ScoreAccumulator
from bench.submission import Submission, check_member, load_submission
from bench.task import TaskSpec, load_task

SELECTION_DIR = "selection"  # <mean>/selection/<task>.json
MAX_CANDIDATES = 8  # 247 subsets; beyond that the exhaustive table stops being readable


@dataclasses.dataclass(frozen=True)
class SubsetScore:
    """One candidate subset's validation scores: the mean normalised RMSE (the ranking key) and RMSE per channel."""

    members: tuple[str, ...]
    score: float
    rmse: dict[str, list[float]]


def _validation_forecasts(candidate: Submission, task: TaskSpec, data: PreparedData, settings) -> np.ndarray:
    from bench.evaluate import ForecastStream

    stream = ForecastStream(candidate, task, data, dataclasses.replace(settings, split="validation"))
    return np.concatenate([forecast for _, forecast in stream(data.init_times("validation"))])


def _score(forecast: np.ndarray, truth: np.ndarray, clim: np.ndarray, init_times, task: TaskSpec, data: PreparedData) -> tuple[float, dict]:
    accumulator = ScoreAccumulator(task, data.stats, False)
    accumulator.add(init_times.values, forecast, truth, clim)
    table = accumulator.metric_table()
    normalised = [v for c in task.channel_keys for v in table[c]["normalized"]["rmse"]]
    return float(np.mean(normalised)), {c: table[c]["physical"]["rmse"] for c in task.channel_keys}


def select_members(candidates: list[Path], task_name: str, settings) -> list[SubsetScore]:
    """Every subset of ``candidates`` (singles included) scored on validation, best first."""
    if not 2 <= len(candidates) <= MAX_CANDIDATES:
        raise SubmissionError(f"give 2 to {MAX_CANDIDATES} candidate submissions (got {len(candidates)})")
    task = load_task(task_name)
    data = PreparedData(settings.data_dir, task)
    verify_prepared(data.root)
    init_times = data.init_times("validation")
    if len(init_times) == 0:
        raise SubmissionError(f"the data in {settings.data_dir} has no complete validation windows to choose members on")
    subs = [load_submission(path) for path in candidates]
    for sub in subs:
        check_member("select-members", sub)
    forecasts = {sub.root.name: _validation_forecasts(sub, task, data, settings) for sub in subs}
    truth = data.targets(init_times)
    clim = climatology_for(data.climatology, task, valid_times(task, init_times))
    rows = []
    for size in range(1, len(subs) + 1):
        for combo in itertools.combinations(sorted(forecasts), size):
            mean = np.mean([forecasts[name].astype(np.float64) for name in combo], axis=0).astype(np.float32)
            score, rmse = _score(mean, truth, clim, init_times, task, data)
            rows.append(SubsetScore(combo, score, rmse))
    return sorted(rows, key=lambda r: r.score)


def write_selection(mean_dir: Path, task_name: str, rows: list[SubsetScore], data_fingerprint: str) -> Path:
    """``<mean_dir>/selection/<task>.json``: the validation table (singles included, as the reference)."""
    path = Path(mean_dir) / SELECTION_DIR / f"{task_name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"task": task_name, "split": "validation", "data_fingerprint": data_fingerprint,
               "ranking": "mean over channels and leads of the latitude-weighted RMSE of z-scored fields",
               "rows": [{"members": list(r.members), "score": round(r.score, 6),
                         "rmse": {c: [round(v, 4) for v in values] for c, values in r.rmse.items()}} for r in rows]}
    atomic_write_text(path, json.dumps(payload, indent=1) + "\n")
    return path
