"""Training data in memory: train and validation windows of a prepared store, z-scored, never the test year.

Only times up to the end of the validation split are ever read (``loaded_until``), so a training
run cannot see a test-year target; shuffled batches index the in-memory array, never zarr slabs.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
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
# travel without the store (a lent GPU machine gets a copy of the repository and at most 64 MiB beside it per call).
# It holds no test-year field at all, so a run fed from it cannot touch a test target by construction.
# A pack larger than one call carries is split on time into parts, ``<stem>-part<k>of<n>.npz``, each a pack of its
# own; the parts travel one call at a time and are put back together when ``<stem>.npz`` (or any part) is read.
PACK_SUFFIX = ".npz"
_PART = re.compile(r"^(?P<stem>.+)-part(?P<index>\d+)of(?P<count>\d+)\.npz$")


def is_training_pack(data: str | None) -> bool:
    return bool(data) and str(data).endswith(PACK_SUFFIX) and "://" not in str(data)


def _stem(path: Path) -> str:
    """The pack's name without the suffix (``<stem>.npz``), whether ``path`` names the pack or one of its parts."""
    match = _PART.match(path.name)
    return match["stem"] if match else path.name[:-len(PACK_SUFFIX)]


def part_path(path: Path, index: int, count: int) -> Path:
    """Where part ``index`` of ``count`` of the pack ``path`` (``<stem>.npz``) is written."""
    return path.with_name(f"{_stem(path)}-part{index}of{count}{PACK_SUFFIX}")


def _parts_on_disk(path: Path) -> dict[Path, int]:
    """The part files of the pack ``path`` that exist beside it, each with the count of the split it belongs to."""
    stem = _stem(path)
    found = ((p, _PART.match(p.name)) for p in path.parent.glob(f"{stem}-part*of*{PACK_SUFFIX}"))
    return {p: int(m["count"]) for p, m in found if m and m["stem"] == stem}


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``np.savez_compressed`` to a temporary file beside ``path``; the caller renames it."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PACK_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _remove_pack(path: Path) -> None:
    """Delete an earlier pack at ``path``, whole or in parts: it would be read in place of (or mixed with) the new one."""
    path.unlink(missing_ok=True)
    for stale in _parts_on_disk(path):
        stale.unlink()


def _pack_arrays(data: TrainingData, meta: dict, lo: int, hi: int) -> dict[str, np.ndarray]:
    return {"fields": data.fields[lo:hi], "times": data.times.values[lo:hi].astype("datetime64[ns]"),
            "meta": np.array(json.dumps(meta)), **{f"static_{k}": v for k, v in data.static.items()}}


def save_training_pack(prepared: PreparedData, path: Path, max_part_mib: float | None = None) -> list[Path]:
    """Write ``prepared``'s train + validation fields, statistics and static fields to ``path`` (atomically).

    With ``max_part_mib``, a pack larger than that is written as the fewest parts (contiguous time ranges) that
    each stay under it, so each can travel in one device call; the written files are returned, in order.
    """
    source = prepared.manifest.source
    present = tuple(n for n in STATIC_FIELDS if n in open_store(source))
    data = load_training_data(prepared, present)
    meta = {"task": data.task.name, "task_fingerprint": data.task.fingerprint, "stats": data.stats.to_json(),
            "data_fingerprint": data.data_fingerprint, "source_title": data.source_title}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    limit = None if max_part_mib is None else max_part_mib * 2**20
    whole = _write_npz(path, _pack_arrays(data, meta, 0, len(data.times)))
    size = whole.stat().st_size
    if limit is None or size <= limit:
        _remove_pack(path)
        os.replace(whole, path)
        return [path]
    whole.unlink()
    count = max(2, int(np.ceil(size / limit)))
    while count <= len(data.times):
        bounds = np.linspace(0, len(data.times), count + 1).round().astype(int)
        pack_id = f"{data.data_fingerprint}:{data.times[0]}:{data.times[-1]}:{count}"
        temps: list[Path] = []
        try:
            for k in range(count):
                part_meta = {**meta, "part": {"index": k + 1, "count": count, "pack_id": pack_id}}
                temps.append(_write_npz(path, _pack_arrays(data, part_meta, bounds[k], bounds[k + 1])))
                if temps[-1].stat().st_size > limit:
                    break
            else:
                _remove_pack(path)
                out = [part_path(path, k + 1, count) for k in range(count)]
                for tmp, final in zip(temps, out):
                    os.replace(tmp, final)
                return out
        finally:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
        count += 1
    raise TrainingError(f"cannot split the pack of {data.task.name} into parts under {max_part_mib} MiB; raise --part-mib")


def pack_files(path: Path) -> list[Path]:
    """The file(s) a pack path names: itself, or every part of a split pack (given its stem or any one part)."""
    path = Path(path)
    if _PART.match(path.name) is None and path.is_file():
        return [path]
    stem = _stem(path)
    counts = set(_parts_on_disk(path).values())
    if not counts:
        return [path]  # neither a pack nor parts of one: the loader names the problem
    if len(counts) > 1:
        raise TrainingError(f"{path.parent} holds parts of {stem}{PACK_SUFFIX} split {sorted(counts)} ways; "
                            f"delete them and write the pack again (bench data pack ... --part-mib M)")
    count = counts.pop()
    expected = [part_path(path, k + 1, count) for k in range(count)]
    missing = [p.name for p in expected if not p.is_file()]
    if missing:
        raise TrainingError(f"the training pack {stem}{PACK_SUFFIX} is split into {count} parts and {missing} "
                            f"are not in {path.parent}; copy every part beside the others")
    return expected


def read_pack_task(path: Path) -> str:
    """The task name a training pack was written for."""
    with np.load(pack_files(path)[0]) as pack:
        return json.loads(str(pack["meta"]))["task"]


def _read_pack_file(path: Path, task: TaskSpec, static_names: tuple[str, ...]) -> tuple[dict, np.ndarray, np.ndarray, dict]:
    """One pack file's meta, times, fields and static fields, checked against ``task``."""
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
        times = pack["times"]
        if len(times) and times[-1] >= np.datetime64(task.splits["test"].first_time):
            raise TrainingError(f"{path} holds fields of the test split (up to {pd.Timestamp(times[-1])}); "
                                "a training pack must end with validation")
        fields = np.asarray(pack["fields"], dtype=np.float32)
        static = {n: np.asarray(pack[f"static_{n}"], dtype=np.float32) for n in static_names}
    return meta, times, fields, static


def load_training_pack(path: Path, task: TaskSpec, static_names: tuple[str, ...] = ()) -> TrainingData:
    """Training data from a pack written by :func:`save_training_pack` (one file or all its parts, joined on time);
    refuses another task, a test-year time, or parts of different packs."""
    files = pack_files(Path(path))
    read = [_read_pack_file(f, task, static_names) for f in files]
    meta, static = read[0][0], read[0][3]
    ids = {json.dumps(m.get("part", {}).get("pack_id")) for m, *_ in read}
    if len(ids) > 1:
        raise TrainingError(f"the parts {[f.name for f in files]} come from different packs; write the pack again")
    times = pd.DatetimeIndex(np.concatenate([t for _, t, _, _ in read]))
    if not times.is_monotonic_increasing:
        raise TrainingError(f"the parts {[f.name for f in files]} do not join into one time series; write the pack again")
    fields = read[0][2] if len(read) == 1 else np.concatenate([f for _, _, f, _ in read])
    return _assemble(task, NormStats.from_json(meta["stats"]), times, fields, static, meta["data_fingerprint"],
                     meta["source_title"], str(path))
