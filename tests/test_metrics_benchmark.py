"""pytest-benchmark: the harness's scorer, xskillscore and a one-pass numpy reference, side by side on
the same arrays: one test year of the multi-variable task (1460 inits x 4 leads x 5 channels x 32 x 64,
float32 as the harness receives them).

Run with ``pytest tests/test_metrics_benchmark.py -m benchmark --benchmark-enable``; in the default
run (``--benchmark-disable``) each body executes once as a smoke test and the values are compared.

- harness: ``ScoreAccumulator`` in batches of 64 inits, as ``bench evaluate`` scores: RMSE, MAE,
  bias and ACC in physical *and* normalised space, plus the error-map sums;
- xskillscore: ``xs.rmse``, ``xs.mae``, ``xs.me`` with latitude weights, given the arrays already in
  float64 (physical space only; it has no uncentred ACC: it does less work than the harness);
- numpy: the straightforward one-pass computation of the four metrics (float64, weights broadcast),
  batch by batch, physical space.
Targets (issue 14): harness >= 10x faster than xskillscore, within 2x of numpy, identical to 1e-6.
"""
from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import xskillscore as xs

from bench.metrics import lat_weights
from bench.normalization import ChannelStats, NormStats
from bench.scoring import ScoreAccumulator
from bench.task import load_task

pytestmark = pytest.mark.benchmark
TASK = "era5-64x32-12to4-multivar"
LAT = np.linspace(-87.1875, 87.1875, 32)
INITS, BATCH = 1460, 64
ROUNDS = 3
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def year():
    """forecast, truth, climatology: (1460, 4, 5, 32, 64) float32."""
    rng = np.random.default_rng(0)
    shape = (INITS, 4, 5, 32, 64)
    truth = (280 + 10 * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)
    forecast = truth + rng.standard_normal(shape, dtype=np.float32)
    clim = truth + 3 * rng.standard_normal(shape, dtype=np.float32)
    return forecast, truth, clim


@pytest.fixture(scope="module")
def task_and_stats():
    task = load_task(TASK)
    stats = NormStats(tuple(task.channel_keys), {k: ChannelStats(280.0, 10.0 + i, 200.0, 330.0, 1.0) for i, k in enumerate(task.channel_keys)})
    return task, stats


def harness(forecast, truth, clim, task, stats):
    """What bench evaluate runs per evaluation: the accumulator over batches, then the tables."""
    acc = ScoreAccumulator(task, stats, ensemble=False)
    times = np.arange(INITS)
    for start in range(0, INITS, BATCH):
        part = slice(start, start + BATCH)
        acc.add(times[part], forecast[part], truth[part], clim[part])
    values = acc.metric_values()
    acc.error_maps()
    return {name: values[("physical", name)] for name in ("rmse", "mae", "bias", "acc")}, values


def numpy_one_pass(forecast, truth, clim):
    """The reference: one straightforward float64 pass per batch, weighted means by broadcasting."""
    w = lat_weights(LAT).values[:, None] / (32 * 64)
    sums = {k: [] for k in ("se", "ae", "e", "acc")}
    for start in range(0, INITS, BATCH):
        f = forecast[start : start + BATCH].astype(np.float64)
        t = truth[start : start + BATCH].astype(np.float64)
        c = clim[start : start + BATCH].astype(np.float64)
        d = f - t
        sums["se"].append((d * d * w).sum(axis=(-2, -1)))
        sums["ae"].append((np.abs(d) * w).sum(axis=(-2, -1)))
        sums["e"].append((d * w).sum(axis=(-2, -1)))
        fa, ta = f - c, t - c
        sums["acc"].append((fa * ta * w).sum(axis=(-2, -1)) / np.sqrt((fa * fa * w).sum(axis=(-2, -1)) * (ta * ta * w).sum(axis=(-2, -1))))
    mean = {k: np.concatenate(v).mean(axis=0) for k, v in sums.items()}
    return {"rmse": np.sqrt(mean["se"]), "mae": mean["ae"], "bias": mean["e"], "acc": mean["acc"]}


def xskillscore_metrics(forecast, truth):
    """xskillscore's RMSE, MAE and mean error over (init, lat, lon), latitude-weighted."""
    dims = ["init_time", "lead", "channel", "latitude", "longitude"]
    f = xr.DataArray(forecast, dims=dims, coords={"latitude": LAT})
    t = xr.DataArray(truth, dims=dims, coords={"latitude": LAT})
    weights = (lat_weights(LAT) * xr.ones_like(t.isel(lead=0, channel=0, drop=True))).transpose("init_time", "latitude", "longitude")
    over = ["init_time", "latitude", "longitude"]
    return {
        "rmse": xs.rmse(f, t, dim=over, weights=weights).values,
        "mae": xs.mae(f, t, dim=over, weights=weights).values,
        "bias": xs.me(f, t, dim=over, weights=weights).values,
    }


def _run(benchmark, name, func, *args):
    result = benchmark.pedantic(func, args=args, rounds=ROUNDS if benchmark.enabled else 1, iterations=1)
    if benchmark.enabled:
        TIMINGS[name] = benchmark.stats.stats.min
    return result


@pytest.mark.benchmark(group="metrics-test-year")
def test_benchmark_harness_scorer(benchmark, year, task_and_stats):
    ours, values = _run(benchmark, "harness", harness, *year, *task_and_stats)
    task, stats = task_and_stats
    std = np.array([stats.stats[k].std for k in task.channel_keys])
    np.testing.assert_allclose(values[("normalized", "rmse")], ours["rmse"] / std, rtol=1e-12)
    np.testing.assert_allclose(values[("normalized", "acc")], ours["acc"], rtol=0)
    reference = numpy_one_pass(*year)
    for name in reference:
        np.testing.assert_allclose(ours[name], reference[name], rtol=1e-6, err_msg=name)


@pytest.mark.benchmark(group="metrics-test-year")
def test_benchmark_numpy_one_pass_reference(benchmark, year):
    out = _run(benchmark, "numpy", numpy_one_pass, *year)
    assert out["rmse"].shape == (4, 5)


@pytest.mark.benchmark(group="metrics-test-year")
def test_benchmark_xskillscore_same_arrays(benchmark, year, task_and_stats):
    forecast, truth, clim = year
    theirs = _run(benchmark, "xskillscore", xskillscore_metrics, forecast.astype(np.float64), truth.astype(np.float64))
    ours, _ = harness(forecast, truth, clim, *task_and_stats)
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6, err_msg=name)


def test_targets_against_xskillscore_and_numpy():
    """>= 10x faster than xskillscore and within 2x of one numpy pass (best of the rounds above)."""
    if set(TIMINGS) != {"harness", "numpy", "xskillscore"}:
        pytest.skip("timings come from a --benchmark-enable run of the three benchmarks above")
    harness_s, numpy_s, xs_s = TIMINGS["harness"], TIMINGS["numpy"], TIMINGS["xskillscore"]
    print(f"\nharness {harness_s:.2f} s, numpy one pass {numpy_s:.2f} s, xskillscore {xs_s:.2f} s: "
          f"{xs_s / harness_s:.1f}x faster than xskillscore, {harness_s / numpy_s:.2f}x the numpy pass")
    assert xs_s / harness_s >= 10
    assert harness_s / numpy_s <= 2

