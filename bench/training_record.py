"""What a trained submission says about its training, read by the harness as plain JSON (no torch).

Convention: a trained code submission keeps ``weights/<task>/meta.json`` and ``training_log.json``
(the zoo's checkpoint layout). The harness copies a checked, size-bounded summary into the results
file, so the leaderboard shows parameters, training time, hardware and the training curve.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from bench.errors import ResultsError

MAX_BYTES = 2 * 2**20
MAX_EPOCHS = 2000


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _read(path: Path) -> Any:
    if not path.is_file() or path.stat().st_size > MAX_BYTES:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _curve(log: Any) -> list[dict[str, float | None]]:
    """Per-epoch train loss and validation score, numbers only."""
    if not isinstance(log, list):
        return []
    rows = []
    for item in log[:MAX_EPOCHS]:
        if isinstance(item, dict) and _number(item.get("epoch")) is not None:
            rows.append({"epoch": _number(item["epoch"]), "train_loss": _number(item.get("train_loss")),
                         "val_score": _number(item.get("val_score")), "wall_s": _number(item.get("wall_s"))})
    return rows


PLATEAU_EPOCHS = 3  # the verdict's window: how far back the best score is compared
PLATEAU_CHANGE = -0.005  # the best score moved less than 0.5% over that window
STAGE_CHANGE = -0.02  # and a warm restart (the last stage) moved it less than 2%


def convergence(log: Any) -> dict[str, float | int] | None:
    """How much validation still moved at the end of training: the last epoch against the one before, and
    the last stage's best against the best before it (relative changes; negative is better). A stage is a
    warm-start continuation (``stage`` in the log); a single-stage log compares its last epochs only.

    ``converged`` is the verdict, a stated rule rather than a judgement: early stopping's (the best epoch lies
    ``PLATEAU_EPOCHS`` or more before the end: later epochs only overfit), or a plateau (the best score moved
    less than 0.5% over the last ``PLATEAU_EPOCHS`` epochs, and the last warm restart, if any, less than 2%)."""
    rows = [(int(item["stage"]) if _number(item.get("stage")) is not None else 1, float(item["val_score"]),
             _number(item.get("val_score_online")))
            for item in (log if isinstance(log, list) else [])[:MAX_EPOCHS]
            if isinstance(item, dict) and _number(item.get("val_score")) is not None]
    if len(rows) < 2:
        return None
    last = rows[-1][0]
    before = [score for stage, score, _ in rows if stage < last]
    within = [score for stage, score, _ in rows if stage == last]
    best = min(score for _, score, _ in rows)
    record: dict[str, float | int] = {"last_epoch_change": rows[-1][1] / rows[-2][1] - 1, "last_stage": last,
                                      "last_stage_epochs": len(within), "best_score": best}
    if before and min(before) > 0:
        record["last_stage_gain"] = min(within) / min(before) - 1
        record["best_before_last_stage"] = min(before)
    online = [score for stage, _, score in rows if stage == last]
    if online and all(v is not None and v > 0 for v in online):  # an EMA stage: the average against the online weights
        record["ema_gain"] = min(within) / min(online) - 1
    scores = [score for _, score, _ in rows]
    record["epochs_since_best"] = len(scores) - 1 - scores.index(best)
    if len(scores) > PLATEAU_EPOCHS and min(scores[:-PLATEAU_EPOCHS]) > 0:
        record["plateau_change"] = best / min(scores[:-PLATEAU_EPOCHS]) - 1
    plateau = record.get("plateau_change", -1.0) > PLATEAU_CHANGE and record.get("last_stage_gain", 0.0) > STAGE_CHANGE
    record["converged"] = bool(record["epochs_since_best"] >= PLATEAU_EPOCHS or plateau)
    return record


def convergence_text(record: dict | None) -> str | None:
    """The card's convergence line: what the last epoch and the last stage still gained."""
    if not isinstance(record, dict) or _number(record.get("last_epoch_change")) is None:
        return None  # results files are untrusted input: numbers only
    verdict = record.get("converged")
    text = {True: "converged", False: "still improving"}.get(verdict, "") if isinstance(verdict, bool) else ""
    since = _number(record.get("epochs_since_best"))
    if text and since is not None and since >= 1:
        text += f" (the best epoch {int(since)} before the end)" if since == 1 else f" (the best epoch {int(since)} epochs before the end)"
    text += "; " if text else ""
    text += f"last epoch {100 * record['last_epoch_change']:+.2f}% validation score"
    if _number(record.get("plateau_change")) is not None:
        text += f", the last {PLATEAU_EPOCHS} epochs {100 * record['plateau_change']:+.2f}%"
    stage = [_number(record.get(k)) for k in ("last_stage_epochs", "best_before_last_stage", "best_score", "last_stage_gain")]
    if all(v is not None for v in stage):
        epochs, before, best, gain = stage
        text += f"; the last stage ({int(epochs)} epochs) took the best score {before:.5f} -> {best:.5f} ({100 * gain:+.2f}%)"
    if _number(record.get("ema_gain")) is not None:
        text += f"; its weight EMA scored {100 * record['ema_gain']:+.2f}% against the online weights' best"
    return text


def _one_machine(hardware: dict) -> str:
    device = str(hardware.get("device", "?"))
    where = str(hardware.get("gpu") or hardware.get("processor") or hardware.get("machine") or "")
    threads = hardware.get("torch_threads")
    return f"{device}{' · ' + where if where else ''}{f' · {threads} thread(s)' if isinstance(threads, int) else ''}"


def warm_chain(meta: dict) -> list[dict]:
    """The warm-start records of a checkpoint, latest first: each describes the stages before its own
    (``warm_start``, nested by ``warm_start_before``; records older than that key end the chain early)."""
    chain, warm = [], meta.get("warm_start")
    while isinstance(warm, dict):
        chain.append(warm)
        warm = warm.get("warm_start_before")
    return chain


def training_machines(meta: dict) -> list[tuple[str, float]]:
    """(machine, minutes) per run of consecutive training stages on one machine, earliest first.

    A warm start records the hardware and cumulative wall time of the stages before it (``warm_start``,
    nested); a stage that predates the hardware record counts as the next stage's machine.
    """
    chain = [(meta.get("hardware"), meta.get("train_wall_time_s"))]
    chain += [(warm.get("hardware_before"), warm.get("train_wall_time_s_before")) for warm in warm_chain(meta)]
    segments: list[tuple[str, float]] = []
    known, done = None, 0.0
    for hardware, cumulative in chain:  # latest first
        known = _one_machine(hardware) if isinstance(hardware, dict) else known
        if known is not None and isinstance(cumulative, (int, float)):
            segments.append((known, float(cumulative)))
    merged: list[tuple[str, float]] = []
    for machine, cumulative in reversed(segments):  # earliest first: minutes = this stage's end - the last one's
        minutes = (cumulative - done) / 60
        done = cumulative
        if merged and merged[-1][0] == machine:
            merged[-1] = (machine, merged[-1][1] + minutes)
        else:
            merged.append((machine, minutes))
    return merged


def _hardware_text(meta: dict) -> str | None:
    """Where the model was trained; stages on different machines (e.g. CPU, then a lent GPU) are all named."""
    machines = training_machines(meta)
    if not machines:
        return None
    if len(machines) == 1:
        return machines[0][0][:200]
    return ", then ".join(f"{m} ({minutes:.1f} min)" for m, minutes in machines)[:200]


def training_record(submission_root: Path, task_name: str, task_fingerprint: str) -> dict[str, Any] | None:
    """The training summary of ``weights/<task>/`` for the results file, or None when there is none."""
    folder = Path(submission_root) / "weights" / task_name
    meta = _read(folder / "meta.json")
    if not isinstance(meta, dict):
        return None
    config = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else {}
    validation = meta.get("validation") if isinstance(meta.get("validation"), dict) else {}
    rmse = validation.get("rmse") if isinstance(validation.get("rmse"), dict) else {}
    log = _read(folder / "training_log.json")
    return {
        "task_fingerprint_matches": meta.get("task_fingerprint") == task_fingerprint,
        "data_title": str(meta.get("data_title", ""))[:300],
        "data_fingerprint": str(meta.get("data_fingerprint", ""))[:64],
        "trained_until": str(meta.get("trained_until", ""))[:40],
        "train_windows": _number(meta.get("train_windows")),
        "epochs_run": _number(meta.get("epochs_run")),
        "best_epoch": _number(meta.get("best_epoch")),
        "stopped_by": str(meta.get("stopped_by", ""))[:60],
        "wall_time_s": _number(meta.get("train_wall_time_s")),
        "hardware": _hardware_text(meta),
        "precision": str(config.get("precision", ""))[:10],
        "window_stride": _number(config.get("window_stride")),
        "ema_decay": _number(config.get("ema_decay")),
        "options": {k: v for k, v in (config.get("options") or {}).items() if isinstance(v, (bool, list, str))}
        if isinstance(config.get("options"), dict) else {},
        "storage": str((meta.get("storage") or {}).get("format", ""))[:80] if isinstance(meta.get("storage"), dict) else "",
        "validation_rmse": {str(c)[:64]: [_number(v) for v in values[:16]] for c, values in list(rmse.items())[:16]
                            if isinstance(values, list)},
        "curve": _curve(log),
        "convergence": convergence(log),
    }


def card_training(record: dict[str, Any]) -> dict[str, str]:
    """The model card's training fields (data, time, hardware) from a training record."""
    minutes = record.get("wall_time_s")
    epochs = record.get("epochs_run")
    time_text = (f"{minutes / 60:.1f} min" if minutes is not None else "?") + (
        f", {int(epochs)} epoch(s), best {int(record['best_epoch'])}, stopped by {record['stopped_by']}" if epochs else "")
    windows = record.get("train_windows")
    data_text = f"{record['data_title']}: train split" + (f", {int(windows)} windows" if windows else "")
    data_text += f"; model selection on the validation split; nothing after {record['trained_until'][:10]} read"
    return {"data": data_text, "time": time_text, "hardware": record.get("hardware") or "?"}


SAME_TRAINING = ("data_fingerprint", "trained_until", "epochs_run", "best_epoch", "wall_time_s", "validation_rmse")


class StaleWeightsError(ResultsError):
    """The weights on disk are not the ones a results file was scored with."""


def refresh_training(results_file: Path, submission_root: Path) -> str:
    """Re-derive a results file's training summary from ``weights/<task>/`` (e.g. after the summary gained a
    field), leaving every score untouched: "refreshed", "already current", or "no training summary" (a result
    scored without one, e.g. a codec's: left alone). Refuses, with a named error, when the weights' record differs
    in any of ``SAME_TRAINING`` from the one scored: those weights need ``bench evaluate``."""
    from bench.results import Results, write_results_json

    results = Results.read(Path(results_file))
    old = results.training
    if not isinstance(old, dict):
        return "no training summary"
    fingerprint = results.task.get("fingerprint")
    new = training_record(Path(submission_root), str(results.task.get("name")), str(fingerprint))
    if new is None:
        raise StaleWeightsError(f"{submission_root} has no weights/{results.task.get('name')}/meta.json; is it the submission scored in {results_file}?")
    moved = [key for key in SAME_TRAINING if old.get(key) != new.get(key)]
    if moved:
        raise StaleWeightsError(f"{submission_root}'s weights are not the ones scored in {results_file} ({', '.join(moved)} differ); "
                                f"run bench evaluate {submission_root} --task {results.task.get('name')} instead")
    new["task_fingerprint_matches"] = old.get("task_fingerprint_matches", new["task_fingerprint_matches"])
    if new == old:
        return "already current"
    write_results_json({**results.to_json(), "training": new}, Path(results_file))
    return "refreshed"
