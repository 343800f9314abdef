"""Metric values against xskillscore, hand-computed values and WeatherBench2's latitude weights."""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xskillscore as xs

from bench.metrics import ACC, CRPS, MAE, RMSE, Bias, SpreadRMS, lat_weights

LAT = np.linspace(-87.1875, 87.1875, 32)
LON = np.arange(64) * 5.625


def fields(seed: int = 0, times: int = 20, members: int | None = None):
    rng = np.random.default_rng(seed)
    dims = ["init_time", "latitude", "longitude"]
    coords = {"init_time": np.arange(times), "latitude": LAT, "longitude": LON}
    truth = xr.DataArray(rng.normal(280, 10, (times, 32, 64)), dims=dims, coords=coords)
    shape = (times, 32, 64) if members is None else (times, members, 32, 64)
    fdims = dims if members is None else ["init_time", "number", "latitude", "longitude"]
    forecast = xr.DataArray(truth.values.reshape((times, 1, 32, 64) if members else (times, 32, 64)) + rng.normal(0.5, 2, shape), dims=fdims,
                            coords={**coords, **({"number": np.arange(members)} if members else {})})
    clim = xr.DataArray(rng.normal(280, 10, (times, 32, 64)), dims=dims, coords=coords)
    return forecast, truth, clim


def test_lat_weights_follow_the_weatherbench2_cell_area_formula():
    lat = np.deg2rad(LAT)
    edges = [-np.pi / 2] + list((lat[:-1] + lat[1:]) / 2) + [np.pi / 2]
    area = np.array([np.sin(edges[i + 1]) - np.sin(edges[i]) for i in range(32)])
    weights = lat_weights(LAT)
    np.testing.assert_allclose(weights.values, area / area.mean(), rtol=1e-12)
    assert weights.mean() == pytest.approx(1.0)
    # On an equiangular grid the cell area is close to cos(latitude).
    np.testing.assert_allclose(weights.values, np.cos(lat) / np.cos(lat).mean(), rtol=2e-3)


def broadcast_weights(truth: xr.DataArray) -> xr.DataArray:
    return (lat_weights(LAT) * xr.ones_like(truth)).transpose(*truth.dims)


@pytest.mark.parametrize(
    "metric, reference",
    [
        (RMSE(), lambda f, t, w: xs.rmse(f, t, dim=["init_time", "latitude", "longitude"], weights=w)),
        (MAE(), lambda f, t, w: xs.mae(f, t, dim=["init_time", "latitude", "longitude"], weights=w)),
        (Bias(), lambda f, t, w: xs.me(f, t, dim=["init_time", "latitude", "longitude"], weights=w)),
    ],
)
def test_deterministic_metrics_match_xskillscore(metric, reference):
    forecast, truth, _ = fields()
    ours = metric.compute(forecast, truth, lat_weights(LAT))
    theirs = reference(forecast, truth, broadcast_weights(truth))
    np.testing.assert_allclose(float(ours), float(theirs), rtol=1e-6)


def test_rmse_is_the_root_of_the_time_mean_mse_not_the_mean_of_per_time_rmses():
    forecast, truth, _ = fields(times=3)
    w = lat_weights(LAT)
    per_time_mse = [float(((forecast[i] - truth[i]) ** 2 * w).mean() / w.mean()) for i in range(3)]
    assert float(RMSE().compute(forecast, truth, w)) == pytest.approx(np.sqrt(np.mean(per_time_mse)), rel=1e-12)
    assert float(RMSE().compute(forecast, truth, w)) != pytest.approx(np.mean(np.sqrt(per_time_mse)), rel=1e-9)


def test_metrics_on_a_hand_computed_two_cell_case():
    """Two latitudes with weights 1/2 and 3/2 (mean 1): every value worked out by hand."""
    weights = xr.DataArray([0.5, 1.5], dims=["latitude"])
    dims = ["init_time", "latitude", "longitude"]
    truth = xr.DataArray(np.zeros((2, 2, 1)), dims=dims)
    forecast = xr.DataArray(np.array([[[2.0], [0.0]], [[0.0], [-2.0]]]), dims=dims)
    # time 0: mse = (0.5*4 + 1.5*0)/2 = 1; time 1: (0 + 1.5*4)/2 = 3 -> rmse = sqrt(2)
    assert float(RMSE().compute(forecast, truth, weights)) == pytest.approx(np.sqrt(2))
    # mae: time 0: (0.5*2)/2 = 0.5, time 1: (1.5*2)/2 = 1.5 -> 1.0
    assert float(MAE().compute(forecast, truth, weights)) == pytest.approx(1.0)
    # bias: time 0: 0.5, time 1: -1.5 -> -0.5
    assert float(Bias().compute(forecast, truth, weights)) == pytest.approx(-0.5)


def test_acc_is_the_time_mean_of_the_uncentred_weighted_anomaly_correlation():
    forecast, truth, clim = fields(seed=3, times=4)
    w = lat_weights(LAT).values[:, None]
    expected = []
    for i in range(4):
        fa, ta = forecast[i].values - clim[i].values, truth[i].values - clim[i].values
        expected.append((w * fa * ta).sum() / np.sqrt((w * fa**2).sum() * (w * ta**2).sum()))
    assert float(ACC().compute(forecast, truth, lat_weights(LAT), clim)) == pytest.approx(np.mean(expected), rel=1e-10)


def test_acc_of_a_perfect_forecast_is_one_and_of_a_sign_flip_minus_one():
    _, truth, clim = fields(seed=4, times=3)
    assert float(ACC().compute(truth, truth, lat_weights(LAT), clim)) == pytest.approx(1.0)
    assert float(ACC().compute(2 * clim - truth, truth, lat_weights(LAT), clim)) == pytest.approx(-1.0)


def test_fair_crps_matches_xskillscore_after_the_spread_correction():
    forecast, truth, _ = fields(seed=5, times=6, members=5)
    ours = float(CRPS().compute(forecast, truth, lat_weights(LAT)))
    skill = float(xs.mae(forecast, truth, dim=[], weights=None).mean("number").pipe(
        lambda e: (e * lat_weights(LAT)).mean(["latitude", "longitude"]).mean("init_time")))
    # properscoring's CRPS = skill - spread/(2 M^2); the fair one uses M(M-1): spread_fair = spread * M/(M-1)
    theirs = xs.crps_ensemble(truth, forecast, member_dim="number", dim=[])
    theirs_mean = float((theirs * lat_weights(LAT)).mean(["latitude", "longitude"]).mean("init_time"))
    members = 5
    spread_half = skill - theirs_mean  # = sum|Xi-Xj| / (2 M^2), weighted
    fair = skill - spread_half * members / (members - 1)
    assert ours == pytest.approx(fair, rel=1e-6)


def test_ensemble_deterministic_metrics_use_the_ensemble_mean_and_spread_is_the_rms_std():
    forecast, truth, _ = fields(seed=6, times=5, members=4)
    w = lat_weights(LAT)
    mean = forecast.mean("number")
    assert float(RMSE().compute(forecast, truth, w)) == pytest.approx(float(RMSE().compute(mean, truth, w)))
    var = forecast.var("number", ddof=1)
    expected = np.sqrt(float(((var * w).mean(["latitude", "longitude"])).mean()))
    assert float(SpreadRMS().compute(forecast, truth, w)) == pytest.approx(expected, rel=1e-10)


def test_scorer_one_pass_equals_the_xarray_metrics_in_both_spaces_and_runs_xarray_only_metrics():
    """ScoreAccumulator's fused kernels against each metric's xarray front end; a metric that only
    defines compute_chunk (xarray) still scores, with its normalised value computed on z-scored arrays."""
    import dataclasses as dc
    from typing import ClassVar

    from bench.metrics import Metric, spatial_mean
    from bench.normalization import ChannelStats, NormStats
    from bench.scoring import ScoreAccumulator
    from bench.task import load_task

    @dc.dataclass(frozen=True)
    class MeanSquaredForecast(Metric):
        name: ClassVar[str] = "msf"

        def compute_chunk(self, forecast, truth, weights, climatology=None):
            return spatial_mean(forecast**2, weights)

    task = load_task("era5-64x32-12to4-t2m")
    stats = NormStats(("2m_temperature",), {"2m_temperature": ChannelStats(280.0, 8.0, 200.0, 330.0, 1.0)})
    rng = np.random.default_rng(7)
    truth = rng.normal(280, 10, (10, 4, 1, 32, 64)).astype(np.float32)
    forecast = (truth + rng.normal(0, 1, truth.shape)).astype(np.float32)
    clim = (truth + rng.normal(0, 3, truth.shape)).astype(np.float32)
    acc = ScoreAccumulator(task, stats, ensemble=False)
    acc.metrics = acc.metrics + (MeanSquaredForecast(),)
    acc.add(np.arange(6), forecast[:6], truth[:6], clim[:6])
    acc.add(np.arange(6, 10), forecast[6:], truth[6:], clim[6:])
    values = acc.metric_values()
    dims = ["init_time", "lead_hours", "latitude", "longitude"]
    f, t, c = (xr.DataArray(a[:, :, 0].astype(np.float64), dims=dims) for a in (forecast, truth, clim))
    w = lat_weights(LAT)
    for metric in (RMSE(), MAE(), Bias(), ACC()):
        expected = metric.compute(f, t, w, c).values
        np.testing.assert_allclose(values[("physical", metric.name)][:, 0], expected, rtol=1e-10)
        z = [(a - 280.0) / 8.0 for a in (f, t, c)]
        np.testing.assert_allclose(values[("normalized", metric.name)][:, 0], metric.compute(*z[:2], w, z[2]).values, rtol=1e-9)
    np.testing.assert_allclose(values[("physical", "msf")][:, 0], (f**2 * w).mean(["latitude", "longitude"]).mean("init_time"), rtol=1e-10)
    np.testing.assert_allclose(values[("normalized", "msf")][:, 0], (((f - 280) / 8) ** 2 * w).mean(["latitude", "longitude"]).mean("init_time"), rtol=1e-9)


def test_scorer_scores_an_ensemble_like_the_metric_classes():
    from bench.normalization import ChannelStats, NormStats
    from bench.scoring import ScoreAccumulator
    from bench.task import load_task

    task = load_task("era5-64x32-12to4-t2m")
    stats = NormStats(("2m_temperature",), {"2m_temperature": ChannelStats(280.0, 8.0, 200.0, 330.0, 1.0)})
    rng = np.random.default_rng(8)
    truth = rng.normal(280, 10, (5, 4, 1, 32, 64)).astype(np.float32)
    forecast = (truth[:, None] + rng.normal(0, 1, (5, 3, 4, 1, 32, 64))).astype(np.float32)
    clim = (truth + rng.normal(0, 3, truth.shape)).astype(np.float32)
    acc = ScoreAccumulator(task, stats, ensemble=True)
    acc.add(np.arange(5), forecast, truth, clim)
    values = acc.metric_values()
    dims = ["init_time", "lead_hours", "latitude", "longitude"]
    t, c = (xr.DataArray(a[:, :, 0].astype(np.float64), dims=dims) for a in (truth, clim))
    f = xr.DataArray(forecast[:, :, :, 0].astype(np.float64), dims=["init_time", "number"] + dims[1:])
    for metric in (RMSE(), ACC(), CRPS(), SpreadRMS()):
        np.testing.assert_allclose(values[("physical", metric.name)][:, 0], metric.compute(f, t, lat_weights(LAT), c).values, rtol=1e-10)
    np.testing.assert_allclose(values[("normalized", "crps")], values[("physical", "crps")] / 8.0, rtol=1e-12)
