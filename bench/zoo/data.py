"""Training data in memory: train and validation windows of a prepared store, z-scored, never the test year.

Only times up to the end of the validation split are ever read (``loaded_until``), so a training
run cannot see a test-year target; shuffled batches index the in-memory array, never zarr slabs.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from bench.dataset import PreparedData
from bench.errors import TrainingError
from bench.normalization import NormStats
from bench.store import open_store
from bench.task import TaskSpec
from bench.windows import split_init_times, window_positions

TRAINING_SPLITS = ("train", "validation")
STATIC_FIELDS = ("land_sea_mask", "geopotential_at_surface")


@dataclasses.dataclass
class WindowSet:
    """Window positions into ``TrainingData.fields`` for one split: inputs (N, 12), targets (N, 4)."""

    init_times: pd.DatetimeIndex
    inputs: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.init_times)

    def strided(self, stride: int, offset: int = 0) -> "WindowSet":
        """Every ``stride``-th window (consecutive 6-hourly windows share 11 of 12 inputs)."""
        pick = slice(offset, None, max(1, stride))
        return WindowSet(self.init_times[pick], self.inputs[pick], self.targets[pick])


@dataclasses.dataclass
class FieldSet:
    """Single-field positions into ``TrainingData.fields`` for one split: codecs train on fields, not windows."""

    times: pd.DatetimeIndex
    positions: np.ndarray

    def __len__(self) -> int:
        return len(self.times)

    def strided(self, stride: int, offset: int = 0) -> "FieldSet":
        """Every ``stride``-th field."""
        pick = slice(offset, None, max(1, stride))
        return FieldSet(self.times[pick], self.positions[pick])


@dataclasses.dataclass
class TrainingData:
    """Z-scored fields (time, channel, lat, lon) up to the end of validation, windows per split, statistics."""

    task: TaskSpec
    stats: NormStats
    times: pd.DatetimeIndex
    fields: np.ndarray
    windows: dict[str, WindowSet]
    static: dict[str, np.ndarray]
    data_fingerprint: str
    source_title: str

    @property
    def loaded_until(self) -> pd.Timestamp:
        return self.times[-1]

    def batch(self, windows: WindowSet, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs (B, 12, C, H, W), targets (B, 4, C, H, W), input times (B, 12) for windows ``index``."""
        return (self.fields[windows.inputs[index]], self.fields[windows.targets[index]],
                self.times.values[windows.inputs[index]])

    def field_set(self, split: str) -> FieldSet:
        """Every field whose valid time lies in ``split`` (train: 2015-2018, validation: 2019)."""
        if split not in TRAINING_SPLITS:
            raise TrainingError(f"fields of split {split!r} are never loaded for training; use one of {TRAINING_SPLITS}")
        spec = self.task.splits[split]
        keep = np.flatnonzero((self.times >= spec.first_time) & (self.times <= spec.last_time))
        return FieldSet(self.times[keep], keep)

    def field_batch(self, fields: FieldSet, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fields (B, C, H, W) and their times (B,) for positions ``index`` of ``fields``."""
        return self.fields[fields.positions[index]], self.times.values[fields.positions[index]]


def _static_fields(source: str, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Static (time-free) fields of the source store, latitude ascending, (lat, lon) float32."""
    if not names:
        return {}
    ds = open_store(source)
    missing = [n for n in names if n not in ds]
    if missing:
        raise TrainingError(
            f"the store {source} has no static field(s) {missing}; drop them from options.static_fields in train.yaml"
        )
    out = {}
    for name in names:
        field = ds[name]
        if "latitude" in field.dims and field["latitude"].values[0] > field["latitude"].values[-1]:
            field = field.isel(latitude=slice(None, None, -1))
        out[name] = np.asarray(field.transpose("latitude", "longitude").values, dtype=np.float32)
    return out


def load_training_data(data: PreparedData, static_names: tuple[str, ...] = ()) -> TrainingData:
    """Read train + validation fields into memory (z-scored with the train-split statistics)."""
    task = data.task
    last = task.splits["validation"].last_time
    if last >= task.splits["test"].first_time:
        raise TrainingError("the validation split reaches into the test year; the task spec is inconsistent")
    n_keep = int(np.searchsorted(data.times.values, np.datetime64(last), side="right"))
    times = data.times[:n_keep]  # store times ascend: a prefix ends at the validation split
    slab = np.stack([data.data[c].isel(time=slice(0, n_keep)).values for c in data.channels], axis=1)
    fields = data.stats.zscore(slab.astype(np.float32), channel_axis=1)
    windows = {}
    for split in TRAINING_SPLITS:
        init = split_init_times(task, times, task.splits[split])
        pos = window_positions(task, times, init)
        windows[split] = WindowSet(init, pos.inputs, pos.targets)
    if len(windows["train"]) == 0 or len(windows["validation"]) == 0:
        raise TrainingError(
            f"{data.root} has {len(windows['train'])} train and {len(windows['validation'])} validation windows; "
            "training needs both (prepare a store covering the train and validation years)"
        )
    return TrainingData(task, data.stats, times, fields, windows, _static_fields(data.manifest.source, static_names),
                        data.fingerprint, data.manifest.source_title or data.manifest.source)
