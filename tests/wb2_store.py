"""Tiny stores in WeatherBench2's schema, built by the tests (no shared data needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

LATITUDE = np.linspace(-87.1875, 87.1875, 32)
LONGITUDE = np.arange(64) * 5.625
# A little train data, the end of validation and the start of test (gap in between).
DEFAULT_PERIODS = (("2018-11-20", "2018-12-31T18"), ("2019-12-25", "2020-01-12T18"))


def make_wb2_store(
    periods=DEFAULT_PERIODS, seed: int = 0, descending_latitude: bool = False, extra_levels: bool = True
) -> xr.Dataset:
    """A WB2-schema dataset: travelling waves plus noise in all task variables, physical units."""
    rng = np.random.default_rng(seed)
    times = pd.DatetimeIndex(np.concatenate([pd.date_range(a, b, freq="6h").values for a, b in periods]))
    hours = ((times - pd.Timestamp("2018-01-01")) / pd.Timedelta(hours=1)).values
    lat, lon = np.deg2rad(LATITUDE), np.deg2rad(LONGITUDE)
    phase = lon[None, None, :] - 2 * np.pi * hours[:, None, None] / (24 * 5)
    wave = np.cos(lat)[None, :, None] * np.sin(3 * phase) * np.ones((len(times), len(lat), len(lon)))

    def field(base, amplitude, noise):
        noisy = base + amplitude * wave + noise * rng.standard_normal(wave.shape)
        return noisy.astype(np.float32)

    t2m = field(288 - 40 * np.sin(lat)[None, :, None] ** 2, 5, 0.5)
    levels = [500, 700, 850] if extra_levels else [500, 850]
    z = np.stack([field(54000 + 500 * i, 400, 20) for i in range(len(levels))], axis=1)
    t = np.stack([field(250 + 10 * i, 4, 0.3) for i in range(len(levels))], axis=1)
    ds = xr.Dataset(
        {
            "2m_temperature": (("time", "latitude", "longitude"), t2m, {"units": "K"}),
            "10m_u_component_of_wind": (("time", "latitude", "longitude"), field(0, 5, 1), {"units": "m s**-1"}),
            "10m_v_component_of_wind": (("time", "latitude", "longitude"), field(0, 3, 1), {"units": "m s**-1"}),
            "geopotential": (("time", "level", "latitude", "longitude"), z, {"units": "m**2 s**-2"}),
            "temperature": (("time", "level", "latitude", "longitude"), t, {"units": "K"}),
        },
        coords={"time": times, "level": levels, "latitude": LATITUDE, "longitude": LONGITUDE},
        attrs={"title": "test store in WB2 schema"},
    )
    # WB2's static fields (no time dimension), used by models as inputs.
    land = (np.sin(2 * lon)[None, :] * np.cos(lat)[:, None] > 0.2).astype(np.float32)
    ds["land_sea_mask"] = (("latitude", "longitude"), land, {"units": "1"})
    ds["geopotential_at_surface"] = (("latitude", "longitude"), (9.81 * 1500 * land).astype(np.float32), {"units": "m**2 s**-2"})
    return ds.isel(latitude=slice(None, None, -1)) if descending_latitude else ds


def write_wb2_store(path: Path, **kwargs) -> Path:
    """Write ``make_wb2_store(**kwargs)`` as a consolidated zarr v2 store, like WB2's."""
    make_wb2_store(**kwargs).chunk({"time": 64}).to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path
