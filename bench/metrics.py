"""Latitude-weighted forecast metrics: numpy kernels under a thin xarray layer (WeatherBench2 API).

Every metric is a small dataclass (WB2 style). Its numpy ``kernel`` reduces the spatial points of
one chunk to one value per remaining index (init time, lead, channel), reading the intermediates
several metrics share (the error, the anomalies) from a ``Chunk`` that computes each of them once:
one pass over a batch for every metric, as xskillscore keeps numpy kernels (``np_deterministic``)
under its xarray functions. ``compute_chunk`` is the xarray front end over named dims;
``aggregate`` averages over init times once, outside, then applies ``finalize`` (the square root
for RMSE: WB2's RMSE is the square root of the time-mean of the weighted MSE).

``zscore_power`` states the algebra that gives a metric in normalised space from its physical value:
with ``z = (x - mean) / std`` per channel, differences scale by ``1 / std``, so RMSE, MAE, bias,
CRPS and spread are the physical value over ``std`` and ACC (a ratio of anomaly products) is the
same; a metric with ``None`` is recomputed on z-scored arrays. Formulas: README, "Metrics".
"""
from __future__ import annotations

import dataclasses
from functools import cached_property
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


def spatial_mean_vector(lat_weight_values: np.ndarray, n_lon: int) -> np.ndarray:
    """Flattened (lat x lon) vector ``v`` with ``x @ v`` = the weighted spatial mean of ``x`` (..., lat*lon)."""
    w = np.asarray(lat_weight_values, dtype=np.float64)
    w = w / w.mean()
    return np.repeat(w, n_lon) / (len(w) * n_lon)


class Chunk:
    """One chunk of float64 arrays with spatial points flattened last, and their shared intermediates.

    ``forecast`` is ``(..., K)`` or, for an ensemble, ``(..., M, K)``; ``truth`` and ``climatology``
    are ``(..., K)``. Each intermediate is computed at most once, whichever metrics ask for it.
    """

    def __init__(self, forecast: np.ndarray, truth: np.ndarray, climatology: np.ndarray | None,
                 mean_vector: np.ndarray, ensemble: bool, leading_dims: tuple[str, ...] | None = None,
                 latitude_weights: np.ndarray | None = None, grid_shape: tuple[int, int] | None = None):
        self.forecast = np.asarray(forecast, dtype=np.float64)
        self.truth = np.asarray(truth, dtype=np.float64)
        self.climatology = None if climatology is None else np.asarray(climatology, dtype=np.float64)
        self.mean_vector = mean_vector
        self.ensemble = ensemble
        # Only for metrics written against the xarray API alone (``Metric.kernel``'s fallback).
        self.leading_dims, self.latitude_weights, self.grid_shape = leading_dims, latitude_weights, grid_shape

    def as_dataarrays(self) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, xr.DataArray | None]:
        """(forecast, truth, weights, climatology) with named dims, for a metric that has only ``compute_chunk``."""
        if self.grid_shape is None or self.latitude_weights is None:
            raise ValueError("this chunk was built without its grid; pass grid_shape and latitude_weights")
        lead = tuple(self.leading_dims or (f"dim_{i}" for i in range(self.truth.ndim - 1)))
        space = tuple(self.grid_shape)

        def named(values: np.ndarray, extra: tuple[str, ...] = ()) -> xr.DataArray:
            return xr.DataArray(values.reshape(values.shape[:-1] + space), dims=lead + extra + SPATIAL_DIMS)

        forecast = named(self.forecast, (ENSEMBLE_DIM,) if self.ensemble else ())
        climatology = None if self.climatology is None else named(self.climatology)
        return forecast, named(self.truth), xr.DataArray(self.latitude_weights, dims=["latitude"]), climatology

    def spatial_mean(self, x: np.ndarray) -> np.ndarray:
        """Weighted mean over the flattened spatial axis (one BLAS matrix-vector product)."""
        return x @ self.mean_vector

    @cached_property
    def mean_forecast(self) -> np.ndarray:
        """Ensemble forecasts enter deterministic metrics through their ensemble mean."""
        return self.forecast.mean(axis=-2) if self.ensemble else self.forecast

    @cached_property
    def error(self) -> np.ndarray:
        return self.mean_forecast - self.truth

    @cached_property
    def squared_error(self) -> np.ndarray:
        return np.square(self.error)

    @cached_property
    def truth_anomaly(self) -> np.ndarray:
        if self.climatology is None:
            raise ValueError("ACC needs the climatology at the valid times")
        return self.truth - self.climatology

    @cached_property
    def forecast_anomaly(self) -> np.ndarray:
        # f - c = (f - t) + (t - c): reuses the error and the truth anomaly (one subtraction fewer).
        return self.error + self.truth_anomaly

    @cached_property
    def member_error(self) -> np.ndarray:
        return self.forecast - self.truth[..., None, :]


@dataclasses.dataclass(frozen=True)
class Metric:
    """A metric: a per-chunk spatial reduction, then a time-mean and a final transform."""

    name: ClassVar[str]
    needs_climatology: ClassVar[bool] = False
    # normalised value = physical value / std ** zscore_power; None (the safe default): recompute on z-scored arrays.
    zscore_power: ClassVar[int | None] = None
    ensemble_only: ClassVar[bool] = False

    def kernel(self, chunk: Chunk) -> np.ndarray:
        """Per-time values of one chunk (spatial axis reduced), numpy in, numpy out.

        A metric written only against the xarray API (``compute_chunk``) is run through it here.
        """
        if type(self).compute_chunk is Metric.compute_chunk:
            raise NotImplementedError(f"{type(self).__name__} defines neither kernel nor compute_chunk")
        forecast, truth, weights, climatology = chunk.as_dataarrays()
        return np.asarray(self.compute_chunk(forecast, truth, weights, climatology).transpose(*truth.dims[:-2]).values)

    def finalize(self, time_mean: np.ndarray) -> np.ndarray:
        """The metric from the time-mean of its per-time values (identity unless overridden)."""
        return time_mean

    def compute_chunk(
        self, forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
        climatology: xr.DataArray | None = None,
    ) -> xr.DataArray:
        """Per-time values over named dims (xarray front end of ``kernel``)."""
        return _apply(self, forecast, truth, weights, climatology)

    def aggregate(self, per_time: xr.DataArray, dim: str = TIME_DIM) -> xr.DataArray:
        return self.finalize(per_time.mean(dim))

    def compute(self, forecast, truth, weights, climatology=None, dim: str = TIME_DIM) -> xr.DataArray:
        """The metric over a whole evaluation held in memory."""
        return self.aggregate(self.compute_chunk(forecast, truth, weights, climatology), dim)


def _apply(metric: Metric, forecast: xr.DataArray, truth: xr.DataArray, weights: xr.DataArray,
           climatology: xr.DataArray | None) -> xr.DataArray:
    """Run ``metric.kernel`` on DataArrays: spatial dims flattened last, the ensemble dim just before."""
    ensemble = ENSEMBLE_DIM in forecast.dims
    other = [d for d in truth.dims if d not in SPATIAL_DIMS]
    f = forecast.transpose(*other, *([ENSEMBLE_DIM] if ensemble else []), *SPATIAL_DIMS)
    t = truth.transpose(*other, *SPATIAL_DIMS)
    k = t.sizes["latitude"] * t.sizes["longitude"]
    c = None if climatology is None else climatology.transpose(*other, *SPATIAL_DIMS).values.reshape(t.shape[:-2] + (k,))
    chunk = Chunk(f.values.reshape(f.shape[:-2] + (k,)), t.values.reshape(t.shape[:-2] + (k,)), c,
                  spatial_mean_vector(np.asarray(weights.values), t.sizes["longitude"]), ensemble)
    return xr.DataArray(metric.kernel(chunk), dims=other, coords={d: t[d] for d in other if d in t.coords})


@dataclasses.dataclass(frozen=True)
class RMSE(Metric):
    """sqrt(time-mean of the latitude-weighted spatial MSE)."""

    name: ClassVar[str] = "rmse"
    zscore_power: ClassVar[int | None] = 1

    def kernel(self, chunk):
        return chunk.spatial_mean(chunk.squared_error)

    def finalize(self, time_mean):
        return np.sqrt(time_mean)


@dataclasses.dataclass(frozen=True)
class MAE(Metric):
    """Time-mean of the latitude-weighted spatial mean absolute error."""

    name: ClassVar[str] = "mae"
    zscore_power: ClassVar[int | None] = 1

    def kernel(self, chunk):
        return chunk.spatial_mean(np.abs(chunk.error))


@dataclasses.dataclass(frozen=True)
class Bias(Metric):
    """Time-mean of the latitude-weighted spatial mean of forecast minus truth."""

    name: ClassVar[str] = "bias"
    zscore_power: ClassVar[int | None] = 1

    def kernel(self, chunk):
        return chunk.spatial_mean(chunk.error)


@dataclasses.dataclass(frozen=True)
class ACC(Metric):
    """Time-mean of the uncentred, latitude-weighted anomaly correlation against a climatology."""

    name: ClassVar[str] = "acc"
    needs_climatology: ClassVar[bool] = True
    zscore_power: ClassVar[int | None] = 0

    def kernel(self, chunk):
        fa, ta = chunk.forecast_anomaly, chunk.truth_anomaly
        products = chunk.spatial_mean(fa * ta)
        with np.errstate(invalid="ignore", divide="ignore"):
            return products / np.sqrt(chunk.spatial_mean(np.square(fa)) * chunk.spatial_mean(np.square(ta)))


@dataclasses.dataclass(frozen=True)
class CRPS(Metric):
    """Fair ensemble CRPS, E|X-y| - E|X-X'|/2 with the M(M-1) spread estimator (WB2), weighted."""

    name: ClassVar[str] = "crps"
    zscore_power: ClassVar[int | None] = 1
    ensemble_only: ClassVar[bool] = True

    def kernel(self, chunk):
        members = chunk.forecast.shape[-2]
        skill = np.abs(chunk.member_error).mean(axis=-2)
        if members > 1:
            spread = pair_distance_sum_np(chunk.forecast, axis=-2) / (members * (members - 1))
        else:
            spread = np.zeros_like(skill)
        return chunk.spatial_mean(skill - 0.5 * spread)


def pair_distance_sum_np(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """sum over member pairs m, n of |x_m - x_n| along ``axis``, from the sorted members: memory linear in M.

    With x_(1) <= ... <= x_(M), the sum is 2 * sum_i (2i - M - 1) x_(i).
    """
    members = values.shape[axis]
    coefficients = 2.0 * (2.0 * np.arange(1, members + 1) - members - 1)
    return np.moveaxis(np.sort(values, axis=axis), axis, -1) @ coefficients


def pair_distance_sum(forecast: xr.DataArray) -> xr.DataArray:
    """``pair_distance_sum_np`` over the ensemble dimension of a DataArray."""
    return xr.apply_ufunc(pair_distance_sum_np, forecast, input_core_dims=[[ENSEMBLE_DIM]])


@dataclasses.dataclass(frozen=True)
class SpreadRMS(Metric):
    """sqrt(time-mean of the weighted spatial mean of the unbiased ensemble variance)."""

    name: ClassVar[str] = "spread"
    zscore_power: ClassVar[int | None] = 1
    ensemble_only: ClassVar[bool] = True

    def kernel(self, chunk):
        return chunk.spatial_mean(chunk.forecast.var(axis=-2, ddof=1))

    def finalize(self, time_mean):
        return np.sqrt(time_mean)


PART_DIM = "part"


def spread_skill_correction(members: int | np.ndarray) -> np.ndarray:
    """sqrt((M + 1) / M): for a reliable M-member ensemble, E[MSE of the mean] = (M + 1)/M E[unbiased variance]
    (Fortin et al. 2014), so this factor makes the ratio 1 whatever M is."""
    m = np.asarray(members, dtype=np.float64)
    return np.sqrt((m + 1.0) / m)


@dataclasses.dataclass(frozen=True)
class SpreadSkillRatio(Metric):
    """sqrt((M+1)/M) * spread / RMSE of the ensemble mean, each a root of a time-mean (1 = reliable)."""

    name: ClassVar[str] = "spread_skill"
    zscore_power: ClassVar[int | None] = 0  # a ratio of two values in the same units: the same in both spaces
    ensemble_only: ClassVar[bool] = True

    def kernel(self, chunk):
        """Per time: (weighted mean unbiased variance, weighted MSE of the ensemble mean, M) on a last axis."""
        variance = chunk.spatial_mean(chunk.forecast.var(axis=-2, ddof=1))
        mse = chunk.spatial_mean(chunk.squared_error)
        return np.stack([variance, mse, np.full_like(variance, chunk.forecast.shape[-2])], axis=-1)

    def finalize(self, time_mean):
        variance, mse, members = time_mean[..., 0], time_mean[..., 1], time_mean[..., 2]
        return spread_skill_correction(members) * np.sqrt(variance / mse)

    def compute_chunk(self, forecast, truth, weights, climatology=None):
        members = forecast.sizes[ENSEMBLE_DIM]
        variance = spatial_mean(forecast.var(ENSEMBLE_DIM, ddof=1), weights)
        mse = spatial_mean((forecast.mean(ENSEMBLE_DIM) - truth) ** 2, weights)
        return xr.concat([variance, mse, xr.full_like(variance, members)], dim=PART_DIM)

    def aggregate(self, per_time, dim=TIME_DIM):
        mean = per_time.mean(dim)
        variance, mse, members = (mean.isel({PART_DIM: i}, drop=True) for i in range(3))
        return spread_skill_correction(members) * np.sqrt(variance / mse)


@dataclasses.dataclass
class RankHistogram:
    """Talagrand (rank) histogram per lead and channel: where the truth falls among the M sorted members.

    Counts are latitude-weighted (each grid point counts with its cell-area weight, mean 1), so the
    frequencies describe the globe rather than the grid. A truth equal to k members takes one of the
    k + 1 tied ranks at random (a seeded generator: the same forecasts give the same histogram).
    """

    members: int
    weights: np.ndarray  # (lat,) cell-area weights
    leads: int
    channels: int
    seed: int = 0

    def __post_init__(self) -> None:
        self.counts = np.zeros((self.leads, self.channels, self.members + 1), dtype=np.float64)
        self._rng = np.random.default_rng(self.seed)

    def add(self, forecast: np.ndarray, truth: np.ndarray) -> None:
        """Count one batch: forecast (B, M, L, C, H, W), truth (B, L, C, H, W)."""
        below = (forecast < truth[:, None]).sum(axis=1)
        ties = (forecast == truth[:, None]).sum(axis=1)
        rank = below + (self._rng.integers(0, ties + 1) if ties.any() else 0)
        w = np.broadcast_to(np.asarray(self.weights, dtype=np.float64)[:, None], rank.shape[-2:])
        for lead in range(self.leads):
            for channel in range(self.channels):
                r = rank[:, lead, channel]
                self.counts[lead, channel] += np.bincount(
                    r.ravel(), weights=np.broadcast_to(w, r.shape).ravel(), minlength=self.members + 1)

    def frequencies(self) -> np.ndarray:
        """(lead, channel, M + 1) relative frequencies (each row sums to 1; a flat row is 1/(M+1))."""
        total = self.counts.sum(axis=-1, keepdims=True)
        return self.counts / np.where(total > 0, total, 1.0)


DETERMINISTIC_METRICS: tuple[Metric, ...] = (RMSE(), MAE(), Bias(), ACC())
PROBABILISTIC_METRICS: tuple[Metric, ...] = (CRPS(), SpreadRMS(), SpreadSkillRatio())


def metrics_for(ensemble: bool) -> tuple[Metric, ...]:
    """The metrics a forecast is scored with: deterministic ones, plus CRPS/spread for ensembles."""
    return DETERMINISTIC_METRICS + (PROBABILISTIC_METRICS if ensemble else ())
