"""Training data in memory: train and validation windows of a prepared store, z-scored, never the test year.

Only times up to the end of the validation split are ever read (``loaded_until``), so a training
run cannot see a test-year target; shuffled batches index the in-memory array, never zarr slabs.
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

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
    return _assemble(task, data.stats, times, fields, _static_fields(data.manifest.source, static_names),
                     data.fingerprint, data.manifest.source_title or data.manifest.source, str(data.root))


def _assemble(task: TaskSpec, stats: NormStats, times: pd.DatetimeIndex, fields: np.ndarray,
              static: dict[str, np.ndarray], fingerprint: str, title: str, where: str) -> TrainingData:
    """Cut train and validation windows out of in-memory fields that end with the validation split."""
    windows = {}
    for split in TRAINING_SPLITS:
        init = split_init_times(task, times, task.splits[split])
        pos = window_positions(task, times, init)
        windows[split] = WindowSet(init, pos.inputs, pos.targets)
    if len(windows["train"]) == 0 or len(windows["validation"]) == 0:
        raise TrainingError(
            f"{where} has {len(windows['train'])} train and {len(windows['validation'])} validation windows; "
            "training needs both (prepare a store covering the train and validation years)"
        )
    return TrainingData(task, stats, times, fields, windows, static, fingerprint, title)


# A training pack: the train + validation fields of one task in one compressed .npz, so a training run can
# travel without the store (a lent GPU machine gets a copy of the repository and at most 64 MiB beside it).
# It holds no test-year field at all, so a run fed from it cannot touch a test target by construction.
PACK_SUFFIX = ".npz"


def is_training_pack(data: str | None) -> bool:
    return bool(data) and str(data).endswith(PACK_SUFFIX) and "://" not in str(data)


def save_training_pack(prepared: PreparedData, path: Path) -> Path:
    """Write ``prepared``'s train + validation fields, statistics and static fields to ``path`` (atomically)."""
    source = prepared.manifest.source
    present = tuple(n for n in STATIC_FIELDS if n in open_store(source))
    data = load_training_data(prepared, present)
    meta = {"task": data.task.name, "task_fingerprint": data.task.fingerprint, "stats": data.stats.to_json(),
            "data_fingerprint": data.data_fingerprint, "source_title": data.source_title}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PACK_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, fields=data.fields, times=data.times.values.astype("datetime64[ns]"),
                            meta=np.array(json.dumps(meta)), **{f"static_{k}": v for k, v in data.static.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_pack_task(path: Path) -> str:
    """The task name a training pack was written for."""
    with np.load(path) as pack:
        return json.loads(str(pack["meta"]))["task"]


def load_training_pack(path: Path, task: TaskSpec, static_names: tuple[str, ...] = ()) -> TrainingData:
    """Training data from a pack written by :func:`save_training_pack`; refuses another task or a test-year time."""
    if not str(path).endswith(PACK_SUFFIX) or not os.path.isfile(path):
        raise TrainingError(f"{path} is not a training pack file; write one with: bench data pack --task {task.name} --out FILE.npz")
    with np.load(path) as pack:
        meta = json.loads(str(pack["meta"]))
        if meta["task_fingerprint"] != task.fingerprint:
            raise TrainingError(f"{path} was packed for task {meta['task']} (fingerprint {meta['task_fingerprint']}), "
                                f"not {task.name} ({task.fingerprint}); pack the data again for this task")
        missing = [n for n in static_names if f"static_{n}" not in pack]
        if missing:
            raise TrainingError(f"{path} has no static field(s) {missing}; drop them from options.static_fields in train.yaml")
        times = pd.DatetimeIndex(pack["times"])
        if len(times) and times[-1] >= task.splits["test"].first_time:
            raise TrainingError(f"{path} holds fields of the test split (up to {times[-1]}); a training pack must end with validation")
        fields = np.asarray(pack["fields"], dtype=np.float32)
        static = {n: np.asarray(pack[f"static_{n}"], dtype=np.float32) for n in static_names}
    return _assemble(task, NormStats.from_json(meta["stats"]), times, fields, static, meta["data_fingerprint"],
                     meta["source_title"], str(path))
