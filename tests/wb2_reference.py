"""WeatherBench 2's climatology code, verbatim, as the reference the harness is tested against.

Copied from google-research/weatherbench2 at commit 021c0b33d9dd165d1e7aa476fcc985be855fbc7b,
``weatherbench2/utils.py`` (replace_time_with_doy, select_hour, create_window_weights,
compute_rolling_stat, compute_hourly_stat): Copyright 2023 Google LLC, Apache License 2.0
(https://www.apache.org/licenses/LICENSE-2.0). Only the imports and this docstring were added.
"""
# pylint: skip-file
from typing import Callable, Union

import numpy as np
import xarray as xr

def replace_time_with_doy(ds: xr.Dataset) -> xr.Dataset:
  """Replace time coordinate with days of year."""
  return ds.assign_coords({'time': ds.time.dt.dayofyear}).rename(
      {'time': 'dayofyear'}
  )


def select_hour(ds: xr.Dataset, hour: int) -> xr.Dataset:
  """Select given hour of day from Datset."""
  # Select hour
  ds = ds.isel(time=ds.time.dt.hour == hour)
  # Adjust time dimension
  ds = ds.assign_coords({'time': ds.time.astype('datetime64[D]')})
  return ds




def create_window_weights(window_size: int) -> xr.DataArray:
  """Create linearly decaying window weights."""
  assert window_size % 2 == 1, 'Window size must be odd.'
  half_window_size = window_size // 2
  window_weights = np.concatenate(
      [
          np.linspace(0, 1, half_window_size + 1),
          np.linspace(1, 0, half_window_size + 1)[1:],
      ]
  )
  window_weights = window_weights / window_weights.mean()
  window_weights = xr.DataArray(window_weights, dims=['window'])
  return window_weights


def compute_rolling_stat(
    ds: xr.Dataset,
    window_weights: xr.DataArray,
    stat_fn: Union[str, Callable[..., xr.Dataset]] = 'mean',
) -> xr.Dataset:
  """Compute rolling climatology."""
  window_size = len(window_weights)
  half_window_size = window_size // 2  # For padding
  # Stack years
  stacked = xr.concat(
      [
          replace_time_with_doy(ds.sel(time=str(y)))
          for y in np.unique(ds.time.dt.year)
      ],
      dim='year',
  )
  # Fill gap day (366) with values from previous day 365
  stacked = stacked.fillna(stacked.sel(dayofyear=365))
  # Pad edges for perioding window
  stacked = stacked.pad(pad_width={'dayofyear': half_window_size}, mode='wrap')
  # Weighted rolling mean
  stacked = stacked.rolling(dayofyear=window_size, center=True).construct(
      'window'
  )
  if stat_fn == 'mean':
    rolling_stat = stacked.weighted(window_weights).mean(dim=('window', 'year'))
  elif stat_fn == 'std':
    rolling_stat = stacked.weighted(window_weights).std(dim=('window', 'year'))
  else:
    rolling_stat = stat_fn(
        stacked, weights=window_weights, dim=('window', 'year')
    )
  # Remove edges
  rolling_stat = rolling_stat.isel(
      dayofyear=slice(half_window_size, -half_window_size)
  )
  return rolling_stat



def compute_hourly_stat(
    obs: xr.Dataset,
    window_size: int,
    clim_years: slice,
    hour_interval: int,
    stat_fn: Union[str, Callable[..., xr.Dataset]] = 'mean',
) -> xr.Dataset:
  """Compute climatology by day of year and hour of day."""
  obs = obs.compute()
  hours = xr.DataArray(range(0, 24, hour_interval), dims=['hour'])
  window_weights = create_window_weights(window_size)

  hourly_rolling_clim = xr.concat(
      [  # pylint: disable=g-complex-comprehension
          compute_rolling_stat(
              select_hour(obs.sel(time=clim_years), hour),
              window_weights,
              stat_fn,
          )
          for hour in hours
      ],
      dim=hours,
  )
  return hourly_rolling_clim
