"""Latitude-weighted forecast metrics over xarray objects with named dims (WeatherBench2 style).

Every metric is a small dataclass: ``compute_chunk`` reduces the spatial dims of one chunk of
forecasts to one value per remaining coordinate (init time, lead, channel); ``aggregate``
averages those over init times once, outside, and applies the final transform (the square
root for RMSE: WB2's RMSE is the square root of the time-mean of the weighted MSE).
Formulas are written down once, in the README's "Metrics" section.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import xarray as xr

SPATIAL_DIMS = ("latitude", "longitude")
TIME_DIM = "init_time"
ENSEMBLE_DIM = "number"


def lat_cell_bounds(latitude_deg: np.ndarray) -> np.ndarray:
    """Cell edges in radians: midpoints between centres, closed by the poles (WB2)."""
    lat = np.deg2rad(np.asarray(latitude_deg, dtype=np.float64))
    return np.concatenate([[-np.pi / 2], (lat[:-1] + lat[1:]) / 2, [np.pi / 2]])


def lat_weights(latitude: xr.DataArray | np.ndarray) -> xr.DataArray:
    """Cell area between latitude bounds, normalised to mean 1 (WB2's ``get_lat_weights``)."""
    lat_values = np.asarray(latitude, dtype=np.float64)
    bounds = lat_cell_bounds(lat_values)
    area = np.sin(bounds[1:]) - np.sin(bounds[:-1])
    return xr.DataArray(area / area.mean(), dims=["latitude"], coords={"latitude": lat_values})


def spatial_mean(x: xr.DataArray, weights: xr.DataArray) -> xr.DataArray:
    """Latitude-weighted mean over latitude and longitude (weights have mean 1)."""
    return (x * weights).mean(SPATIAL_DIMS) / weights.mean()


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric: a per-chunk spatial reduction, then a time-mean and a final transform."""

    name: ClassVar[str]
    needs_climatology: ClassVar[bool] = False

    def compute_chunk(
        self, forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
        climatology: xr.DataArray | None = None,
    ) -> xr.DataArray:
        raise NotImplementedError

    def aggregate(self, per_time: xr.DataArray, dim: str = TIME_DIM) -> xr.DataArray:
        return per_time.mean(dim)

    def compute(self, forecast, truth, weights, climatology=None, dim: str = TIME_DIM) -> xr.DataArray:
        """The metric over a whole evaluation held in memory."""
        return self.aggregate(self.compute_chunk(forecast, truth, weights, climatology), dim)


def _deterministic(forecast: xr.DataArray) -> xr.DataArray:
    """Ensemble forecasts are scored by their ensemble mean in deterministic metrics."""
    return forecast.mean(ENSEMBLE_DIM) if ENSEMBLE_DIM in forecast.dims else forecast


@dataclasses.dataclass(frozen=True)
class RMSE(Metric):
    """sqrt(time-mean of the latitude-weighted spatial MSE)."""

    name: ClassVar[str] = "rmse"

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        return spatial_mean((_deterministic(forecast) - truth) ** 2, weights)

    def aggregate(self, per_time, dim=TIME_DIM):
        return np.sqrt(per_time.mean(dim))


@dataclasses.dataclass(frozen=True)
class MAE(Metric):
    """Time-mean of the latitude-weighted spatial mean absolute error."""

    name: ClassVar[str] = "mae"

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        return spatial_mean(abs(_deterministic(forecast) - truth), weights)


@dataclasses.dataclass(frozen=True)
class Bias(Metric):
    """Time-mean of the latitude-weighted spatial mean of forecast minus truth."""

    name: ClassVar[str] = "bias"

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        return spatial_mean(_deterministic(forecast) - truth, weights)


@dataclasses.dataclass(frozen=True)
class ACC(Metric):
    """Time-mean of the uncentred, latitude-weighted anomaly correlation against a climatology."""

    name: ClassVar[str] = "acc"
    needs_climatology: ClassVar[bool] = True

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        if climatology is None:
            raise ValueError("ACC needs the climatology at the valid times")
        fa = _deterministic(forecast) - climatology
        ta = truth - climatology
        return spatial_mean(fa * ta, weights) / np.sqrt(spatial_mean(fa**2, weights) * spatial_mean(ta**2, weights))


@dataclasses.dataclass(frozen=True)
class CRPS(Metric):
    """Fair ensemble CRPS, E|X-y| - E|X-X'|/2 with the M(M-1) spread estimator (WB2), weighted."""

    name: ClassVar[str] = "crps"

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        members = forecast.sizes[ENSEMBLE_DIM]
        skill = abs(forecast - truth).mean(ENSEMBLE_DIM)
        spread = pair_distance_sum(forecast) / (members * (members - 1)) if members > 1 else xr.zeros_like(skill)
        return spatial_mean(skill - 0.5 * spread, weights)


def pair_distance_sum(forecast: xr.DataArray) -> xr.DataArray:
    """sum over member pairs m, n of |x_m - x_n|, from the sorted members: memory linear in M.

    With x_(1) <= ... <= x_(M), the sum is 2 * sum_i (2i - M - 1) x_(i).
    """
    members = forecast.sizes[ENSEMBLE_DIM]
    coefficients = 2.0 * (2.0 * np.arange(1, members + 1) - members - 1)

    def weighted_sorted(values: np.ndarray) -> np.ndarray:
        return np.sort(values, axis=-1) @ coefficients

    return xr.apply_ufunc(weighted_sorted, forecast, input_core_dims=[[ENSEMBLE_DIM]])


@dataclasses.dataclass(frozen=True)
class SpreadRMS(Metric):
    """sqrt(time-mean of the weighted spatial mean of the unbiased ensemble variance)."""

    name: ClassVar[str] = "spread"

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        return spatial_mean(forecast.var(ENSEMBLE_DIM, ddof=1), weights)

    def aggregate(self, per_time, dim=TIME_DIM):
        return np.sqrt(per_time.mean(dim))


DETERMINISTIC_METRICS: tuple[Metric, ...] = (RMSE(), MAE(), Bias(), ACC())
PROBABILISTIC_METRICS: tuple[Metric, ...] = (CRPS(), SpreadRMS())


def metrics_for(ensemble: bool) -> tuple[Metric, ...]:
    """The metrics a forecast is scored with: deterministic ones, plus CRPS/spread for ensembles."""
    return DETERMINISTIC_METRICS + (PROBABILISTIC_METRICS if ensemble else ())
