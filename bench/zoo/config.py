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
INPUT_SCALINGS = ("zscore", "minmax")
LATENT_SCALINGS = ("statistics", "scale_factor", "none")


@dataclasses.dataclass(frozen=True)
class CodecOptions:
    """How a codec sees fields and what its training loss is (used only by codec models, named on each card)."""

    input_scaling: str = "zscore"  # or "minmax": train-split min/max (z-space, 5% margin) -> [-1, 1]
    latent_scaling: str = "statistics"  # per-channel train-split mean/std, or one scale factor, or none
    scale_factor: float | None = None  # fixed factor (e.g. SD's 0.18215); None: 1/std of train-split latents
    resize_to: tuple[int, int] | None = None  # documents' way: resize fields (e.g. 256x256) before encoding
    l1_weight: float = 1.0
    l2_weight: float = 1.0
    grad_weight: float = 0.0  # MSE of the fields' finite differences (document 003's gradient loss)
    kl_weight: float = 1e-6
    lat_weighted_loss: bool = True


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
    # Exponential moving average of the weights (ema-pytorch; timm's "model EMA"): validation, model
    # selection and the stored weights use the average. The decay warms up as 1 - (1 + step)^(-2/3) to this.
    ema_decay: float | None = None
    int8_min_elements: int | None = None  # store 2-D weights at least this big as int8 (checked on validation)
    int4_min_elements: int | None = None  # try int4 groups on weights at least this big (checked on validation)
    # Warm start: a checkpoint directory of the same architecture, relative to the submission
    # ("{task}" is replaced by the task name); training continues from its weights with a new schedule.
    init_from: str | None = None
    codec: CodecOptions = CodecOptions()  # codec models only (family "codec")
    # Stage 1 of a two-stage codec (RAE): a recipe trained first into <submission>/pretrained/<task>/
    # (e.g. MAE pretraining of the encoder on the train split), then loaded frozen by this one.
    pretrain: dict[str, Any] | None = None

    def fingerprint(self) -> str:
        """Hash of the recipe; a resumed run must have the same one."""
        fields = dataclasses.asdict(self)
        for late in ("int4_min_elements", "ema_decay"):  # added later: recipes without them keep their fingerprint
            if fields[late] is None:
                del fields[late]
        raw = json.dumps(fields, sort_keys=True, default=str)
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
    codec = dict(raw.get("codec") or {})
    codec_fields = {f.name for f in dataclasses.fields(CodecOptions)}
    if set(codec) - codec_fields:
        raise TrainingError(f"{where}: unknown codec option(s) {sorted(set(codec) - codec_fields)}; allowed: {sorted(codec_fields)}")
    if codec.get("resize_to") is not None:
        codec["resize_to"] = tuple(int(v) for v in codec["resize_to"])
    config = TrainConfig(**{**raw, "options": ForecastOptions(**options), "codec": CodecOptions(**codec)})
    if config.codec.input_scaling not in INPUT_SCALINGS or config.codec.latent_scaling not in LATENT_SCALINGS:
        raise TrainingError(f"{where}: codec input_scaling must be one of {INPUT_SCALINGS} and latent_scaling one of {LATENT_SCALINGS}")
    if config.trainer not in TRAINERS:
        raise TrainingError(f"{where}: trainer {config.trainer!r} is not one of {TRAINERS}")
    if config.ema_decay is not None and not 0.0 < config.ema_decay < 1.0:
        raise TrainingError(f"{where}: ema_decay {config.ema_decay!r} must lie strictly between 0 and 1 (e.g. 0.999), or be left out")
    if config.precision not in ("fp32", "bf16"):
        raise TrainingError(f"{where}: precision {config.precision!r} must be fp32 or bf16")
    return config


def parse_train_config(raw: dict[str, Any], where: str) -> TrainConfig:
    """A recipe from its raw mapping (e.g. a ``pretrain:`` block); ``where`` names it in errors."""
    return _build(dict(raw), where)


def is_warm_start_stage(task_block: dict[str, Any] | None) -> bool:
    """Whether a ``tasks:`` block continues committed weights (it names ``init_from``) rather than a from-scratch recipe."""
    return bool((task_block or {}).get("init_from"))


def read_train_config(submission_dir: Path, task: str, first_stage: bool = False, **overrides: Any) -> TrainConfig:
    """The recipe in ``submission_dir/train.yaml`` for ``task`` (its ``tasks:`` block overrides the defaults).

    ``first_stage``: ignore a task block that is a warm-start stage (it has ``init_from``), giving the
    from-scratch recipe; an ablation retrains from scratch, so a later stage's lr and budget do not apply.
    """
    path = Path(submission_dir) / TRAIN_FILE
    if not path.is_file():
        raise TrainingError(f"{submission_dir} has no {TRAIN_FILE}; a trainable submission declares its recipe there")
    raw = yaml.safe_load(path.read_text()) or {}
    per_task = raw.pop("tasks", {}) or {}
    task_block = per_task.get(task) or {}
    if first_stage and is_warm_start_stage(task_block):
        task_block = {}
    merged = {**raw, **task_block, **{k: v for k, v in overrides.items() if v is not None}}
    return _build(merged, str(path))
