"""End-to-end evaluation: persistence and climatology on a tiny WB2-schema store, results files,
malformed submissions refused with a named error and no results file."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.dataset import PreparedData
from bench.evaluate import EvaluationSettings, evaluate
from bench.metrics import lat_weights
from bench.results import Results, results_path
from bench.task import load_task
from conftest import PROJECT_ROOT

T2M = "era5-64x32-12to4-t2m"


def test_persistence_scores_equal_a_direct_numpy_computation(prepared, tmp_path):
    results, path = evaluate(PROJECT_ROOT / "baselines/persistence", T2M, EvaluationSettings(prepared, batch_size=16, progress=False), tmp_path)
    data = PreparedData(prepared, load_task(T2M))
    init = data.init_times("test")
    truth = data.targets(init)[:, :, 0].astype(np.float64)
    last = data.inputs(init)[:, -1:, 0].astype(np.float64)
    w = lat_weights(data.task.grid.latitude.values).values[None, None, :, None]
    mse = ((last - truth) ** 2 * w).mean(axis=(2, 3))
    np.testing.assert_allclose(results.metric("2m_temperature", "rmse"), np.sqrt(mse.mean(axis=0)), rtol=1e-6)
    std = data.stats.stats["2m_temperature"].std
    np.testing.assert_allclose(results.metric("2m_temperature", "rmse", "normalized"), np.sqrt(mse.mean(axis=0)) / std, rtol=1e-6)
    assert path == results_path(tmp_path, T2M, "persistence")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 2 and "source" not in raw["data"] and raw["data"]["store"] == "wb2.zarr" and raw["task"]["fingerprint"] == load_task(T2M).fingerprint
    assert raw["data"]["fingerprint"] == data.fingerprint and raw["data"]["n_init_times"] == len(init) == 45
    assert raw["provenance"]["hardware"]["cpu_count"] >= 1 and raw["provenance"]["wall_time_s"] > 0
    assert np.array(raw["error_maps"]["2m_temperature"]["rmse"]).shape == (32, 64)
    Results.read(path)  # round-trips through the schema check
    assert not list(tmp_path.rglob(".*"))  # no temp files left behind


def test_climatology_and_multivar_tasks_evaluate(prepared, tmp_path):
    settings = EvaluationSettings(prepared, batch_size=32, progress=False)
    results, _ = evaluate(PROJECT_ROOT / "baselines/climatology", "era5-64x32-12to4-multivar", settings, tmp_path)
    assert set(results.metrics) == set(load_task("era5-64x32-12to4-multivar").channel_keys)
    for channel, spaces in results.metrics.items():
        assert all(v is not None and v > 0 for v in spaces["physical"]["rmse"]), channel
        assert spaces["physical"]["acc"] == [None] * 4  # a climatology has no anomaly: ACC is undefined


BAD_MODELS = {
    "wrong shape": ("return inputs[:, :3]", "OutputShapeError", "expected (1, 4, 1, 32, 64)"),
    "nan": ("out = inputs[:, -4:].copy(); out[0, 0, 0, 0, 0] = float('nan'); return out", "NonFiniteOutputError", "1 NaN/inf values"),
    "exception": ("raise RuntimeError('boom in predict')", "SubmissionCrashedError", "RuntimeError while predicting: boom in predict"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_a_malformed_submission_gets_a_named_error_and_no_results_file(case, prepared, make_submission, tmp_path):
    body, error, fragment = BAD_MODELS[case]
    root = make_submission(
        "class M:\n    def predict(self, inputs, batch):\n        " + body + "\n\ndef build_model(context):\n    return M()\n"
    )
    out = tmp_path / "results"
    result = CliRunner().invoke(cli, ["evaluate", str(root), "--data", str(prepared), "--out", str(out), "--batch-size", "16", "--quiet"])
    assert result.exit_code == 2, result.output
    assert f"error: {error}:" in result.output and fragment in result.output
    assert "Traceback" not in result.output
    assert not out.exists() or not list(out.rglob("*.json"))


def test_cli_evaluate_prints_the_rmse_table_in_kelvin_and_normalized_units(prepared, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/persistence"), "--data", str(prepared),
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "RMSE [K]" in result.output and "RMSE [z]" in result.output and "+24h" in result.output
    assert (tmp_path / "era5-64x32-12to4-t2m" / "persistence.json").is_file()
    assert (tmp_path / "era5-64x32-12to4-multivar" / "persistence.json").is_file()


def test_the_quick_start_runs_on_the_embedded_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_DATA", raising=False)
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/persistence"), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "EMBEDDED SAMPLE" in result.output and "237 test init times" in result.output


def test_a_raw_store_without_preparation_names_the_fix(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/persistence"), "--data", str(tmp_path / "missing.zarr")])
    assert result.exit_code == 2 and "DataError: no data store at" in result.output
