"""The codec around every zoo codec network: statistics, input scaling, resizing, latent scaling, loss.

``Codec.encode`` takes z-scored fields (as ``TrainingData.fields``) and returns the posterior mode;
``decode`` maps latents back to z-scored fields. Input scaling (z-score or train-split min/max to
[-1, 1]) and the optional resize to the documents' 256x256 happen inside, so a latent model only
sees latents and ``scale_latents`` / ``unscale_latents`` (train-split per-channel statistics or one
scale factor, saved as buffers with the weights: no latent model guesses a constant).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.normalization import NormStats
from bench.zoo.codecs.base import CodecNet
from bench.zoo.config import CodecOptions

MINMAX_MARGIN = 0.05  # of the train range on each side: test-year extremes stay inside [-1, 1]


def codec_options(raw: dict) -> CodecOptions:
    """CodecOptions from their JSON form (config.json)."""
    raw = dict(raw)
    if raw.get("resize_to") is not None:
        raw["resize_to"] = tuple(raw["resize_to"])
    return CodecOptions(**raw)


class Codec(nn.Module):
    """Codec network + train-split statistics + scalings; trains in the shared loop on single fields."""

    sample_kind = "fields"

    def __init__(self, net: CodecNet, stats: NormStats, options: CodecOptions, height: int, width: int,
                 input_low: np.ndarray | None = None, input_high: np.ndarray | None = None):
        super().__init__()
        self.net, self.options, self.channels, self.grid = net, options, tuple(stats.channels), (height, width)
        vec = lambda field: torch.tensor([getattr(stats.stats[c], field) for c in stats.channels], dtype=torch.float32)
        n = len(self.channels)
        self.register_buffer("mean", vec("mean"))
        self.register_buffer("std", vec("std"))
        low = torch.full((n,), -1.0) if input_low is None else torch.as_tensor(input_low, dtype=torch.float32)
        high = torch.full((n,), 1.0) if input_high is None else torch.as_tensor(input_high, dtype=torch.float32)
        self.register_buffer("input_low", low)
        self.register_buffer("input_high", high)
        with torch.no_grad():
            was = net.training
            net.eval()
            self.latent_shape: tuple[int, ...] = tuple(self.encode(torch.zeros(1, n, height, width)).shape[1:])
            net.train(was)
        self.register_buffer("latent_mean", torch.zeros(self.latent_shape[0]))
        self.register_buffer("latent_std", torch.ones(self.latent_shape[0]))
        self.register_buffer("scale_factor", torch.tensor(float(options.scale_factor or 1.0)))

    # --- scalings -------------------------------------------------------------------------------
    def _channel(self, v: torch.Tensor) -> torch.Tensor:
        return v[None, :, None, None]

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Z-scored fields -> the network's input scaling, native grid."""
        if self.options.input_scaling == "minmax":
            low, high = self._channel(self.input_low), self._channel(self.input_high)
            return 2.0 * (x - low) / (high - low) - 1.0
        return x

    def from_input(self, s: torch.Tensor) -> torch.Tensor:
        """Inverse of ``to_input``."""
        if self.options.input_scaling == "minmax":
            low, high = self._channel(self.input_low), self._channel(self.input_high)
            return (s + 1.0) * 0.5 * (high - low) + low
        return s

    def resize_in(self, s: torch.Tensor) -> torch.Tensor:
        """The documents' way: bilinear resize to ``resize_to`` before encoding (no-op on the native grid)."""
        if self.options.resize_to is None:
            return s
        return F.interpolate(s, size=tuple(self.options.resize_to), mode="bilinear", align_corners=False)

    def resize_out(self, s: torch.Tensor) -> torch.Tensor:
        """Back to the native grid by area averaging (no-op on the native grid)."""
        if tuple(s.shape[-2:]) == self.grid:
            return s
        return F.adaptive_avg_pool2d(s, self.grid)

    def scale_latents(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> the scaled latents a latent model works on (about zero mean, unit variance)."""
        kind = self.options.latent_scaling
        if kind == "statistics":
            return (z - self._channel(self.latent_mean).to(z)) / self._channel(self.latent_std).to(z)
        if kind == "scale_factor":
            return z * self.scale_factor.to(z)
        return z

    def unscale_latents(self, u: torch.Tensor) -> torch.Tensor:
        """Inverse of ``scale_latents``."""
        kind = self.options.latent_scaling
        if kind == "statistics":
            return u * self._channel(self.latent_std).to(u) + self._channel(self.latent_mean).to(u)
        if kind == "scale_factor":
            return u / self.scale_factor.to(u)
        return u

    # --- codec ----------------------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Z-scored fields (B, C, H, W) -> latents (B, *latent_shape): the posterior mode."""
        return self.net.posterior(self.resize_in(self.to_input(x))).mode()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> z-scored fields (B, C, H, W) on the native grid."""
        return self.from_input(self.resize_out(self.net.decode(z).float()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of z-scored fields through the posterior mode."""
        return self.decode(self.encode(x))

    # --- the shared trainer's hooks ---------------------------------------------------------------
    def training_loss(self, batch: tuple[torch.Tensor, ...], lat_weights: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Reconstruction (L1 + L2 + gradient, latitude-weighted, in the input scaling) + KL weight x KL."""
        target = self.to_input(batch[0])
        inputs = self.resize_in(target)
        objective = getattr(self.net, "objective", None)
        if objective is not None:  # a network with its own objective (MAE pretraining of an RAE encoder)
            return objective(inputs)
        posterior = self.net.posterior(inputs)
        recon = self.resize_out(self.net.decode(posterior.sample()).float())
        w = (lat_weights if self.options.lat_weighted_loss else torch.ones_like(lat_weights))[:, None]
        diff = recon - target
        o = self.options
        loss = o.l1_weight * (diff.abs() * w).mean() + o.l2_weight * (diff ** 2 * w).mean()
        logs = {}
        if o.grad_weight:
            dx = torch.roll(diff, -1, dims=-1) - diff  # longitude wraps
            dy = diff[..., 1:, :] - diff[..., :-1, :]
            grad = (dx ** 2).mean() + (dy ** 2).mean()
            loss = loss + o.grad_weight * grad
            logs["grad"] = float(grad.detach())
        kl = posterior.kl().float()
        logs["kl"] = float(kl.detach())
        return loss + o.kl_weight * kl, logs

    def evaluation(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(reconstruction, target), z-scored, for the validation RMSE (a pretraining network may define its own view)."""
        own = getattr(self.net, "evaluation_pair", None)
        if own is not None:  # e.g. MAE: masked patches predicted, visible ones copied
            return self.from_input(self.resize_out(own(self.resize_in(self.to_input(batch[0]))).float())), batch[0]
        return self(batch[0]), batch[0]

    @torch.no_grad()
    def latents_of(self, fields: np.ndarray, device: torch.device, batch_size: int = 128) -> torch.Tensor:
        """Unscaled latents of z-scored ``fields`` (N, C, H, W), eval mode."""
        self.eval()
        out = [self.encode(torch.from_numpy(fields[i:i + batch_size]).to(device)).float().cpu()
               for i in range(0, len(fields), batch_size)]
        return torch.cat(out)

    @torch.no_grad()
    def after_training(self, train_fields: np.ndarray, val_fields: np.ndarray, device: torch.device) -> dict:
        """Latent statistics from the train split only (buffers), and how validation latents look scaled."""
        z = self.latents_of(train_fields, device)
        mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3)).clamp_min(1e-8)
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)
        if self.options.latent_scaling == "scale_factor" and self.options.scale_factor is None:
            self.scale_factor.fill_(float(1.0 / z.std()))
        zv = self.latents_of(val_fields, device)
        scaled = self.scale_latents(zv)

        def summary(u: torch.Tensor) -> dict:
            return {"mean": u.mean(dim=(0, 2, 3)).tolist(), "std": u.std(dim=(0, 2, 3)).tolist(),
                    "overall_std": float(u.std()), "max_abs": float(u.abs().max())}

        return {"latent_statistics": {"train_fields": len(train_fields), "mean": mean.tolist(), "std": std.tolist()},
                "latent_scaling": self.latent_scaling_json(),
                "validation_latents": {"unit_statistics": summary(zv), "codec_scaling": summary(scaled)}}

    def latent_scaling_json(self) -> dict:
        kind = self.options.latent_scaling
        if kind == "statistics":
            return {"kind": "statistics", "mean": self.latent_mean.tolist(), "std": self.latent_std.tolist()}
        if kind == "scale_factor":
            return {"kind": "scale_factor", "value": float(self.scale_factor)}
        return {"kind": "none"}

    def describe(self) -> dict:
        """JSON-able description (the codec contract): scalings, grid, latent shape and compression ratio."""
        values = len(self.channels) * self.grid[0] * self.grid[1]
        latent_numbers = int(np.prod(self.latent_shape))
        scaling = "zscore" if self.options.input_scaling == "zscore" else f"minmax[-1,1] (train range + {MINMAX_MARGIN:.0%} margin)"
        return {"input_scaling": scaling, "latent_scaling": self.latent_scaling_json(),
                "resize_to": list(self.options.resize_to) if self.options.resize_to else None,
                "native_grid": self.options.resize_to is None, "latent_shape": list(self.latent_shape),
                "compression_ratio": values / latent_numbers, "channels": list(self.channels),
                "encoder_input_size": list(self.net.image_size) if hasattr(self.net, "image_size") else None,
                "model": getattr(self.net, "config", {}).get("name") if isinstance(getattr(self.net, "config", None), dict) else None}

    @torch.no_grad()
    def reconstruct_physical(self, fields: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Physical -> physical round trip (eval mode)."""
        return self.decode_physical(self.encode_physical(fields, batch_size), batch_size)

    @torch.no_grad()
    def encode_physical(self, fields: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Physical fields (B, C, H, W) -> latents (B, *latent_shape) float32."""
        self.eval()
        mean, std = self.mean.numpy()[None, :, None, None], self.std.numpy()[None, :, None, None]
        out = [self.encode(torch.from_numpy(((fields[i:i + batch_size] - mean) / std).astype(np.float32))).float().numpy()
               for i in range(0, len(fields), batch_size)]
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def decode_physical(self, latents: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Latents -> physical fields (B, C, H, W) float32."""
        self.eval()
        mean, std = self.mean.numpy()[None, :, None, None], self.std.numpy()[None, :, None, None]
        out = [self.decode(torch.from_numpy(np.asarray(latents[i:i + batch_size], dtype=np.float32))).numpy() * std + mean
               for i in range(0, len(latents), batch_size)]
        return np.concatenate(out).astype(np.float32)


def input_range(fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel min/max of z-scored train fields (N, C, H, W), widened by the margin."""
    low, high = fields.min(axis=(0, 2, 3)), fields.max(axis=(0, 2, 3))
    pad = MINMAX_MARGIN * (high - low)
    return (low - pad).astype(np.float32), (high + pad).astype(np.float32)


def codec_arch(model: str, model_args: dict, options: CodecOptions, height: int, width: int) -> dict:
    """The config.json of a codec checkpoint: enough to rebuild it without any other file."""
    return {"kind": "codec", "model": model, "model_args": model_args, "codec": dataclasses.asdict(options),
            "height": height, "width": width}


def codec_from_arch(arch: dict, stats: NormStats) -> Codec:
    """An untrained Codec of ``arch`` (config.json); its buffers and weights come from the checkpoint."""
    from bench.zoo.registry import create_model

    net = create_model(arch["model"], **arch["model_args"])
    return Codec(net, stats, codec_options(arch["codec"]), arch["height"], arch["width"])


def build_codec(config, data, submission_dir=None) -> tuple[Codec, dict]:
    """The Codec for recipe ``config`` on ``data``'s task (input range from the train split), and its config.json."""
    from pathlib import Path

    from bench.zoo.registry import create_model

    h, w = data.task.grid.shape
    eh, ew = config.codec.resize_to or (h, w)
    model_args = {"in_channels": len(data.task.channel_keys), "height": eh, "width": ew, **config.model_args}
    if model_args.get("encoder_path"):  # a pretrained encoder directory, relative to the submission
        model_args["encoder_path"] = str(Path(submission_dir or ".") / model_args["encoder_path"].format(task=data.task.name))
    net = create_model(config.model, **model_args)
    portable = net.portable_args(model_args) if hasattr(net, "portable_args") else model_args
    train = data.field_set("train")
    low, high = input_range(data.fields[train.positions[0]:train.positions[-1] + 1])
    codec = Codec(net, data.stats, config.codec, h, w, low, high)
    return codec, codec_arch(config.model, portable, config.codec, h, w)


def record_description(weights_dir, task) -> dict:
    """Add ``describe()`` (latent shape, compression ratio, scalings) to a codec checkpoint's meta.json, atomically.

    For checkpoints written before the trainer recorded it; the codec is loaded and asked, nothing is typed in."""
    import json
    import os
    from pathlib import Path

    from bench.zoo.checkpoint import META, load_codec

    path = Path(weights_dir) / META
    meta = json.loads(path.read_text())
    meta["codec"] = load_codec(weights_dir, task).describe()
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp, path)
    return meta["codec"]
