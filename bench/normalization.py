"""Normalisation statistics from the train split: z-score (mean/std) and [-1, 1] (min/max)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np


@dataclasses.dataclass(frozen=True)
class ChannelStats:
    """Train-split statistics of one channel, in physical units."""

    mean: float
    std: float
    min: float
    max: float
    diff_std: float  # std of 6-hourly differences: the scale of a one-step tendency


@dataclasses.dataclass(frozen=True)
class NormStats:
    """Per-channel statistics; arrays are normalised along a channel axis in ``channels`` order."""

    channels: tuple[str, ...]
    stats: dict[str, ChannelStats]

    def _vector(self, field: str, channel_axis: int, ndim: int) -> np.ndarray:
        values = np.array([getattr(self.stats[c], field) for c in self.channels], dtype=np.float64)
        shape = [1] * ndim
        shape[channel_axis] = len(values)
        return values.reshape(shape)

    def subset(self, channels: list[str] | tuple[str, ...]) -> "NormStats":
        return NormStats(tuple(channels), {c: self.stats[c] for c in channels})

    def zscore(self, x: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        """(x - mean) / std per channel."""
        axis = channel_axis % x.ndim
        return ((x - self._vector("mean", axis, x.ndim)) / self._vector("std", axis, x.ndim)).astype(x.dtype)

    def unzscore(self, z: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        axis = channel_axis % z.ndim
        return (z * self._vector("std", axis, z.ndim) + self._vector("mean", axis, z.ndim)).astype(z.dtype)

    def to_unit_range(self, x: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        """Map [min, max] of the train split to [-1, 1] per channel."""
        axis = channel_axis % x.ndim
        lo, hi = self._vector("min", axis, x.ndim), self._vector("max", axis, x.ndim)
        return (2.0 * (x - lo) / (hi - lo) - 1.0).astype(x.dtype)

    def from_unit_range(self, u: np.ndarray, channel_axis: int = -3) -> np.ndarray:
        axis = channel_axis % u.ndim
        lo, hi = self._vector("min", axis, u.ndim), self._vector("max", axis, u.ndim)
        return ((u + 1.0) * 0.5 * (hi - lo) + lo).astype(u.dtype)

    def to_json(self) -> dict:
        return {"channels": list(self.channels), "stats": {c: dataclasses.asdict(s) for c, s in self.stats.items()}}

    @classmethod
    def from_json(cls, raw: dict) -> "NormStats":
        return cls(tuple(raw["channels"]), {c: ChannelStats(**s) for c, s in raw["stats"].items()})

    @classmethod
    def read(cls, path: Path) -> "NormStats":
        return cls.from_json(json.loads(Path(path).read_text()))
