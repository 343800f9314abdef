"""Checkpoints as diffusers/timm keep them: ``config.json`` + ``weights.safetensors`` + ``meta.json``.

``meta.json`` records the task and data fingerprints, the normalisation statistics used in training,
the training record and the storage precision; loading refuses a task-fingerprint mismatch.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from bench.errors import CheckpointError, FingerprintMismatchError, WeightsMissingError
from bench.normalization import NormStats
from bench.task import TaskSpec
from bench.zoo.forecaster import ForecastOptions, Forecaster
from bench.zoo.registry import create_model

CONFIG, WEIGHTS, META, LOG = "config.json", "weights.safetensors", "meta.json", "training_log.json"
# Statistics and scalings: fp16 would lose 0.1 K at 288 K
KEEP_FP32 = ("mean", "std", "tendency_scale", "input_low", "input_high", "latent_mean", "latent_std", "scale_factor",
             "target_scale")
Q8, SCALE = "::q8", "::scale"


def pack_state(state: dict[str, torch.Tensor], int8_min_elements: int | None) -> dict[str, torch.Tensor]:
    """fp16 weights (fp32 statistics); weights of 2+ dims with >= ``int8_min_elements`` entries as int8 with a
    scale per output row (linear rows, convolution output channels)."""
    packed = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        if not tensor.is_floating_point() or name.split(".")[-1] in KEEP_FP32:
            packed[name] = tensor.contiguous()
        elif int8_min_elements and tensor.ndim >= 2 and tensor.numel() >= int8_min_elements:
            scale = tensor.abs().amax(dim=tuple(range(1, tensor.ndim)), keepdim=True).clamp_min(1e-12) / 127.0
            packed[name + Q8] = torch.round(tensor / scale).to(torch.int8).contiguous()
            packed[name + SCALE] = scale.float().contiguous()
        else:
            packed[name] = tensor.half().contiguous()
    return packed


def unpack_state(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float32 state dict from ``pack_state``'s output."""
    state = {}
    for name, tensor in packed.items():
        if name.endswith(SCALE):
            continue
        if name.endswith(Q8):
            base = name[: -len(Q8)]
            state[base] = tensor.float() * packed[base + SCALE]
        else:
            state[name] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def save_checkpoint(out_dir: Path, model: Forecaster, config: dict, meta: dict, log: list | None = None,
                    int8_min_elements: int | None = None) -> Path:
    """Write the checkpoint into a temp dir beside ``out_dir``, then swap it in (never half-written)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)
        save_file(pack_state(model.state_dict(), int8_min_elements), str(tmp / WEIGHTS))
        _atomic_json(tmp / CONFIG, config)
        _atomic_json(tmp / META, meta)
        if log is not None:
            _atomic_json(tmp / LOG, log)
        old = out_dir.with_name(f".{out_dir.name}.old")
        if out_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def read_meta(weights_dir: Path) -> dict:
    path = Path(weights_dir) / META
    if not path.is_file():
        raise WeightsMissingError(f"no {META} in {weights_dir}; train the model first (bench train)")
    return json.loads(path.read_text())


def build_forecaster(config: dict, stats: NormStats) -> Forecaster:
    """An untrained Forecaster of the architecture in ``config`` (its static maps are filled by the weights)."""
    options = ForecastOptions(**{**config["options"], "static_fields": tuple(config["options"].get("static_fields", ()))})
    net = create_model(config["model"], **config["model_args"])
    n_static = len(options.static_fields) + int(options.latitude_field)
    h, w = config["model_args"]["height"], config["model_args"]["width"]
    return Forecaster(net, stats, options, torch.zeros(n_static, h, w).numpy())


def load_checkpoint(weights_dir: Path, task: TaskSpec) -> tuple[Forecaster, dict]:
    """Load a checkpoint for ``task``; named errors for missing files and a task-fingerprint mismatch.

    A codec checkpoint (config.json ``kind: codec``) loads as a ``bench.zoo.codec.Codec``."""
    weights_dir = Path(weights_dir)
    missing = [name for name in (CONFIG, WEIGHTS, META) if not (weights_dir / name).is_file()]
    if missing:
        raise WeightsMissingError(
            f"{weights_dir} lacks {', '.join(missing)}; restore the committed weights (git checkout) "
            f"or train them: bench train {weights_dir.parent.parent} --task {task.name}"
        )
    meta = read_meta(weights_dir)
    if meta.get("task_fingerprint") != task.fingerprint:
        raise FingerprintMismatchError(
            f"{weights_dir} was trained for task {meta.get('task')} fingerprint {meta.get('task_fingerprint')}, "
            f"not {task.name} {task.fingerprint}; retrain for this task (bench train ... --task {task.name})"
        )
    config = json.loads((weights_dir / CONFIG).read_text())
    if config.get("kind") == "codec":
        from bench.zoo.codec import codec_from_arch

        model = codec_from_arch(config, NormStats.from_json(meta["normalization"]))
    elif config.get("kind") == "latent":
        from bench.zoo.latent import latent_from_arch

        model = latent_from_arch(config, NormStats.from_json(meta["normalization"]))
    else:
        model = build_forecaster(config, NormStats.from_json(meta["normalization"]))
    model.load_state_dict(unpack_state(load_file(str(weights_dir / WEIGHTS))))
    return model.eval(), meta


def load_codec(weights_dir: Path, task: TaskSpec) -> "Codec":  # noqa: F821 - bench.zoo.codec imports this module
    """A trained codec for ``task`` in eval mode (WeightsMissingError / FingerprintMismatchError by name)."""
    model, _ = load_checkpoint(weights_dir, task)
    if getattr(model, "sample_kind", None) != "fields":
        raise CheckpointError(f"{weights_dir} holds a forecaster, not a codec; point load_codec at a codec's weights/<task>/")
    return model
