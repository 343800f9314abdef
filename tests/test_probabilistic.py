"""The probabilistic track: CRPS identities and references, spread/skill, rank histograms, reference ensembles."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
import xarray as xr
import xskillscore as xs

from bench.metrics import CRPS, MAE, RMSE, RankHistogram, SpreadRMS, SpreadSkillRatio, lat_weights, spread_skill_correction
from bench.results import Results, validate_results_json
from bench.submission import TrainFields

LAT = np.linspace(-87.1875, 87.1875, 32)
LON = np.arange(64) * 5.625
PROJECT = __import__("pathlib").Path(__file__).resolve().parents[1]


def ensemble(values: np.ndarray) -> xr.DataArray:
    """(time, number, lat, lon) as the harness wraps it."""
    return xr.DataArray(values, dims=["init_time", "number", "latitude", "longitude"],
                        coords={"init_time": np.arange(values.shape[0]), "number": np.arange(values.shape[1]),
                                "latitude": LAT, "longitude": LON})


def truth_of(values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, dims=["init_time", "latitude", "longitude"],
                        coords={"init_time": np.arange(values.shape[0]), "latitude": LAT, "longitude": LON})


def weighted_time_mean(per_point: xr.DataArray) -> float:
    return float((per_point * lat_weights(LAT)).mean(["latitude", "longitude"]).mean("init_time"))


def test_crps_of_identical_members_is_the_mae():
    rng = np.random.default_rng(0)
    truth = rng.normal(280, 5, (4, 32, 64))
    single = truth + rng.normal(0, 2, truth.shape)
    forecast = ensemble(np.repeat(single[:, None], 6, axis=1))
    w = lat_weights(LAT)
    crps = float(CRPS().compute(forecast, truth_of(truth), w))
    mae = float(MAE().compute(truth_of(single), truth_of(truth), w))
    assert crps == pytest.approx(mae, rel=1e-12)
    assert float(SpreadRMS().compute(forecast, truth_of(truth), w)) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("members", [2, 5, 16])
def test_fair_crps_matches_scoringrules_on_random_data(members):
    rng = np.random.default_rng(members)
    truth = rng.normal(0, 1, (3, 32, 64))
    values = truth[:, None] + rng.normal(0.3, 1.5, (3, members, 32, 64))
    ours = float(CRPS().compute(ensemble(values), truth_of(truth), lat_weights(LAT)))
    per_point = sr.crps_ensemble(truth, values, m_axis=1, estimator="fair")
    assert ours == pytest.approx(weighted_time_mean(truth_of(np.asarray(per_point))), rel=1e-9)


def test_fair_crps_matches_xskillscore_after_its_spread_correction():
    rng = np.random.default_rng(7)
    members = 8
    truth = rng.normal(0, 1, (3, 32, 64))
    values = truth[:, None] + rng.normal(0, 1, (3, members, 32, 64))
    forecast, obs = ensemble(values), truth_of(truth)
    ours = float(CRPS().compute(forecast, obs, lat_weights(LAT)))
    skill = weighted_time_mean(abs(forecast - obs).mean("number"))
    theirs = weighted_time_mean(xs.crps_ensemble(obs, forecast, member_dim="number", dim=[]))  # M^2 estimator
    fair = skill - (skill - theirs) * members / (members - 1)
    assert ours == pytest.approx(fair, rel=1e-9)


def test_crps_of_a_large_ensemble_approaches_the_gaussian_closed_form():
    rng = np.random.default_rng(3)
    mu, sigma, members = 1.0, 2.0, 2000
    truth = rng.normal(0, 1, (1, 32, 64))
    values = rng.normal(mu, sigma, (1, members, 32, 64))
    ours = float(CRPS().compute(ensemble(values), truth_of(truth), lat_weights(LAT)))
    z = (truth - mu) / sigma
    phi = np.exp(-z ** 2 / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    closed = sigma * (z * (2 * cdf - 1) + 2 * phi - 1 / math.sqrt(math.pi))
    np.testing.assert_allclose(closed, sr.crps_normal(truth, mu, sigma), rtol=1e-9)
    assert ours == pytest.approx(weighted_time_mean(truth_of(closed)), rel=5e-3)


@pytest.mark.parametrize("members", [3, 10])
def test_spread_skill_of_a_reliable_ensemble_is_one_with_the_finite_ensemble_correction(members):
    rng = np.random.default_rng(members)
    centre = rng.normal(0, 3, (60, 32, 64))
    truth = centre + rng.normal(0, 1, centre.shape)  # truth and members: draws from one distribution
    values = centre[:, None] + rng.normal(0, 1, (60, members, 32, 64))
    ratio = float(SpreadSkillRatio().compute(ensemble(values), truth_of(truth), lat_weights(LAT)))
    assert ratio == pytest.approx(1.0, abs=0.02)
    uncorrected = ratio / float(spread_skill_correction(members))
    assert uncorrected == pytest.approx(math.sqrt(members / (members + 1)), abs=0.02)
    w = lat_weights(LAT)
    spread = float(SpreadRMS().compute(ensemble(values), truth_of(truth), w))
    rmse = float(RMSE().compute(ensemble(values), truth_of(truth), w))
    assert ratio == pytest.approx(math.sqrt((members + 1) / members) * spread / rmse, rel=1e-9)


def test_rank_histogram_is_flat_for_a_reliable_ensemble_and_counts_every_point_once():
    rng = np.random.default_rng(1)
    members = 7
    truth = rng.normal(0, 1, (40, 1, 1, 32, 64))
    forecast = rng.normal(0, 1, (40, members, 1, 1, 32, 64))
    histogram = RankHistogram(members, lat_weights(LAT).values, leads=1, channels=1)
    histogram.add(forecast, truth)
    frequencies = histogram.frequencies()[0, 0]
    assert frequencies.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(frequencies, 1 / (members + 1), atol=0.01)
    assert histogram.counts.sum() == pytest.approx(40 * 32 * 64)  # weights have mean 1


def test_rank_histogram_breaks_ties_at_random_with_a_fixed_seed():
    truth = np.zeros((30, 1, 1, 32, 64))
    forecast = np.zeros((30, 3, 1, 1, 32, 64))  # every member ties the truth
    runs = []
    for _ in range(2):
        histogram = RankHistogram(3, lat_weights(LAT).values, leads=1, channels=1, seed=0)
        histogram.add(forecast, truth)
        runs.append(histogram.frequencies()[0, 0])
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0], 0.25, atol=0.01)
    shifted = RankHistogram(3, lat_weights(LAT).values, leads=1, channels=1)
    shifted.add(forecast + 1.0, truth)  # truth below every member: rank 0
    np.testing.assert_allclose(shifted.frequencies()[0, 0], [1, 0, 0, 0])


def test_ensemble_block_is_checked_by_the_results_schema(tmp_path):
    raw = json.loads(next((PROJECT / "leaderboard" / "results").glob("*/persistence.json")).read_text())
    n_leads = len(raw["task"]["lead_hours"])
    raw["ensemble"] = {"members": 2, "rank_histogram": {"frequencies": {"2m_temperature": [[0.3, 0.4, 0.3]] * n_leads}}}
    validate_results_json(raw)
    raw["ensemble"]["rank_histogram"]["frequencies"]["2m_temperature"] = [[0.5, 0.5]] * n_leads
    with pytest.raises(Exception, match="rows of 3 numbers"):
        validate_results_json(raw)
    assert Results.from_json({**raw, "ensemble": None}).ensemble is None


def train_fields() -> TrainFields:
    times = pd.date_range("2015-01-01", "2018-12-31T18", freq="6h").values
    values = np.arange(len(times), dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32)
    return TrainFields(times, values)


def test_same_season_times_stay_in_the_train_split_and_map_29_february():
    train = train_fields()
    valid = np.array(["2020-02-29T06", "2020-01-01T00", "2020-12-31T18"], dtype="datetime64[ns]")
    picked = train.same_season(valid, (-4, 0, 4), span_hours=24)
    assert picked.shape == (3, 12)
    assert (picked >= train.times[0]).all() and (picked <= train.times[-1] - np.timedelta64(24, "h")).all()
    assert pd.Timestamp(picked[0, 1]) == pd.Timestamp("2015-02-28T06")
    assert {pd.Timestamp(t).hour for t in picked.ravel()} == {0, 6, 18}
    assert pd.Timestamp(picked[1, 0]) == pd.Timestamp("2015-12-28T00")  # wrapped within its year
    np.testing.assert_array_equal(train.at(picked[:1, :2])[..., 0, 0, 0],
                                  [[np.searchsorted(train.times, t) for t in picked[0, :2]]])
    with pytest.raises(Exception, match="not a train-split time"):
        train.at(np.array(["2020-01-01"], dtype="datetime64[ns]"))


@pytest.mark.parametrize("baseline", ["climatology_ensemble", "persistence_ensemble"])
def test_reference_ensembles_score_on_the_probabilistic_track(baseline, prepared, tmp_path):
    from bench.evaluate import EvaluationSettings, evaluate

    results, path = evaluate(PROJECT / "baselines" / baseline, "era5-64x32-12to4-t2m",
                             EvaluationSettings(prepared, progress=False), tmp_path)
    metrics = results.metrics["2m_temperature"]["physical"]
    assert {"crps", "spread", "spread_skill", "rmse"} <= set(metrics)
    assert all(v is not None and v > 0 for v in metrics["crps"])
    assert results.ensemble["members"] == 20
    rows = results.ensemble["rank_histogram"]["frequencies"]["2m_temperature"]
    assert len(rows) == 4 and all(sum(row) == pytest.approx(1.0, abs=1e-5) for row in rows)
    assert Results.read(path).ensemble == results.ensemble


def test_train_fields_are_refused_to_submissions_that_do_not_declare_them(make_submission, prepared, tmp_path):
    from bench.errors import SubmissionError
    from bench.evaluate import EvaluationSettings, evaluate

    body = ("from bench.submission import *\n"
            "def build_model(context):\n    context.train_fields()\n")
    root = make_submission(body, track="probabilistic")
    with pytest.raises(SubmissionError, match="needs: \\[train_fields\\]"):
        evaluate(root, "era5-64x32-12to4-t2m", EvaluationSettings(prepared, progress=False), tmp_path)
