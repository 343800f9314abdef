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


def _hardware_text(hardware: Any) -> str | None:
    if not isinstance(hardware, dict):
        return None
    device = str(hardware.get("device", "?"))
    cpu = str(hardware.get("processor") or hardware.get("machine") or "")
    threads = hardware.get("torch_threads")
    return f"{device}{' · ' + cpu if cpu else ''}{f' · {threads} thread(s)' if isinstance(threads, int) else ''}"[:200]


def training_record(submission_root: Path, task_name: str, task_fingerprint: str) -> dict[str, Any] | None:
    """The training summary of ``weights/<task>/`` for the results file, or None when there is none."""
    folder = Path(submission_root) / "weights" / task_name
    meta = _read(folder / "meta.json")
    if not isinstance(meta, dict):
        return None
    config = meta.get("train_config") if isinstance(meta.get("train_config"), dict) else {}
    validation = meta.get("validation") if isinstance(meta.get("validation"), dict) else {}
    rmse = validation.get("rmse") if isinstance(validation.get("rmse"), dict) else {}
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
        "hardware": _hardware_text(meta.get("hardware")),
        "precision": str(config.get("precision", ""))[:10],
        "window_stride": _number(config.get("window_stride")),
        "options": {k: v for k, v in (config.get("options") or {}).items() if isinstance(v, (bool, list, str))}
        if isinstance(config.get("options"), dict) else {},
        "storage": str((meta.get("storage") or {}).get("format", ""))[:80] if isinstance(meta.get("storage"), dict) else "",
        "validation_rmse": {str(c)[:64]: [_number(v) for v in values[:16]] for c, values in list(rmse.items())[:16]
                            if isinstance(values, list)},
        "curve": _curve(_read(folder / "training_log.json")),
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
