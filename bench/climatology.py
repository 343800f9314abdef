"""Day-of-year x hour-of-day climatology of the train split, built as WeatherBench 2 builds it.

WB2's ``scripts/compute_climatology.py`` (defaults ``--frequency=hourly --method=explicit
--window_size=61``, ``weatherbench2/utils.py``: ``compute_hourly_stat``, ``compute_rolling_stat``,
``create_window_weights``): for each hour of day, the train years are stacked on a 366-day
day-of-year axis, day 366 of a non-leap year is filled with its day 365, and each day is the
weighted mean over (window, year) of a circular window of ``window_days`` days with *triangular*
weights (``linspace(0, 1) ++ linspace(1, 0)``, zero at both ends). Here the same weighted mean is
taken from running sums and counts per (day, hour) smoothed by circular correlation: identical for
complete years, and a day missing from the data is skipped (WB2 would fill it with Dec 31).

The shape and width are recorded in the prepared manifest (``ClimatologySpec``) and hashed into the
data fingerprint; the task spec (and its fingerprint, which trained weights check) keeps only the width.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import correlate1d

DAYS = 366
WINDOW_SHAPES = ("triangular", "flat")


@dataclasses.dataclass(frozen=True)
class ClimatologySpec:
    """How a prepared climatology was built (a recorded fact of the prepared data)."""

    window_days: int = 61
    window: str = "triangular"  # WB2; "flat" is the moving average of harness versions <= 0.1
    method: str = "wb2-hourly-explicit"
    statistic: str = "mean"
    years: str = "train split"

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> "ClimatologySpec":
        return cls(**raw)

    def describe(self) -> str:
        """One line for pages and cards, e.g. '61-day triangular window (WeatherBench 2)'."""
        source = " (WeatherBench 2)" if self.window == "triangular" else ""
        return f"train-split day-of-year x hour mean, {self.window_days}-day {self.window} window{source}"


def window_weights(window_days: int, shape: str = "triangular") -> np.ndarray:
    """Weights over a centred window of ``window_days`` days (odd); WB2's ``create_window_weights`` for triangular."""
    if window_days % 2 != 1:
        raise ValueError(f"window_days must be odd, got {window_days}")
    if shape == "flat":
        return np.ones(window_days)
    if shape != "triangular":
        raise ValueError(f"unknown window shape {shape!r}; use one of {WINDOW_SHAPES}")
    half = window_days // 2
    weights = np.concatenate([np.linspace(0, 1, half + 1), np.linspace(1, 0, half + 1)[1:]])
    return weights / weights.mean()


def _hour_slots(time_step_hours: int) -> np.ndarray:
    return np.arange(0, 24, time_step_hours)


def compute_climatology(
    field: xr.DataArray, time_step_hours: int, window_days: int, window: str = "triangular", chunk_steps: int = 1460
) -> xr.DataArray:
    """Smoothed climatology of ``field`` (time, latitude, longitude), read chunk by chunk."""
    weights = window_weights(window_days, window)
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
        # WB2 stacks years on a 366-day axis and fills day 366 of a non-leap year with its day 365.
        fill = (doy == DAYS - 2) & ~t.is_leap_year
        np.add.at(sums, (DAYS - 1, slot[fill]), block[fill])
        np.add.at(counts, (DAYS - 1, slot[fill]), 1.0)
    smooth_sums = correlate1d(sums, weights, axis=0, mode="wrap")
    smooth_counts = correlate1d(counts, weights, axis=0, mode="wrap")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = smooth_sums / smooth_counts.reshape(smooth_counts.shape + (1,) * (sums.ndim - 2))
    return xr.DataArray(
        mean.astype(np.float32),
        dims=("dayofyear", "hour") + field.dims[1:],
        coords={"dayofyear": np.arange(1, DAYS + 1), "hour": hours, **{d: field[d] for d in field.dims[1:]}},
        attrs={**field.attrs, "climatology_window": window, "climatology_window_days": window_days},
    )


def climatology_at(clim: np.ndarray, times: pd.DatetimeIndex | np.ndarray, time_step_hours: int) -> np.ndarray:
    """Look up climatology values (dayofyear, hour, ...) at ``times``; output has times first."""
    t = pd.DatetimeIndex(np.asarray(times).ravel())
    values = clim[t.day_of_year.values - 1, t.hour.values // time_step_hours]
    return values.reshape(np.shape(times) + clim.shape[2:])
