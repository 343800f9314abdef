"""Latent forecasters (the design's WeatherDiff family): forecast in a trained codec's latent space.

``LatentForecaster`` wraps a latent network and a trained ``bench.zoo.codec.Codec``: the 12 input
fields are encoded with the codec (its own input scaling inside), scaled with the codec's own latent
scaling (``scale_latents``: train-split statistics or scale factor, never a guessed constant), the
network forecasts the 4 future scaled latents (deterministic U-Net) or samples them (conditional
diffusion), and the codec decodes them. The wrapper supplies its loss to the shared training loop
(``training_loss``), its validation pair (``evaluation``) and serves physical numpy in and out.

Freezing (document 001): ``freeze_encoder`` encodes under ``no_grad``; ``freeze_decoder`` stops the
decoder's gradients. Which codec parameters belong to which half is found by one backward pass through
``encode`` and one through ``decode`` (codecs differ in layout; the contract names only the methods).
The codec's weights travel inside the latent checkpoint (``codec.*``), so a submission directory is
self-contained (the sandbox lets a model read only its own directory); the codec's architecture is in
``config.json``. Training starts from the codec checkpoint named in ``model_args.codec``.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import TrainingError, WeightsMissingError
from bench.normalization import NormStats
from bench.zoo.forecaster import lat_weights as field_lat_weights

LATENT_KIND = "latent"
LOSSES = ("latent", "pixel")
# model_args keys the wrapper consumes; the rest go to the latent network.
WRAPPER_ARGS = ("codec", "freeze_encoder", "freeze_decoder", "loss", "residual", "members", "sampling_steps",
                "sampling_seed", "evaluation_members", "latent_scaling")
LATENT_SCALINGS = ("codec", "unit")


@dataclasses.dataclass(frozen=True)
class LatentOptions:
    """How a latent forecaster uses its codec and how it is trained and sampled (named on each card)."""

    codec: str = ""  # the codec checkpoint to start from, relative to the submission ("{task}" replaced)
    freeze_encoder: bool = True
    freeze_decoder: bool = True
    loss: str = "latent"  # MSE of scaled latents, or "pixel": latitude-weighted MSE of decoded fields
    residual: bool = True  # forecast the change from the last input's latent (a zero output = persistence)
    members: int = 1  # ensemble size served (diffusion)
    sampling_steps: int = 20  # DDIM steps (diffusion)
    sampling_seed: int = 0  # base seed of the sampler: forecasts are reproducible
    evaluation_members: int = 1  # members averaged for the validation RMSE during training (diffusion)
    # "codec": the codec's own latent scaling (its train-split statistics or scale factor); "unit": raw
    # latents, as if their statistics were mean 0 / std 1 (document 004's question: does scaling matter?)
    latent_scaling: str = "codec"

    def __post_init__(self) -> None:
        if self.latent_scaling not in LATENT_SCALINGS:
            raise TrainingError(f"latent_scaling {self.latent_scaling!r} is not one of {LATENT_SCALINGS}")
        if self.loss not in LOSSES:
            raise TrainingError(f"latent loss {self.loss!r} is not one of {LOSSES}")
        if not self.freeze_encoder and self.loss == "latent":
            raise TrainingError("a trainable encoder needs loss: pixel (a latent loss would let the encoder collapse the targets)")


def split_model_args(model_args: dict[str, Any]) -> tuple[LatentOptions, dict[str, Any]]:
    """(wrapper options, network arguments) from a recipe's model_args."""
    options = LatentOptions(**{k: v for k, v in model_args.items() if k in WRAPPER_ARGS})
    return options, {k: v for k, v in model_args.items() if k not in WRAPPER_ARGS}


def codec_weights_dir(submission_dir: Path, codec: str, task_name: str) -> Path:
    """The codec checkpoint a latent recipe names, resolved against its submission directory."""
    if not codec:
        raise TrainingError("a latent forecaster's model_args must name its codec, e.g. codec: ../sd_vae/weights/{task}")
    return (Path(submission_dir) / codec.format(task=task_name)).resolve()


def load_frozen_codec(path: Path, task) -> nn.Module:
    """The trained codec at ``path``; WeightsMissingError naming the path and the fix when it is not there."""
    from bench.zoo.checkpoint import CONFIG, META, WEIGHTS

    missing = [name for name in (CONFIG, WEIGHTS, META) if not (Path(path) / name).is_file()]
    if missing:
        codec_dir = Path(path).parent.parent if Path(path).parent.name == "weights" else Path(path)
        raise WeightsMissingError(
            f"the codec weights at {path} are missing ({', '.join(missing)}); a latent forecaster needs its trained codec: "
            f"train it first (bench train {codec_dir} --task {task.name}) or restore them (git checkout)"
        )
    from bench.zoo.checkpoint import load_codec

    return load_codec(path, task)


def codec_parameter_roles(codec: nn.Module) -> tuple[set[int], set[int]]:
    """ids of the codec parameters that ``encode`` and that ``decode`` use (one backward pass through each)."""
    c, h, w = codec.latent_shape
    channels = len(codec.channels)
    height, width = codec.grid
    roles = []
    was = codec.training
    codec.eval()
    saved = {id(p): p.requires_grad for p in codec.parameters()}
    for p in codec.parameters():
        p.requires_grad_(True)
    try:
        for run in (lambda: codec.encode(torch.zeros(1, channels, height, width)),
                    lambda: codec.decode(torch.zeros(1, c, h, w))):
            codec.zero_grad(set_to_none=True)
            out = run()
            if not out.requires_grad:  # e.g. an RAE encodes under no_grad: nothing of it can train
                roles.append(set())
                continue
            out.float().square().sum().add(out.float().sum()).backward()
            roles.append({id(p) for p in codec.parameters() if p.grad is not None})
            codec.zero_grad(set_to_none=True)
    finally:
        for p in codec.parameters():
            p.requires_grad_(saved[id(p)])
        codec.train(was)
    return roles[0], roles[1]


def scale(codec: nn.Module, z: torch.Tensor, options: LatentOptions) -> torch.Tensor:
    """Codec latents -> the latents the network works on (the codec's scaling unless ``unit``)."""
    return codec.scale_latents(z) if options.latent_scaling == "codec" else z


def unscale(codec: nn.Module, u: torch.Tensor, options: LatentOptions) -> torch.Tensor:
    """Inverse of ``scale``."""
    return codec.unscale_latents(u) if options.latent_scaling == "codec" else u


class LatentForecaster(nn.Module):
    """Codec + latent network: z-scored windows in, z-scored forecasts (or ensembles) out."""

    sample_kind = "windows"

    def __init__(self, net: nn.Module, codec: nn.Module, stats: NormStats, options: LatentOptions):
        super().__init__()
        self.net, self.codec, self.options, self.channels = net, codec, options, tuple(stats.channels)
        vec = lambda field: torch.tensor([getattr(stats.stats[c], field) for c in stats.channels], dtype=torch.float32)
        self.register_buffer("mean", vec("mean"))
        self.register_buffer("std", vec("std"))
        self.probabilistic = bool(getattr(net, "probabilistic", False))
        self.direct = bool(getattr(net, "direct", False))
        self.set_freezing()

    # --- freezing ------------------------------------------------------------------------------
    def set_freezing(self) -> None:
        """requires_grad of codec parameters from the options: only unfrozen halves train."""
        encode_ids, decode_ids = codec_parameter_roles(self.codec)
        for p in self.codec.parameters():
            trainable = (not self.options.freeze_encoder and id(p) in encode_ids) or (
                not self.options.freeze_decoder and id(p) in decode_ids)
            p.requires_grad_(trainable)

    def train(self, mode: bool = True) -> "LatentForecaster":
        super().train(mode)
        self.codec.eval()  # the codec never changes behaviour between training and serving
        return self

    # --- latents ------------------------------------------------------------------------------
    def encode_steps(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) z-scored -> (B, T, c, h, w) scaled latents."""
        b, t = x.shape[:2]
        context = torch.no_grad() if self.options.freeze_encoder else torch.enable_grad()
        with context:
            z = self.codec.encode(x.flatten(0, 1)).float()
        u = scale(self.codec, z, self.options)
        return u.view(b, t, *u.shape[1:])

    def decode_steps(self, u: torch.Tensor) -> torch.Tensor:
        """(B, T, c, h, w) scaled latents -> (B, T, C, H, W) z-scored fields."""
        b, t = u.shape[:2]
        x = self.codec.decode(unscale(self.codec, u.flatten(0, 1), self.options)).float()
        return x.view(b, t, *x.shape[1:])

    # --- deterministic path -------------------------------------------------------------------
    def forecast_latents(self, u_in: torch.Tensor) -> torch.Tensor:
        """(B, 12, c, h, w) -> (B, 4, c, h, w) scaled latents (the network predicts the change if residual)."""
        out = self.net(u_in)
        return u_in[:, -1:] + out if self.options.residual else out

    def forward(self, x: torch.Tensor, year_frac: torch.Tensor | None = None, target: torch.Tensor | None = None) -> torch.Tensor:
        """Z-scored forecast (B, 4, C, H, W); an ensemble's is its first member's (see ``sample``)."""
        if self.direct:  # RAE Stage-1 direct: the network reads fields through the codec's frozen encoder itself
            return self.net(x, self.codec)
        if self.probabilistic:
            return self.sample(x, members=1, seed=self.options.sampling_seed)[:, 0]
        return self.decode_steps(self.forecast_latents(self.encode_steps(x)))

    # --- the shared trainer's hooks -----------------------------------------------------------
    def training_loss(self, batch: tuple[torch.Tensor, ...], lat_weights: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Noise-prediction loss (diffusion), latent MSE, or latitude-weighted pixel MSE (decoder in the loop)."""
        x, y = batch[0], batch[1]
        if self.direct:
            loss = ((self(x) - y) ** 2 * lat_weights[:, None]).mean()
            return loss, {"pixel_mse": float(loss.detach())}
        u_in = self.encode_steps(x)
        with torch.no_grad():
            u_target = self.encode_steps(y) if self.options.loss == "latent" or self.probabilistic else None
        if self.probabilistic:
            loss = self.net.noise_loss(u_in, u_target)
            return loss, {"noise_mse": float(loss.detach())}
        u_pred = self.forecast_latents(u_in)
        if self.options.loss == "latent":
            loss = ((u_pred - u_target) ** 2).mean()
            return loss, {"latent_mse": float(loss.detach())}
        pred = self.decode_steps(u_pred)
        loss = ((pred - y) ** 2 * lat_weights[:, None]).mean()
        return loss, {"pixel_mse": float(loss.detach())}

    def evaluation(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(forecast, target), z-scored; a diffusion model's forecast is the mean of ``evaluation_members`` samples."""
        x, y = batch[0], batch[1]
        if self.probabilistic:
            return self.sample(x, self.options.evaluation_members, self.options.sampling_seed).mean(dim=1), y
        return self(x), y

    # --- probabilistic path -------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, x: torch.Tensor, members: int, seed: int, steps: int | None = None) -> torch.Tensor:
        """(B, members, 4, C, H, W) z-scored ensemble; the same ``seed`` gives the same members."""
        u_in = self.encode_steps(x)
        generator = torch.Generator(device=x.device).manual_seed(int(seed))
        u = self.net.sample(u_in, members, generator, steps or self.options.sampling_steps)  # (B, M, 4, c, h, w)
        b = u.shape[0]
        fields = self.decode_steps(u.flatten(0, 1))
        return fields.view(b, members, *fields.shape[1:])

    # --- serving ------------------------------------------------------------------------------
    def _norm(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mean.numpy()[None, None, :, None, None], self.std.numpy()[None, None, :, None, None]

    @torch.no_grad()
    def predict_physical(self, inputs: np.ndarray, input_times: np.ndarray | None = None, batch_size: int = 16) -> np.ndarray:
        """Physical forecasts (B, 4, C, H, W) float32 from physical inputs (B, 12, C, H, W)."""
        self.eval()
        mean, std = self._norm()
        out = [self(torch.from_numpy(((inputs[i:i + batch_size] - mean) / std).astype(np.float32))).numpy() * std + mean
               for i in range(0, len(inputs), batch_size)]
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def sample_physical(self, inputs: np.ndarray, init_times: np.ndarray, members: int | None = None,
                        steps: int | None = None) -> np.ndarray:
        """Physical ensembles (B, M, 4, C, H, W) float32; init i's members are seeded by its init time (reproducible)."""
        self.eval()
        mean, std = self._norm()
        members = members or self.options.members
        out = []
        for i in range(len(inputs)):
            seed = self.options.sampling_seed + int(np.datetime64(init_times[i], "h").astype(np.int64))
            x = torch.from_numpy(((inputs[i:i + 1] - mean) / std).astype(np.float32))
            out.append(self.sample(x, members, seed, steps).numpy() * std[:, None] + mean[:, None])
        return np.concatenate(out).astype(np.float32)

    def describe(self) -> dict:
        """What a card says about this latent forecaster."""
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        return {"codec": self.codec.describe(), "options": dataclasses.asdict(self.options),
                "latent_shape": list(self.codec.latent_shape), "probabilistic": self.probabilistic,
                "network": getattr(self.net, "config", {}).get("name") if isinstance(getattr(self.net, "config", None), dict) else None,
                "trainable_parameters": int(trainable)}


def latent_arch(model: str, net_args: dict, options: LatentOptions, codec_arch: dict) -> dict:
    """config.json of a latent checkpoint: the network, the wrapper options and the codec's own config.json."""
    return {"kind": LATENT_KIND, "model": model, "model_args": net_args, "latent": dataclasses.asdict(options),
            "codec_arch": codec_arch}


def latent_from_arch(arch: dict, stats: NormStats) -> LatentForecaster:
    """An untrained LatentForecaster of ``arch``; the codec's and the network's weights come from the checkpoint."""
    from bench.zoo.codec import codec_from_arch
    from bench.zoo.registry import create_model

    codec = codec_from_arch(arch["codec_arch"], stats)
    net = create_model(arch["model"], **arch["model_args"])
    if hasattr(net, "attach_codec"):
        net.attach_codec(codec)
    return LatentForecaster(net, codec, stats, LatentOptions(**arch["latent"]))


def build_latent(config, data, submission_dir: Path | None = None) -> tuple[LatentForecaster, dict]:
    """The LatentForecaster for recipe ``config`` on ``data``'s task, from its trained codec, and its config.json."""
    from bench.zoo.registry import create_model

    options, net_args = split_model_args(config.model_args)
    path = codec_weights_dir(submission_dir or Path("."), options.codec, data.task.name)
    codec = load_frozen_codec(path, data.task)
    codec_arch = json.loads((path / "config.json").read_text())
    c, h, w = codec.latent_shape
    net_args = {"latent_channels": c, "latent_height": h, "latent_width": w, "in_steps": data.task.input_steps,
                "out_steps": data.task.output_steps, **net_args}
    net_args.setdefault("field_channels", len(data.task.channel_keys))
    net = create_model(config.model, **net_args)
    if hasattr(net, "attach_codec"):  # RAE direct: decoder sized from the codec's encoder
        net.attach_codec(codec)
    if hasattr(net, "fit_target_scale"):  # diffusion: the spread of the latent changes, from train windows only
        fit_target_scale(net, codec, data, options)
    model = LatentForecaster(net, codec, data.stats, options)
    return model, latent_arch(config.model, net_args, options, codec_arch)


@torch.no_grad()
def fit_target_scale(net: nn.Module, codec: nn.Module, data, options: LatentOptions, windows: int = 512) -> None:
    """Per lead and latent channel, the std of (future - last input) scaled latents on evenly spaced train windows."""
    train = data.windows["train"]
    index = np.linspace(0, len(train) - 1, min(windows, len(train))).astype(int)
    x, y, _ = data.batch(train, index)
    codec.eval()
    encode = lambda f: scale(codec, codec.encode(torch.from_numpy(f.reshape(-1, *f.shape[2:]))).float(), options)
    u_last = encode(x[:, -1:]).view(len(index), 1, *codec.latent_shape)
    u_future = encode(y).view(len(index), y.shape[1], *codec.latent_shape)
    net.fit_target_scale(u_last, u_future)


def lat_weight_tensor(latitude: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(field_lat_weights(latitude))
