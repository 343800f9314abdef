"""Open any store in WeatherBench2's schema: a local zarr/netCDF path or ``gs://`` (anonymous)."""
from __future__ import annotations

from pathlib import Path

import xarray as xr

from bench.errors import DataError

WB2_ERA5_64X32 = (
    "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr"
)
SHARED_SIM_STORE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sim-era5like-64x32.zarr"


def _open_gcs(url: str) -> xr.Dataset:
    """Read a public Google Cloud Storage zarr store without credentials."""
    try:
        return xr.open_zarr(url, storage_options={"token": "anon"}, consolidated=True)
    except Exception as exc:
        raise DataError(
            f"cannot open {url} ({type(exc).__name__}: {exc}); check the URL and your internet "
            "connection, or pass a local copy of the store"
        ) from exc


def open_store(source: str | Path) -> xr.Dataset:
    """Open a WeatherBench2-schema store lazily (dask-backed), whatever its location."""
    text = str(source)
    if text.startswith("gs://"):
        return _open_gcs(text)
    if "://" in text:
        return xr.open_zarr(text, consolidated=None)
    path = Path(text).expanduser()
    if not path.exists():
        hint = (
            f"the benchmark store is {SHARED_SIM_STORE} on the project machines, or {WB2_ERA5_64X32} "
            "with internet; `--data sample` uses the embedded sample"
        )
        raise DataError(f"no data store at {path}: {hint}")
    try:
        if path.is_dir():
            return xr.open_zarr(path, consolidated=None)
        return xr.open_dataset(path, chunks={})
    except Exception as exc:
        raise DataError(
            f"{path} is not a readable zarr or netCDF store ({type(exc).__name__}: {exc})"
        ) from exc
