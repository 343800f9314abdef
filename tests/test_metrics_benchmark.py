"""pytest-benchmark: the harness's metrics on a full test year vs xskillscore on the same arrays.

Run with ``pytest tests/test_metrics_benchmark.py --benchmark-enable``; in the default run each
benchmark body executes once as a smoke test.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xskillscore as xs

from bench.metrics import ACC, MAE, RMSE, Bias, lat_weights

LAT = np.linspace(-87.1875, 87.1875, 32)


@pytest.fixture(scope="module")
def year():
    """1460 init times x 4 leads x 32 x 64, float64, like one test year of one channel."""
    rng = np.random.default_rng(0)
    dims = ["init_time", "lead_hours", "latitude", "longitude"]
    coords = {"init_time": np.arange(1460), "lead_hours": [6, 12, 18, 24], "latitude": LAT, "longitude": np.arange(64) * 5.625}
    truth = xr.DataArray(rng.normal(280, 10, (1460, 4, 32, 64)), dims=dims, coords=coords)
    forecast = truth + rng.normal(0, 1, truth.shape)
    clim = truth + rng.normal(0, 3, truth.shape)
    return forecast, truth, clim


def harness_metrics(forecast, truth, clim):
    w = lat_weights(LAT)
    return {m.name: m.compute(forecast, truth, w, clim) for m in (RMSE(), MAE(), Bias(), ACC())}


def xskillscore_metrics(forecast, truth, weights):
    dims = ["init_time", "latitude", "longitude"]
    return {
        "rmse": xs.rmse(forecast, truth, dim=dims, weights=weights),
        "mae": xs.mae(forecast, truth, dim=dims, weights=weights),
        "bias": xs.me(forecast, truth, dim=dims, weights=weights),
    }


@pytest.mark.benchmark(group="metrics-full-year")
def test_benchmark_harness_metrics_full_year(benchmark, year):
    out = benchmark(harness_metrics, *year)
    assert out["rmse"].shape == (4,)


@pytest.mark.benchmark(group="metrics-full-year")
def test_benchmark_xskillscore_same_arrays(benchmark, year):
    forecast, truth, _ = year
    weights = (lat_weights(LAT) * xr.ones_like(truth.isel(lead_hours=0, drop=True))).transpose("init_time", "latitude", "longitude")
    out = benchmark(xskillscore_metrics, forecast, truth, weights)
    ours = harness_metrics(*year)
    for name in out:
        np.testing.assert_allclose(ours[name].values, out[name].values, rtol=1e-6)
