"""Helpers for model-zoo tests: copy a baseline out of the tree and train it for a few steps."""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from bench.provenance import cpu_has_native_bf16

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TRAINABLE = sorted(p.parent.name for p in (PROJECT_ROOT / "baselines").glob("*/train.yaml"))
# Forecasters and codecs (``track: codec``) are scored by different harness paths.
CODEC_BASELINES = [n for n in TRAINABLE if "track: codec" in (PROJECT_ROOT / "baselines" / n / "submission.yaml").read_text()]
# Latent forecasters train on top of a trained codec (their recipe names it): tests/test_zoo_latent.py trains both.
LATENT_BASELINES = [n for n in TRAINABLE if "codec: \"../" in (PROJECT_ROOT / "baselines" / n / "train.yaml").read_text()]
ZOO_BASELINES = [n for n in TRAINABLE if n not in CODEC_BASELINES and n not in LATENT_BASELINES]
# A few steps: 1 epoch over every 20th train window of the tiny store, in small batches. bf16 recipes run in fp32
# on a CPU that would only emulate bf16 (about 60x slower); test_a_bf16_recipe_trains_under_autocast covers bf16.
SMOKE = dict(epochs=1, window_stride=20, val_stride=4, batch_size=4,
             **({"precision": "fp32"} if cpu_has_native_bf16() is False else {}))
# The same few steps as a train.yaml task entry, for tests that go through `bench train`.
SMOKE_ENTRY = "{epochs: 1, window_stride: 20, val_stride: 4%s}" % (", precision: fp32" if "precision" in SMOKE else "")


def copy_baseline(name: str, dest: Path) -> Path:
    """The baseline's code and recipe (no weights, no warm starts) under a name that collides with nothing."""
    from bench.zoo.config import is_warm_start_stage

    root = dest / name
    root.mkdir(parents=True)
    for file in ("submission.yaml", "train.yaml", "model.py"):
        shutil.copy(PROJECT_ROOT / "baselines" / name / file, root / file)
    recipe = yaml.safe_load((root / "train.yaml").read_text())
    tasks = recipe.get("tasks") or {}
    for task in [t for t, block in tasks.items() if is_warm_start_stage(block)]:
        del tasks[task]  # a warm-start stage continues committed weights: a smoke copy trains stage 1 from scratch
    (root / "train.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    manifest = yaml.safe_load((root / "submission.yaml").read_text())
    manifest["name"] = f"smoke-{name.replace('_', '-')}"
    (root / "submission.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root
