"""A baseline's training recipe (``train.yaml``) as a dataclass, with per-task overrides."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from bench.errors import TrainingError
from bench.zoo.forecaster import ForecastOptions

TRAIN_FILE = "train.yaml"
TRAINERS = ("sgd", "ridge")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run: architecture, options, schedule, budget, storage."""

    model: str
    model_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    trainer: str = "sgd"
    options: ForecastOptions = ForecastOptions()
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    window_stride: int = 1  # train on every n-th 6-hourly window
    val_stride: int = 1
    precision: str = "fp32"  # or bf16 (autocast; CPUs with AVX-512 BF16, or CUDA)
    patience: int | None = None  # epochs without validation improvement before stopping
    max_minutes: float | None = None  # wall budget: stop after the epoch that crosses it
    seed: int = 0
    int8_min_elements: int | None = None  # store 2-D weights at least this big as int8 (checked on validation)

    def fingerprint(self) -> str:
        """Hash of the recipe; a resumed run must have the same one."""
        raw = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))


def _build(raw: dict[str, Any], where: str) -> TrainConfig:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        raise TrainingError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(fields)}")
    if "model" not in raw:
        raise TrainingError(f"{where}: missing field 'model' (a registered zoo model, e.g. convlstm)")
    options = dict(raw.get("options") or {})
    option_fields = {f.name for f in dataclasses.fields(ForecastOptions)}
    if set(options) - option_fields:
        raise TrainingError(f"{where}: unknown option(s) {sorted(set(options) - option_fields)}; allowed: {sorted(option_fields)}")
    options["static_fields"] = tuple(options.get("static_fields", ()))
    config = TrainConfig(**{**raw, "options": ForecastOptions(**options)})
    if config.trainer not in TRAINERS:
        raise TrainingError(f"{where}: trainer {config.trainer!r} is not one of {TRAINERS}")
    if config.precision not in ("fp32", "bf16"):
        raise TrainingError(f"{where}: precision {config.precision!r} must be fp32 or bf16")
    return config


def read_train_config(submission_dir: Path, task: str, **overrides: Any) -> TrainConfig:
    """The recipe in ``submission_dir/train.yaml`` for ``task`` (its ``tasks:`` block overrides the defaults)."""
    path = Path(submission_dir) / TRAIN_FILE
    if not path.is_file():
        raise TrainingError(f"{submission_dir} has no {TRAIN_FILE}; a trainable submission declares its recipe there")
    raw = yaml.safe_load(path.read_text()) or {}
    per_task = raw.pop("tasks", {}) or {}
    merged = {**raw, **(per_task.get(task) or {}), **{k: v for k, v in overrides.items() if v is not None}}
    return _build(merged, str(path))
