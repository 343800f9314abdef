"""The forecaster around every zoo network: normalisation, forcing channels and the residual option.

The network sees z-scored fields plus optional forcing channels (static maps, time of year) and
emits a raw output; with ``residual`` the forecast is the last input plus the raw output times the
channel's 6-hourly tendency scale. Statistics and static maps are buffers saved with the weights,
so a model always uses the statistics it was trained with, whatever data it is evaluated on.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from bench.normalization import NormStats


@dataclasses.dataclass(frozen=True)
class ForecastOptions:
    """Training practice the design leaves open, applied uniformly by the shared trainer (named on each card)."""

    residual: bool = True  # predict the change from the last input
    lat_weighted_loss: bool = True  # MSE weighted by cell area, as the metric
    static_fields: tuple[str, ...] = ()  # e.g. land_sea_mask, geopotential_at_surface (from the store)
    latitude_field: bool = False  # sin(latitude) as an input channel
    time_features: bool = False  # sin/cos of the time of year of every input step

    def forcing_channels(self) -> int:
        return len(self.static_fields) + int(self.latitude_field) + 2 * int(self.time_features)


def lat_weights(latitude_deg: np.ndarray) -> np.ndarray:
    """Cell-area weights with mean 1 (WeatherBench2's get_lat_weights); reuses the harness's kernel."""
    from bench.metrics import lat_weights as harness_lat_weights

    return np.asarray(harness_lat_weights(latitude_deg), dtype=np.float32)


def year_fraction(times: np.ndarray) -> np.ndarray:
    """Fraction of the year (0..1) of datetime64 ``times`` (any shape)."""
    t = np.asarray(times, dtype="datetime64[ns]")
    years = t.astype("datetime64[Y]")
    start, end = years.astype("datetime64[ns]"), (years + 1).astype("datetime64[ns]")
    return ((t - start) / (end - start)).astype(np.float32)


class Forecaster(nn.Module):
    """Network + statistics + forcings: ``forward(x_norm, input_times_frac)`` -> normalised forecast."""

    sample_kind = "windows"  # the shared trainer feeds (inputs, targets, input year fractions)

    def __init__(self, net: nn.Module, stats: NormStats, options: ForecastOptions, static_maps: np.ndarray | None = None):
        super().__init__()
        self.net, self.options, self.channels = net, options, tuple(stats.channels)
        vec = lambda field: torch.tensor([getattr(stats.stats[c], field) for c in stats.channels], dtype=torch.float32)
        self.register_buffer("mean", vec("mean"))
        self.register_buffer("std", vec("std"))
        self.register_buffer("tendency_scale", vec("diff_std") / vec("std"))
        n_static = len(options.static_fields) + int(options.latitude_field)
        if static_maps is None or len(static_maps) != n_static:
            raise ValueError(f"expected {n_static} static maps for {options}, got {None if static_maps is None else len(static_maps)}")
        self.register_buffer("static", torch.tensor(np.asarray(static_maps, dtype=np.float32)))

    def stats_json(self) -> dict:
        return {"channels": list(self.channels), "mean": self.mean.tolist(), "std": self.std.tolist()}

    def inputs(self, x: torch.Tensor, year_frac: torch.Tensor) -> torch.Tensor:
        """Append forcing channels to z-scored inputs (B, T, C, H, W)."""
        extra = []
        b, t, _, h, w = x.shape
        if len(self.static):
            extra.append(self.static[None, None].expand(b, t, -1, h, w).to(x.dtype))
        if self.options.time_features:
            angle = 2 * torch.pi * year_frac.to(x.dtype)
            tf = torch.stack([torch.sin(angle), torch.cos(angle)], dim=2)[..., None, None]
            extra.append(tf.expand(b, t, 2, h, w))
        return torch.cat([x, *extra], dim=2) if extra else x

    def forward(self, x: torch.Tensor, year_frac: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised forecast (B, T_out, C, H, W) from normalised inputs; ``target`` only feeds teacher forcing."""
        raw_target = self.to_raw(x, target) if target is not None else None
        raw = self.net(self.inputs(x, year_frac), raw_target)
        return self.from_raw(x, raw.float())

    def training_loss(self, batch: tuple[torch.Tensor, ...], lat_weights: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Latitude-weighted MSE of the normalised forecast (the shared trainer's objective for forecasters)."""
        x, y, frac = batch
        pred = self(x, frac, target=y)
        return ((pred.float() - y) ** 2 * lat_weights[:, None]).mean(), {}

    def evaluation(self, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(forecast, target), normalised, for the validation RMSE."""
        x, y, frac = batch
        return self(x, frac), y

    def scale(self) -> torch.Tensor:
        return self.tendency_scale[None, None, :, None, None]

    def from_raw(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        return x[:, -1:] + raw * self.scale() if self.options.residual else raw

    def to_raw(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y - x[:, -1:]) / self.scale() if self.options.residual else y

    @torch.no_grad()
    def predict_physical(self, inputs: np.ndarray, input_times: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Physical forecasts (B, T_out, C, H, W) float32 from physical inputs; eval mode, no batch statistics."""
        self.eval()
        mean, std = self.mean.numpy()[None, None, :, None, None], self.std.numpy()[None, None, :, None, None]
        out = []
        for start in range(0, len(inputs), batch_size):
            x = torch.from_numpy(((inputs[start:start + batch_size] - mean) / std).astype(np.float32))
            frac = torch.from_numpy(year_fraction(input_times[start:start + batch_size]))
            out.append(self(x, frac).numpy() * std + mean)
        return np.concatenate(out).astype(np.float32)


def static_maps(options: ForecastOptions, static: dict[str, np.ndarray], latitude: np.ndarray, width: int) -> np.ndarray:
    """Standardised static input maps (S, H, W): the store's static fields, then sin(latitude) if asked."""
    maps = [np.asarray(static[name], dtype=np.float32) for name in options.static_fields]
    maps = [(m - m.mean()) / (m.std() + 1e-6) for m in maps]
    if options.latitude_field:
        lat = np.sin(np.deg2rad(np.asarray(latitude, dtype=np.float32)))
        maps.append(np.repeat(lat[:, None], width, axis=1))
    return np.stack(maps) if maps else np.zeros((0, len(latitude), width), dtype=np.float32)
