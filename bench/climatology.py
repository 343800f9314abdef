"""Day-of-year x hour-of-day climatology of the train split, smoothed along day of year.

As in WeatherBench2: a raw mean per (day of year, hour), then a circular moving average
over ``window_days`` days. Smoothing sums and counts separately makes days missing from
the train years fall back to their neighbours instead of becoming NaN.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import uniform_filter1d

DAYS = 366


def _hour_slots(time_step_hours: int) -> np.ndarray:
    return np.arange(0, 24, time_step_hours)


def compute_climatology(
    field: xr.DataArray, time_step_hours: int, window_days: int, chunk_steps: int = 1460
) -> xr.DataArray:
    """Smoothed climatology of ``field`` (time, latitude, longitude), read chunk by chunk."""
    hours = _hour_slots(time_step_hours)
    shape = (DAYS, len(hours)) + field.shape[1:]
    sums = np.zeros(shape, dtype=np.float64)
    counts = np.zeros((DAYS, len(hours)), dtype=np.float64)
    times = pd.DatetimeIndex(field["time"].values)
    for start in range(0, len(times), chunk_steps):
        block = np.asarray(field.isel(time=slice(start, start + chunk_steps)).values, dtype=np.float64)
        t = times[start : start + chunk_steps]
        doy = t.day_of_year.values - 1
        slot = t.hour.values // time_step_hours
        np.add.at(sums, (doy, slot), block)
        np.add.at(counts, (doy, slot), 1.0)
    smooth_sums = uniform_filter1d(sums, size=window_days, axis=0, mode="wrap")
    smooth_counts = uniform_filter1d(counts, size=window_days, axis=0, mode="wrap")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = smooth_sums / smooth_counts.reshape(smooth_counts.shape + (1,) * (sums.ndim - 2))
    return xr.DataArray(
        mean.astype(np.float32),
        dims=("dayofyear", "hour") + field.dims[1:],
        coords={"dayofyear": np.arange(1, DAYS + 1), "hour": hours, **{d: field[d] for d in field.dims[1:]}},
        attrs=dict(field.attrs),
    )


def climatology_at(clim: np.ndarray, times: pd.DatetimeIndex | np.ndarray, time_step_hours: int) -> np.ndarray:
    """Look up climatology values (dayofyear, hour, ...) at ``times``; output has times first."""
    t = pd.DatetimeIndex(np.asarray(times).ravel())
    values = clim[t.day_of_year.values - 1, t.hour.values // time_step_hours]
    return values.reshape(np.shape(times) + clim.shape[2:])
