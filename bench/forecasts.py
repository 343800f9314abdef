"""Forecast files in WeatherBench2's layout: read them for scoring, write them from a model.

Accepted spellings: ``time`` + ``prediction_timedelta`` (WB2 native; ``time`` is the init time)
or ``init_time`` + ``lead_time``; ensemble dimension ``number`` (``member`` is accepted too).
Variables carry WB2 names, with a ``level`` dimension for pressure-level variables.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bench.errors import PredictionsFileError
from bench.metrics import ENSEMBLE_DIM
from bench.task import ChannelSpec, TaskSpec

INIT_DIM, LEAD_DIM = "init_time", "lead_time"
DIM_ALIASES = {"time": INIT_DIM, "prediction_timedelta": LEAD_DIM, "member": ENSEMBLE_DIM}


def canonical_forecast(ds: xr.Dataset, source: str = "forecast") -> xr.Dataset:
    """Rename WB2 spellings to init_time / lead_time / number and order latitude ascending."""
    renames = {old: new for old, new in DIM_ALIASES.items() if old in ds.dims or old in ds.coords}
    clash = [new for old, new in renames.items() if new in ds.dims]
    if clash:
        raise PredictionsFileError(f"{source} has both spellings of {clash}; keep one (WB2: time + prediction_timedelta)")
    ds = ds.rename(renames)
    for dim in (INIT_DIM, LEAD_DIM, "latitude", "longitude"):
        if dim not in ds.dims:
            raise PredictionsFileError(
                f"{source} has no {dim!r} dimension (dims: {sorted(ds.dims)}); WB2 forecasts need "
                "time (init) + prediction_timedelta (lead) or init_time + lead_time, latitude, longitude"
            )
    lead = ds[LEAD_DIM]
    if not np.issubdtype(lead.dtype, np.timedelta64):
        if np.issubdtype(lead.dtype, np.integer) or np.issubdtype(lead.dtype, np.floating):
            ds = ds.assign_coords({LEAD_DIM: pd.to_timedelta(lead.values, unit="h")})
        else:
            raise PredictionsFileError(f"{source}: lead times must be timedelta64 or hours, got {lead.dtype}")
    if not np.issubdtype(ds[INIT_DIM].dtype, np.datetime64):
        raise PredictionsFileError(f"{source}: init times must be datetime64, got {ds[INIT_DIM].dtype}")
    return ds.sortby("latitude")


def forecast_channel(ds: xr.Dataset, channel: ChannelSpec, source: str = "forecast") -> xr.DataArray:
    """One channel of a canonical forecast dataset, level selected, dims ordered."""
    if channel.name not in ds:
        raise PredictionsFileError(
            f"{source} has no variable {channel.name!r} (it has {sorted(ds.data_vars)}); name variables as WB2 does"
        )
    field = ds[channel.name]
    if channel.level is not None:
        if "level" not in field.dims or channel.level not in field["level"].values:
            raise PredictionsFileError(f"{source}: {channel.name} needs a level dimension with {channel.level} hPa")
        field = field.sel(level=channel.level, drop=True)
    elif "level" in field.dims:
        raise PredictionsFileError(f"{source}: {channel.name} is a surface variable and must not have a level dimension")
    order = [INIT_DIM] + ([ENSEMBLE_DIM] if ENSEMBLE_DIM in field.dims else []) + [LEAD_DIM, "latitude", "longitude"]
    extra = set(field.dims) - set(order)
    if extra:
        raise PredictionsFileError(f"{source}: {channel.name} has unexpected dims {sorted(extra)}")
    return field.transpose(*order)


MAX_MEMBERS = 100
MAX_DIM_LENGTH = 1_000_000
MAX_CHUNK_BYTES = 256 * 2**20


def _one_line(exc: BaseException) -> str:
    """An exception from zarr, netCDF, xarray or pandas as one short line."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _declared_arrays(path: Path) -> list[tuple[str, tuple[int, ...], tuple[int, ...] | None, int]]:
    """(name, shape, chunk shape or None, item size) of every array a forecast file declares, from metadata only."""
    if path.is_dir():
        import zarr

        group = zarr.open_group(str(path), mode="r")
        return [(name, tuple(a.shape), tuple(a.chunks), a.dtype.itemsize) for name, a in group.arrays()]
    import netCDF4

    with netCDF4.Dataset(str(path)) as nc:
        found = []
        for name, var in nc.variables.items():
            chunking = var.chunking()
            chunks = None if chunking == "contiguous" or chunking is None else tuple(chunking)
            found.append((name, tuple(var.shape), chunks, var.dtype.itemsize if hasattr(var.dtype, "itemsize") else 8))
        return found


def check_declared_sizes(path: Path) -> None:
    """Refuse a file whose dimensions or chunks are too large to read safely, before reading any data."""
    try:
        arrays = _declared_arrays(Path(path))
    except Exception as exc:
        raise PredictionsFileError(f"cannot open predictions {path}: {_one_line(exc)}") from exc
    for name, shape, chunks, itemsize in arrays:
        if any(n > MAX_DIM_LENGTH for n in shape):
            raise PredictionsFileError(f"predictions {path}: {name} declares shape {shape}; no dimension may exceed {MAX_DIM_LENGTH}")
        if chunks is not None and int(np.prod(chunks, dtype=np.float64)) * itemsize > MAX_CHUNK_BYTES:
            raise PredictionsFileError(
                f"predictions {path}: {name} has chunks {chunks} ({np.prod(chunks, dtype=np.float64) * itemsize / 2**20:.0f} MiB "
                f"each, over {MAX_CHUNK_BYTES // 2**20} MiB); write it with one chunk per init time (bench predict does)"
            )


class PredictionsFile:
    """A forecast file opened for scoring one task; ``forecast`` reads one batch at a time.

    Only the task's leads and the requested init times are read, whatever else the file declares.
    """

    def __init__(self, path: str | Path, task: TaskSpec):
        self.source = str(path)
        self.task = task
        if not Path(path).exists():
            raise PredictionsFileError(
                f"predictions file {path} does not exist; write it (bench predict CODE_DIR --task {task.name} "
                f"--out {path}) or fix the path under predictions: in submission.yaml"
            )
        check_declared_sizes(Path(path))
        try:
            # No dask: lazily indexed arrays read just the selected chunks, however many the file declares.
            raw = xr.open_zarr(path, chunks=None, consolidated=None) if Path(path).is_dir() else xr.open_dataset(path, chunks=None)
            self.dataset = canonical_forecast(raw, self.source)
            self.fields = [forecast_channel(self.dataset, c, self.source) for c in task.channels]
            self.init_index = pd.DatetimeIndex(self.dataset[INIT_DIM].values)
            leads = pd.TimedeltaIndex(self.dataset[LEAD_DIM].values)
        except PredictionsFileError:
            raise
        except Exception as exc:
            raise PredictionsFileError(f"cannot read predictions {path}: {_one_line(exc)}") from exc
        self.ensemble = ENSEMBLE_DIM in self.fields[0].dims
        if self.ensemble and not 1 <= self.fields[0].sizes[ENSEMBLE_DIM] <= MAX_MEMBERS:
            raise PredictionsFileError(f"predictions {path}: {self.fields[0].sizes[ENSEMBLE_DIM]} ensemble members; at most {MAX_MEMBERS}")
        self.lead_positions = leads.get_indexer(pd.to_timedelta(task.target_offsets()))

    def forecast(self, init_times: pd.DatetimeIndex) -> np.ndarray:
        """Forecasts for ``init_times``: (batch, [members,] leads, channel, lat, lon)."""
        positions = self.init_index.get_indexer(init_times)
        lead_axis = 2 if self.ensemble else 1
        try:
            arrays = [field.isel({INIT_DIM: positions, LEAD_DIM: self.lead_positions}).values for field in self.fields]
        except Exception as exc:
            raise PredictionsFileError(f"cannot read predictions {self.source}: {_one_line(exc)}") from exc
        return np.stack(arrays, axis=lead_axis + 1)


def forecast_dataset(task: TaskSpec, init_times: pd.DatetimeIndex, forecasts: np.ndarray) -> xr.Dataset:
    """Wrap model output in WB2's native layout (time + prediction_timedelta, level dims)."""
    ensemble = forecasts.ndim == 6
    lead_axis = 2 if ensemble else 1
    dims = ["time"] + (["number"] if ensemble else []) + ["prediction_timedelta", "latitude", "longitude"]
    coords = {
        "time": pd.DatetimeIndex(init_times).values,
        "prediction_timedelta": pd.to_timedelta(task.target_offsets()).values,
        "latitude": task.grid.latitude.values,
        "longitude": task.grid.longitude.values,
    }
    if ensemble:
        coords["number"] = np.arange(forecasts.shape[1])
    variables: dict[str, xr.DataArray] = {}
    for index, channel in enumerate(task.channels):
        values = np.take(forecasts, index, axis=lead_axis + 1).astype(np.float32)
        field = xr.DataArray(values, dims=dims, coords={k: coords[k] for k in dims}, attrs={"units": channel.units})
        if channel.level is not None:
            field = field.expand_dims(level=[channel.level], axis=len(dims) - 2)
            if channel.name in variables:
                field = xr.concat([variables[channel.name], field], dim="level")
        variables[channel.name] = field
    return xr.Dataset(variables)


class ForecastWriter:
    """Append batches of forecasts to a zarr in WB2 layout; the file appears only when complete."""

    def __init__(self, out: Path, task: TaskSpec):
        self.out = Path(out)
        self.task = task
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=self.out.parent)) / "forecast.zarr"
        self.started = False

    def append(self, init_times: pd.DatetimeIndex, forecasts: np.ndarray) -> None:
        ds = forecast_dataset(self.task, init_times, forecasts)
        if self.started:
            ds.to_zarr(self.tmp, append_dim="time", zarr_format=2)
        else:
            ds.to_zarr(self.tmp, mode="w", zarr_format=2)
            self.started = True

    def commit(self, attrs: dict) -> Path:
        import zarr

        zarr.open_group(self.tmp, mode="a", zarr_format=2).attrs.update(attrs)
        zarr.consolidate_metadata(str(self.tmp), zarr_format=2)
        if self.out.exists():
            shutil.rmtree(self.out) if self.out.is_dir() else self.out.unlink()
        self.tmp.rename(self.out)
        shutil.rmtree(self.tmp.parent, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.tmp.parent, ignore_errors=True)
