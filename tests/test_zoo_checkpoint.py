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


@pytest.mark.parametrize("shape", [(64, 300), (37, 53), (5, 3, 3, 3), (1, 31)])
def test_int4_storage_round_trip_is_bounded_and_smaller_than_int8(shape):
    from bench.zoo.checkpoint import INT4_GROUP

    torch.manual_seed(0)
    state = {"net.w": torch.randn(*shape), "std": torch.tensor([3.2])}
    packed = pack_state(state, int8_min_elements=None, int4={"net.w"})
    back = unpack_state(packed)
    assert back["net.w"].shape == state["net.w"].shape and torch.equal(back["std"], state["std"])
    flat = torch.nn.functional.pad(state["net.w"].flatten(), (0, (-state["net.w"].numel()) % INT4_GROUP))
    absmax = flat.view(-1, INT4_GROUP).abs().amax(1).repeat_interleave(INT4_GROUP)[: state["net.w"].numel()]
    error = (back["net.w"] - state["net.w"]).flatten()
    assert (error.abs() <= 0.41 * absmax + 1e-6).all()  # a clip of 0.6 |max| at most
    assert error.pow(2).mean().sqrt() <= 0.14 * state["net.w"].std()  # int4 resolution: worst of 200 seeds was 0.131
    int4_bytes = sum(t.numel() * t.element_size() for k, t in packed.items() if k.startswith("net.w"))
    groups = -(-state["net.w"].numel() // INT4_GROUP)
    assert int4_bytes == groups * (INT4_GROUP // 2 + 2) + 8 * len(shape)  # 4.5 bits per entry, plus the shape


def _fake_storage_scores(monkeypatch, sensitive: dict[str, float]):
    """Stored-weights scores as a sum of per-tensor int4 costs (no data needed)."""
    import bench.zoo.train as train_module

    def score(model, storage, data, val, device):
        return 1.0 + sum(sensitive.get(name, 1e-6) for name in storage.int4)

    monkeypatch.setattr(train_module, "_stored_score", score)


class _Samples(list):
    """Validation samples stand-in: the fake scores never read them."""

    def strided(self, k):
        return self


def test_int4_goes_everywhere_when_validation_does_not_feel_it(monkeypatch):
    from bench.zoo.train import storage_check

    _fake_storage_scores(monkeypatch, {})
    model = torch.nn.Sequential(torch.nn.Linear(100, 100), torch.nn.Linear(100, 100))
    record, storage = storage_check(model, None, _Samples(), torch.device("cpu"), 1.0, None, 1000)
    assert storage.int4 == {"0.weight", "1.weight"} and record["format"] == "fp16 + int4 groups (2 tensors)"


def test_int4_keeps_the_sensitive_tensor_out_and_records_the_refusal(monkeypatch):
    from bench.zoo.train import storage_check

    _fake_storage_scores(monkeypatch, {"0.weight": 5e-3})
    model = torch.nn.Sequential(torch.nn.Linear(100, 100), torch.nn.Linear(100, 100), torch.nn.Linear(100, 10))
    record, storage = storage_check(model, None, _Samples(), torch.device("cpu"), 1.0, 1000, 1000)
    assert storage.int4 == {"1.weight", "2.weight"} and storage.int8_min_elements == 1000
    assert record["int4_refused_for"] == 1 and record["int4_everywhere_change"] > 1e-3
    assert abs(record["relative_change"]) <= 1e-3


def test_storage_falls_back_to_fp16_when_everything_is_felt(monkeypatch):
    import bench.zoo.train as train_module
    from bench.zoo.train import Storage, storage_check

    monkeypatch.setattr(train_module, "_stored_score", lambda model, storage, *a: 1.0 if storage == Storage() else 1.01)
    model = torch.nn.Sequential(torch.nn.Linear(100, 100))
    record, storage = storage_check(model, None, _Samples(), torch.device("cpu"), 1.0, 1000, 1000)
    assert storage == Storage() and record["format"].startswith("fp16 (int8 changed")


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
    assert f"{meta['validation']['rmse']['2m_temperature'][0]:#.3g}".rstrip(".") in card


def test_card_numbers_keep_three_significant_figures_with_trailing_zeros():
    from bench.model_card import _fmt

    # 0.14 must print as the README's 0.140, and 105.4 as 105 (no dangling decimal point).
    assert _fmt([0.14, 0.1, 0.35, 105.4, 0.4826, None]) == "0.140 / 0.100 / 0.350 / 105 / 0.483 / —"
    assert _fmt([]) == "—" and _fmt(None) == "—"


def test_codec_card_rows_keep_trailing_zeros(tmp_path):
    from bench.model_card import _codec_lines

    # Compression ratio and latent spreads go through the same formatter as the metric tables (16.0x, not 16x).
    stats = {"mean": [-0.066, 0.1], "std": [0.45, 2.8]}
    meta = {"codec": {"latent_shape": [4, 4, 8], "compression_ratio": 16.0},
            "validation_latents": {"unit_statistics": stats, "codec_scaling": stats}}
    text = "\n".join(_codec_lines(tmp_path, meta, T2M))
    assert "compression ratio 16.0x" in text
    assert "channel means -0.0660 .. 0.100, stds 0.450 .. 2.80" in text


@pytest.mark.parametrize("flag,marker", [("--repack-int8", "int8 rows"), ("--repack-int4", "int4 groups")])
def test_repacking_keeps_the_validation_score_and_loads(trained, prepared, tmp_path, flag, marker):
    from click.testing import CliRunner

    from bench.cli import cli

    root = tmp_path / "copy"
    shutil.copytree(trained, root)
    before = (root / "weights" / T2M / "weights.safetensors").stat().st_size
    result = CliRunner().invoke(cli, ["train", str(root), "--task", T2M, "--data", str(prepared), flag, "1000", "--quiet"])
    assert result.exit_code == 0, result.output
    meta = json.loads((root / "weights" / T2M / "meta.json").read_text())
    if marker in meta["storage"]["format"]:
        assert abs(meta["storage"]["relative_change"]) <= 1e-3
        assert (root / "weights" / T2M / "weights.safetensors").stat().st_size < before
    load_checkpoint(root / "weights" / T2M, load_task(T2M))
