"""Checkpoints: config.json + weights.safetensors + meta.json; named errors for missing weights and a
task-fingerprint mismatch; fp16/int8 storage round trip; committed baselines load and predict."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.errors import FingerprintMismatchError, WeightsMissingError  # noqa: E402
from bench.evaluate import EvaluationSettings, evaluate  # noqa: E402
from bench.errors import SubmissionCrashedError  # noqa: E402
from bench.task import load_task  # noqa: E402
from bench.zoo.checkpoint import load_checkpoint, pack_state, unpack_state  # noqa: E402
from bench.zoo.runner import train_submission  # noqa: E402
from zoo_helpers import PROJECT_ROOT, SMOKE, ZOO_BASELINES, copy_baseline  # noqa: E402

T2M, MULTI = "era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory):
    root = copy_baseline("deep_cnn", tmp_path_factory.mktemp("trained"))
    train_submission(root, T2M, prepared, progress=False, **SMOKE)
    return root


def test_a_fingerprint_mismatch_is_refused_by_name(trained):
    with pytest.raises(FingerprintMismatchError, match="trained for task era5-64x32-12to4-t2m"):
        load_checkpoint(trained / "weights" / T2M, load_task(MULTI))


def test_missing_weights_are_a_named_error(trained, tmp_path):
    broken = tmp_path / "weights"
    shutil.copytree(trained / "weights" / T2M, broken)
    (broken / "weights.safetensors").unlink()
    with pytest.raises(WeightsMissingError, match="lacks weights.safetensors"):
        load_checkpoint(broken, load_task(T2M))


def test_evaluating_without_weights_names_the_error_and_writes_nothing(prepared, tmp_path):
    root = copy_baseline("cnn", tmp_path)
    with pytest.raises(SubmissionCrashedError, match="WeightsMissingError"):
        evaluate(root, T2M, EvaluationSettings(prepared, progress=False), tmp_path / "results")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.json"))


def test_saving_leaves_no_temporary_folders(trained):
    assert [p.name for p in (trained / "weights").iterdir()] == [T2M]


def test_int8_storage_round_trip_is_close_and_statistics_stay_fp32():
    state = {"net.w": torch.randn(64, 300), "net.b": torch.randn(64), "mean": torch.tensor([288.123456])}
    packed = pack_state(state, int8_min_elements=1000)
    assert packed["net.w::q8"].dtype == torch.int8 and packed["net.b"].dtype == torch.float16
    assert packed["mean"].dtype == torch.float32
    back = unpack_state(packed)
    assert torch.equal(back["mean"], state["mean"])
    assert (back["net.w"] - state["net.w"]).abs().max() <= state["net.w"].abs().amax(1).max() / 254 + 1e-6


def test_a_model_uses_its_training_statistics_not_the_evaluation_data(trained):
    model, meta = load_checkpoint(trained / "weights" / T2M, load_task(T2M))
    assert model.mean.tolist() == pytest.approx([meta["normalization"]["stats"]["2m_temperature"]["mean"]])


COMMITTED = [(name, task) for name in ZOO_BASELINES for task in (T2M, MULTI)
             if (PROJECT_ROOT / "baselines" / name / "weights" / task / "meta.json").is_file()]


@pytest.mark.parametrize("name,task", COMMITTED)
def test_committed_weights_load_and_forecast(name, task):
    spec = load_task(task)
    model, meta = load_checkpoint(PROJECT_ROOT / "baselines" / name / "weights" / task, spec)
    assert meta["trained_until"] < spec.splits["test"].first and meta["validation"]["score"] > 0
    rng = np.random.default_rng(0)
    mean = model.mean.numpy()[None, None, :, None, None]
    std = model.std.numpy()[None, None, :, None, None]
    inputs = (mean + std * 0.1 * rng.standard_normal((2, 12, len(spec.channel_keys), 32, 64))).astype(np.float32)
    times = np.datetime64("2020-01-03T00") + np.arange(-11, 1)[None, :] * np.timedelta64(6, "h") + np.zeros((2, 1), "timedelta64[h]")
    out = model.predict_physical(inputs, times)
    assert out.shape == (2, 4, len(spec.channel_keys), 32, 64) and np.isfinite(out).all()
    log = json.loads((PROJECT_ROOT / "baselines" / name / "weights" / task / "training_log.json").read_text())
    assert log and meta["best_epoch"] in [row["epoch"] for row in log]


def test_the_model_card_is_generated_from_meta_and_results(trained, tmp_path):
    from bench.model_card import write_card

    meta = json.loads((trained / "weights" / T2M / "meta.json").read_text())
    card = write_card(trained, tmp_path / "no-results").read_text()
    assert f"| parameters | {meta['parameters']:,} |" in card and "No test results yet" in card
    assert "No weights for this task yet" in card  # the multivar task was not trained here
    assert f"{meta['validation']['rmse']['2m_temperature'][0]:.3g}" in card


def test_repacking_to_int8_keeps_the_validation_score_and_loads(trained, prepared, tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli

    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    before = (root / "weights" / T2M / "weights.safetensors").stat().st_size
    result = CliRunner().invoke(cli, ["train", str(root), "--task", T2M, "--data", str(prepared), "--repack-int8", "1000", "--quiet"])
    assert result.exit_code == 0, result.output
    meta = json.loads((root / "weights" / T2M / "meta.json").read_text())
    if "int8 rows" in meta["storage"]["format"]:
        assert abs(meta["storage"]["relative_change"]) <= 1e-3
        assert (root / "weights" / T2M / "weights.safetensors").stat().st_size < before
    load_checkpoint(root / "weights" / T2M, load_task(T2M))
