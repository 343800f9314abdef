"""A prepared data directory as the harness sees it: windows, statistics, climatology."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bench.climatology import climatology_at
from bench.errors import DataError
from bench.normalization import NormStats
from bench.prepare import PreparedManifest, check_climatology_spec
from bench.task import TaskSpec
from bench.windows import split_init_times, window_positions


class PreparedData:
    """Lazy access to ``bench data prepare`` output for one task; reads slabs per batch."""

    def __init__(self, root: Path, task: TaskSpec):
        self.root = Path(root)
        manifest_path = self.root / "manifest.json"
        if not manifest_path.is_file():
            raise DataError(
                f"{self.root} is not a prepared data directory (no manifest.json); "
                f"run: bench data prepare --source STORE --out {self.root}"
            )
        self.manifest = PreparedManifest.read(manifest_path)
        self.task = task
        prepared_for = self.manifest.task_fingerprints.get(task.name)
        if prepared_for is None:
            raise DataError(
                f"{self.root} was prepared for {sorted(self.manifest.task_fingerprints)}, not {task.name}; "
                f"run: bench data prepare --source {self.manifest.source} --task {task.name} --out DIR"
            )
        if prepared_for != task.fingerprint:
            raise DataError(
                f"{self.root} was prepared for task fingerprint {prepared_for}, the task is now "
                f"{task.fingerprint}; re-run bench data prepare"
            )
        self.channels = task.channel_keys
        self.data = xr.open_zarr(self.root / "data.zarr")[self.channels]
        self.times = pd.DatetimeIndex(self.data["time"].values)
        self.stats = NormStats.read(self.root / "stats.json").subset(self.channels)

    @property
    def fingerprint(self) -> str:
        return self.manifest.data_fingerprint

    @property
    def climatology_path(self) -> Path:
        return self.root / "climatology.zarr"

    @functools.cached_property
    def climatology(self) -> np.ndarray:
        """Climatology as (dayofyear, hour, channel, latitude, longitude); refused unless built as this harness builds it."""
        check_climatology_spec(self.manifest, self.root, self.task)
        return load_climatology(self.climatology_path, self.channels)

    def init_times(self, split: str) -> pd.DatetimeIndex:
        return split_init_times(self.task, self.times, self.task.splits[split])

    def train_fields(self) -> tuple[np.ndarray, np.ndarray]:
        """Times (T,) and fields (T, channel, lat, lon) of the train split only, physical units, float32."""
        split = self.task.splits["train"]
        keep = np.flatnonzero((self.times >= split.first_time) & (self.times <= split.last_time))
        if len(keep) == 0:
            raise DataError(f"{self.root} has no train-split times ({split.first_time} .. {split.last_time})")
        return self.times.values[keep], self._gather(keep).astype(np.float32)

    def _gather(self, positions: np.ndarray) -> np.ndarray:
        """Fields at store ``positions`` (any shape) -> positions.shape + (channel, lat, lon)."""
        lo, hi = int(positions.min()), int(positions.max()) + 1
        slab = np.stack([self.data[c].isel(time=slice(lo, hi)).values for c in self.channels], axis=1)
        return slab[positions - lo]

    def split_positions(self, split: str) -> np.ndarray:
        """Store positions of every field whose time lies in ``split`` (the codec track's fields), in time order."""
        spec = self.task.splits[split]
        return np.flatnonzero((self.times >= spec.first_time) & (self.times <= spec.last_time))

    def fields_at(self, positions: np.ndarray) -> np.ndarray:
        """Fields at store ``positions`` -> (len(positions), channel, lat, lon), physical units, float32."""
        return self._gather(np.asarray(positions))

    def inputs(self, init_times: pd.DatetimeIndex) -> np.ndarray:
        """Input fields, (batch, input_steps, channel, lat, lon), physical units, float32."""
        return self._gather(window_positions(self.task, self.times, init_times).inputs)

    def targets(self, init_times: pd.DatetimeIndex) -> np.ndarray:
        """Target fields, (batch, output_steps, channel, lat, lon), physical units, float32."""
        return self._gather(window_positions(self.task, self.times, init_times).targets)


def load_climatology(path: Path, channels: list[str]) -> np.ndarray:
    """Read a prepared climatology zarr into (dayofyear, hour, channel, latitude, longitude)."""
    clim = xr.open_zarr(path)
    return np.stack([clim[c].values for c in channels], axis=2)


def valid_times(task: TaskSpec, init_times: pd.DatetimeIndex) -> np.ndarray:
    """Valid times of every target, (batch, output_steps) datetime64."""
    return pd.DatetimeIndex(init_times).values[:, None] + task.target_offsets()[None, :].astype("timedelta64[ns]")


def climatology_for(clim: np.ndarray, task: TaskSpec, times: np.ndarray) -> np.ndarray:
    """Climatology at ``times`` (any shape) -> times.shape + (channel, lat, lon)."""
    return climatology_at(clim, times, task.time_step_hours)


def default_cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "bench"))
