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
Q4, Q4_SCALE, Q4_SHAPE = "::q4", "::q4scale", "::q4shape"
INT4_GROUP = 32  # entries per int4 group, each with its own fp16 scale (4.5 bits per weight)
_INT4_CLIPS = (1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6)


def quantize_int4(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of ``INT4_GROUP`` entries as int4 (two per byte) with an fp16 scale per group.

    Hand-written rather than bitsandbytes/torchao: those pack for their own GPU kernels, while these
    weights only have to round-trip through safetensors and are dequantised once at load. Per group the
    clip of |max| is the one of ``_INT4_CLIPS`` with the least squared error (outliers cost less than
    the resolution lost on every other entry)."""
    flat = tensor.detach().float().flatten()
    pad = (-flat.numel()) % INT4_GROUP
    groups = torch.nn.functional.pad(flat, (0, pad)).view(-1, INT4_GROUP)
    absmax = groups.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    best_err, best_scale = None, None
    for clip in _INT4_CLIPS:
        scale = (absmax * clip / 7.0).half().float().clamp_min(1e-8)  # the fp16 scale that will be stored
        err = ((torch.clamp(torch.round(groups / scale), -8, 7) * scale - groups) ** 2).sum(dim=1, keepdim=True)
        if best_err is None:
            best_err, best_scale = err, scale
        else:
            better = err < best_err
            best_err, best_scale = torch.where(better, err, best_err), torch.where(better, scale, best_scale)
    q = (torch.clamp(torch.round(groups / best_scale), -8, 7) + 8).to(torch.uint8).flatten()
    packed = (q[0::2] | (q[1::2] << 4)).contiguous()
    return packed, best_scale.half().flatten().contiguous()


def dequantize_int4(packed: torch.Tensor, scale: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
    """Float32 tensor of ``shape`` from ``quantize_int4``'s bytes and group scales."""
    q = torch.stack([packed & 0x0F, packed >> 4], dim=1).flatten().float() - 8
    values = (q.view(-1, INT4_GROUP) * scale.float()[:, None]).flatten()
    dims = [int(d) for d in shape.tolist()]
    return values[: int(torch.tensor(dims).prod())].view(dims)


def storable(name: str, tensor: torch.Tensor) -> bool:
    """Whether a tensor may be stored below fp16: a float weight of 2+ dims, not a statistic or scaling."""
    return tensor.is_floating_point() and tensor.ndim >= 2 and name.split(".")[-1] not in KEEP_FP32


def tensor_format(name: str, tensor: torch.Tensor, int8_min_elements: int | None = None,
                  int4: frozenset[str] | set[str] | tuple[str, ...] = ()) -> str:
    """How ``pack_state`` stores one tensor: "as is" (non-float, statistics), "int4", "int8" or "fp16"."""
    if not tensor.is_floating_point() or name.split(".")[-1] in KEEP_FP32:
        return "as is"
    if name in int4 and storable(name, tensor):
        return "int4"
    if int8_min_elements and storable(name, tensor) and tensor.numel() >= int8_min_elements:
        return "int8"
    return "fp16"


def pack_state(state: dict[str, torch.Tensor], int8_min_elements: int | None = None,
               int4: frozenset[str] | set[str] | tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """fp16 weights (fp32 statistics); the tensors named in ``int4`` as int4 groups; other weights of 2+ dims
    with >= ``int8_min_elements`` entries as int8 with a scale per output row (linear rows, conv output channels)."""
    packed = {}
    for name, tensor in state.items():
        tensor = tensor.detach().cpu()
        kind = tensor_format(name, tensor, int8_min_elements, int4)
        if kind == "as is":
            packed[name] = tensor.contiguous()
        elif kind == "int4":
            packed[name + Q4], packed[name + Q4_SCALE] = quantize_int4(tensor)
            packed[name + Q4_SHAPE] = torch.tensor(tensor.shape, dtype=torch.int64)
        elif kind == "int8":
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
        if name.endswith((SCALE, Q4_SCALE, Q4_SHAPE)):
            continue
        if name.endswith(Q8):
            base = name[: -len(Q8)]
            state[base] = tensor.float() * packed[base + SCALE]
        elif name.endswith(Q4):
            base = name[: -len(Q4)]
            state[base] = dequantize_int4(tensor, packed[base + Q4_SCALE], packed[base + Q4_SHAPE])
        else:
            state[name] = tensor.float() if tensor.is_floating_point() else tensor
    return state


def _atomic_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def save_checkpoint(out_dir: Path, model: Forecaster, config: dict, meta: dict, log: list | None = None,
                    int8_min_elements: int | None = None, int4: frozenset[str] | tuple[str, ...] = ()) -> Path:
    """Write the checkpoint into a temp dir beside ``out_dir``, then swap it in (never half-written)."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)
        save_file(pack_state(model.state_dict(), int8_min_elements, int4), str(tmp / WEIGHTS))
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
