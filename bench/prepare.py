"""`bench data prepare`: select a task's channels and years from a WeatherBench2-schema store,
check grid and time step, and write a local zarr, train-split statistics and a climatology.

Output directory layout: ``data.zarr`` (one variable per channel, dims time/latitude/longitude),
``climatology.zarr``, ``stats.json`` and ``manifest.json`` (provenance and data fingerprint).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from bench.climatology import ClimatologySpec, compute_climatology
from bench.errors import DataError, DataIntegrityError
from bench.normalization import ChannelStats, NormStats
from bench.store import open_store
from bench.task import ChannelSpec, TaskSpec, load_task, task_names

MANIFEST_SCHEMA = "bench-prepared-data/1"
TIME_CHUNK = 256


@dataclasses.dataclass(frozen=True)
class PreparedManifest:
    """Provenance of a prepared data directory."""

    schema: str
    source: str
    source_title: str
    channels: list[str]
    first_time: str
    last_time: str
    n_times: int
    gaps: list[list[str]]
    task_fingerprints: dict[str, str]
    data_fingerprint: str
    # sha256 of stats.json and of the climatology arrays; None in directories prepared before they existed.
    integrity: dict[str, str] | None = None
    # How the climatology was built (bench.climatology.ClimatologySpec); None: the flat window of harness 0.1.
    climatology: dict | None = None

    @property
    def climatology_spec(self) -> ClimatologySpec | None:
        return ClimatologySpec.from_json(self.climatology) if isinstance(self.climatology, dict) else None

    @classmethod
    def read(cls, path: Path) -> "PreparedManifest":
        try:
            raw = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{path} is not readable JSON ({type(exc).__name__}); re-run bench data prepare") from exc
        if not isinstance(raw, dict) or raw.get("schema") != MANIFEST_SCHEMA:
            schema = raw.get("schema") if isinstance(raw, dict) else None
            raise DataError(f"{path} has schema {schema!r}, expected {MANIFEST_SCHEMA}; re-run bench data prepare")
        try:
            return cls(**raw)
        except TypeError as exc:
            raise DataError(f"{path} has unexpected fields ({exc}); re-run bench data prepare") from exc


def select_channel(ds: xr.Dataset, channel: ChannelSpec) -> xr.DataArray:
    """One channel (time, latitude, longitude) from a WB2 store, with a clear error if absent."""
    if channel.name not in ds:
        raise DataError(
            f"the store has no variable {channel.name!r} (it has: {', '.join(sorted(ds.data_vars))}); "
            "use a store with the task's variables, or a task that needs only these"
        )
    field = ds[channel.name]
    if channel.level is not None:
        if "level" not in field.dims:
            raise DataError(f"{channel.name} has no 'level' dimension; the task needs level {channel.level} hPa")
        levels = field["level"].values
        if channel.level not in levels:
            raise DataError(f"{channel.name} has no level {channel.level} hPa (levels: {list(levels)})")
        field = field.sel(level=channel.level, drop=True)
    expected = {"time", "latitude", "longitude"}
    if set(field.dims) != expected:
        raise DataError(f"{channel.key} has dims {field.dims}; WeatherBench2 schema needs {sorted(expected)}")
    return field.transpose("time", "latitude", "longitude")


def check_grid(ds: xr.Dataset, task: TaskSpec) -> xr.Dataset:
    """Order latitude ascending and refuse any grid other than the task's."""
    for dim in ("latitude", "longitude", "time"):
        if dim not in ds.coords:
            raise DataError(f"the store has no {dim!r} coordinate; is it in WeatherBench2 schema?")
    ds = ds.sortby("latitude")
    for axis_name, axis in (("latitude", task.grid.latitude), ("longitude", task.grid.longitude)):
        have = np.asarray(ds[axis_name].values, dtype=np.float64)
        want = axis.values
        if not axis.matches(have):
            raise DataError(
                f"{axis_name} grid of the store ({len(have)} points, {have.min():g}..{have.max():g}) is not "
                f"the task's {task.grid.name} ({len(want)} points, {want[0]:g}..{want[-1]:g}); regrid it to "
                "WeatherBench2's 64x32 equiangular conservative grid"
            )
    return ds.assign_coords(latitude=task.grid.latitude.values, longitude=task.grid.longitude.values)


def check_times(times: pd.DatetimeIndex, step: pd.Timedelta) -> list[list[str]]:
    """Refuse unsorted, duplicate or off-step times; return the gaps (periods with no data)."""
    if len(times) < 2:
        raise DataError("the store has fewer than 2 time steps in the task's years")
    deltas = np.diff(times.values).astype("timedelta64[ns]")
    if (deltas <= np.timedelta64(0)).any():
        raise DataError("store times are not strictly increasing; sort and de-duplicate them")
    step_ns = np.timedelta64(step.value, "ns")
    if (deltas % step_ns != np.timedelta64(0)).any() or (times.hour % step.components.hours).any():
        bad = times[1:][deltas % step_ns != np.timedelta64(0)]
        raise DataError(
            f"store times are not on a {step} grid (first offender {bad[0] if len(bad) else times[0]}); "
            "resample the store to 6-hourly 00/06/12/18 UTC"
        )
    gaps = np.nonzero(deltas > step_ns)[0]
    return [[str(times[i]), str(times[i + 1])] for i in gaps]


def tasks_for(ds: xr.Dataset, requested: list[str] | None) -> list[TaskSpec]:
    """The requested tasks, or every frozen task whose variables the store has."""
    if requested:
        return [load_task(name) for name in requested]
    usable = [t for t in map(load_task, task_names()) if all(c.name in ds for c in t.channels)]
    if not usable:
        raise DataError(f"the store has none of the variables of the tasks {task_names()}")
    return usable


def _train_stats(field: xr.DataArray, train: slice) -> ChannelStats:
    x = field.sel(time=train)
    values = np.asarray(x.values, dtype=np.float64)
    if values.size == 0:
        raise DataError("the store has no time steps in the train split; statistics need train data")
    diffs = np.diff(values, axis=0)
    return ChannelStats(
        mean=float(values.mean()), std=float(values.std()), min=float(values.min()),
        max=float(values.max()), diff_std=float(diffs.std()) if len(diffs) else float("nan"),
    )


def climatology_spec_for(task: TaskSpec) -> ClimatologySpec:
    """The climatology this harness prepares for ``task``: WB2's triangular window of the task's width."""
    return ClimatologySpec(window_days=task.climatology_window_days)


def _fingerprint(data: xr.Dataset, channels: list[str], climatology: ClimatologySpec | None = None) -> str:
    """sha256 of the times and arrays and, when given, of how the climatology is built (it changes ACC)."""
    digest = hashlib.sha256()
    if climatology is not None:
        digest.update(json.dumps(climatology.to_json(), sort_keys=True).encode() + b"\0")
    digest.update(np.asarray(data["time"].values).astype("datetime64[ns]").tobytes())
    for key in channels:
        for start in range(0, data.sizes["time"], TIME_CHUNK * 8):
            block = data[key].isel(time=slice(start, start + TIME_CHUNK * 8)).values
            digest.update(np.ascontiguousarray(block, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def _array_digest(ds: xr.Dataset) -> str:
    """sha256 of every variable's float32 values, variables in name order."""
    digest = hashlib.sha256()
    for key in sorted(ds.data_vars):
        digest.update(key.encode() + b"\0" + str(ds[key].shape).encode())
        digest.update(np.ascontiguousarray(ds[key].values, dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def integrity_digests(root: Path) -> dict[str, str]:
    """Digests of the prepared files the fingerprint does not cover (statistics, climatology)."""
    return {
        "stats.json": hashlib.sha256((root / "stats.json").read_bytes()).hexdigest()[:16],
        "climatology.zarr": _array_digest(xr.open_zarr(root / "climatology.zarr")),
    }


def verify_prepared(root: Path) -> None:
    """Refuse a prepared directory whose data, statistics or climatology changed since it was prepared."""
    root = Path(root)
    manifest = PreparedManifest.read(root / "manifest.json")
    fix = f"re-run: bench data prepare --source {manifest.source} --out {root}"
    if not isinstance(manifest.integrity, dict):
        raise DataIntegrityError(f"{root} was prepared by an older harness, without integrity digests; {fix}")
    check_climatology_spec(manifest, root)
    try:
        data = xr.open_zarr(root / "data.zarr")
        found = {"data": _fingerprint(data, list(manifest.channels), manifest.climatology_spec), **integrity_digests(root)}
    except Exception as exc:  # any damage to the stores reads as tampering, by name
        raise DataIntegrityError(f"{root} cannot be read back in full ({type(exc).__name__}); it changed after preparation; {fix}") from exc
    expected = {"data": manifest.data_fingerprint, **manifest.integrity}
    changed = [name for name in expected if found.get(name) != expected[name]]
    if changed:
        raise DataIntegrityError(
            f"{root}: {', '.join(changed)} no longer match the fingerprints in manifest.json (changed after preparation); "
            f"nothing was scored; {fix}"
        )


def check_climatology_spec(manifest: PreparedManifest, root: Path, task: TaskSpec | None = None) -> None:
    """Refuse prepared data whose climatology is not the one this harness builds (WB2's triangular window)."""
    spec = manifest.climatology_spec
    fix = f"re-run: bench data prepare --source {manifest.source} --out {root}"
    if spec is None:
        raise DataError(f"{root} was prepared by harness 0.1 with a flat 61-day climatology window; "
                        f"the harness now builds WeatherBench 2's triangular one; {fix}")
    if task is not None and spec != climatology_spec_for(task):
        raise DataError(f"{root} has climatology {spec.describe()}, the harness builds "
                        f"{climatology_spec_for(task).describe()} for {task.name}; {fix}")


def prepare(source: str, out: Path, tasks: list[str] | None = None, progress: bool = True) -> PreparedManifest:
    """Write a prepared data directory for ``tasks`` from ``source``; atomic (temp dir, rename)."""
    ds = open_store(source)
    specs = tasks_for(ds, tasks)
    reference = specs[0]
    for spec in specs[1:]:
        if spec.splits != reference.splits or spec.grid != reference.grid:
            raise DataError("tasks prepared together must share grid and splits; prepare them separately")
    ds = check_grid(ds, reference)
    channels: dict[str, ChannelSpec] = {}
    for spec in specs:
        for c in spec.channels:
            channels.setdefault(c.key, c)
    first = min(s.first_time for s in reference.splits.values())
    last = max(s.last_time for s in reference.splits.values())
    ds = ds.sel(time=slice(first - reference.time_step * reference.input_steps, last))
    times = pd.DatetimeIndex(ds["time"].values)
    gaps = check_times(times, reference.time_step)

    data = xr.Dataset({key: select_channel(ds, c).astype(np.float32) for key, c in channels.items()})
    data = data.drop_vars([v for v in data.coords if v not in ("time", "latitude", "longitude")])
    train = slice(reference.splits["train"].first_time, reference.splits["train"].last_time)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        encoded = data.chunk({"time": TIME_CHUNK, "latitude": -1, "longitude": -1})
        for key in encoded.data_vars:
            encoded[key].encoding = {}
        write = encoded.to_zarr(tmp / "data.zarr", mode="w", zarr_format=2, consolidated=True, compute=False)
        from dask.diagnostics import ProgressBar

        if progress:
            with ProgressBar():
                write.compute()
        else:
            write.compute()
        written = xr.open_zarr(tmp / "data.zarr")
        keys = list(channels)
        stats = NormStats(tuple(keys), {})
        clim_spec = climatology_spec_for(reference)
        if any(climatology_spec_for(spec) != clim_spec for spec in specs):
            raise DataError("tasks prepared together must share the climatology window; prepare them separately")
        clims = {}
        for key in tqdm(keys, desc="statistics + climatology", disable=not progress):
            stats.stats[key] = _train_stats(written[key], train)
            train_field = written[key].sel(time=train)
            clims[key] = compute_climatology(train_field, reference.time_step_hours, clim_spec.window_days, clim_spec.window)
        xr.Dataset(clims).to_zarr(tmp / "climatology.zarr", mode="w", zarr_format=2, consolidated=True)
        (tmp / "stats.json").write_text(json.dumps(stats.to_json(), indent=2))
        manifest = PreparedManifest(
            schema=MANIFEST_SCHEMA,
            source=str(source),
            source_title=str(ds.attrs.get("title", "")),
            channels=keys,
            first_time=str(times[0]),
            last_time=str(times[-1]),
            n_times=len(times),
            gaps=gaps,
            task_fingerprints={s.name: s.fingerprint for s in specs},
            data_fingerprint=_fingerprint(written, keys, clim_spec),
            integrity=integrity_digests(tmp),
            climatology=clim_spec.to_json(),
        )
        (tmp / "manifest.json").write_text(json.dumps(dataclasses.asdict(manifest), indent=2))
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
