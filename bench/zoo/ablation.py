"""Which trainer options matter: retrain one recipe with each option switched off, on a short budget.

Every variant uses the same seed, schedule and windows as the reference run; only one option changes.
Variants train from scratch, so a recipe's warm-start stages (``tasks:`` blocks with ``init_from``) are
left out: the ablation's recipe is stage 1's, with the budget asked for.
The table (validation 2019 only, never the test year) is written atomically to
``<submission>/ablation/<task>.json`` and shown on the model card.
"""
from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

from bench.dataset import PreparedData
from bench.results import atomic_write_text
from bench.submission import load_submission
from bench.task import load_task
from bench.zoo.config import TrainConfig, read_train_config
from bench.zoo.data import load_training_data

# Each variant: (label, options changed from the recipe). "recipe" is the reference.
VARIANTS: tuple[tuple[str, dict], ...] = (
    ("recipe", {}),
    ("no residual (predict the fields, not the change)", {"residual": False}),
    ("no latitude-weighted loss", {"lat_weighted_loss": False}),
    ("no static fields, no sin(latitude)", {"static_fields": (), "latitude_field": False}),
    ("no time-of-year features", {"time_features": False}),
)
# Latent forecasters take their options in model_args (bench/zoo/latent.py): the variants there.
LATENT_VARIANTS: tuple[tuple[str, dict], ...] = (
    ("recipe", {}),
    ("unit latent statistics: raw codec latents, not the codec's scaling (document 004)", {"latent_scaling": "unit"}),
)
ABLATION_DIR = "ablation"


def is_latent(config: TrainConfig) -> bool:
    return "codec" in config.model_args


def variant_config(config: TrainConfig, changes: dict) -> TrainConfig:
    """The recipe with some options changed (the schedule, seed and windows stay)."""
    if is_latent(config):
        return dataclasses.replace(config, model_args={**config.model_args, **changes}, init_from=None)
    return dataclasses.replace(config, options=dataclasses.replace(config.options, **changes), init_from=None)


def unchanged(variant: TrainConfig, config: TrainConfig) -> bool:
    """The variant switches off something the recipe does not use."""
    if is_latent(config):
        return variant.model_args == config.model_args
    return variant.options == config.options


def run_ablation(path: Path, task_name: str, data_dir: Path, progress: bool = False, **budget) -> dict:
    """Train every variant of ``path``'s recipe on ``budget`` (epochs, window_stride ...); the validation table."""
    from bench.zoo.train import fit

    submission = load_submission(path)
    config = read_train_config(submission.root, task_name, first_stage=True, **budget)  # from scratch: stage 1's recipe
    data = load_training_data(PreparedData(data_dir, load_task(task_name)), config.options.static_fields)
    rows = []
    for label, changes in LATENT_VARIANTS if is_latent(config) else VARIANTS:
        variant = variant_config(config, changes)
        if changes and unchanged(variant, config):
            continue  # the recipe does not use this option: nothing to switch off
        with tempfile.TemporaryDirectory(prefix="ablation-") as tmp:
            result = fit(variant, data, Path(tmp) / "weights", Path(tmp) / "work", progress=progress,
                         submission_dir=submission.root)
        val = result.meta["validation"]
        options = variant.model_args if is_latent(config) else dataclasses.asdict(variant.options)
        rows.append({"variant": label, "options": options, "validation_score": val["score"],
                     "rmse_6h": {c: v[0] for c, v in val["rmse"].items()}, "rmse_24h": {c: v[-1] for c, v in val["rmse"].items()},
                     "train_wall_time_s": result.meta["train_wall_time_s"]})
    table = {"submission": submission.name, "task": task_name, "data_fingerprint": data.data_fingerprint,
             "budget": {k: getattr(config, k) for k in ("epochs", "window_stride", "val_stride", "batch_size", "lr", "precision", "seed")},
             "split": "validation", "rows": rows}
    atomic_write_text(submission.root / ABLATION_DIR / f"{task_name}.json", json.dumps(table, indent=1) + "\n")
    return table
