"""The shared training path: every baseline trains a few steps, saves, reloads and is evaluated end to end;
runs are deterministic and resumable; training never reads the test year."""
from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

torch = pytest.importorskip("torch")

from safetensors.torch import load_file  # noqa: E402

from bench.dataset import PreparedData  # noqa: E402
from bench.errors import TrainingError  # noqa: E402
from bench.evaluate import EvaluationSettings, evaluate  # noqa: E402
from bench.results import Results  # noqa: E402
from bench.task import load_task  # noqa: E402
from bench.zoo.checkpoint import WEIGHTS, load_checkpoint  # noqa: E402
from bench.zoo.data import load_training_data  # noqa: E402
from bench.zoo.runner import train_submission  # noqa: E402
from zoo_helpers import SMOKE, SMOKE_ENTRY, ZOO_BASELINES, copy_baseline  # noqa: E402

MULTI, T2M = "era5-64x32-12to4-multivar", "era5-64x32-12to4-t2m"


def test_every_design_forecaster_has_a_baseline():
    expected = {"linear_regression", "linear_regression_multi", "lstm", "lstm_seq2seq", "transformer",
                "transformer_seq2seq", "cnn", "deep_cnn", "convlstm", "convlstm_seq2seq", "weather_transformer", "pixel_unet"}
    assert expected <= set(ZOO_BASELINES)


@pytest.mark.parametrize("name", ZOO_BASELINES)
def test_baseline_trains_saves_reloads_and_evaluates(name, prepared, tmp_path):
    root = copy_baseline(name, tmp_path)
    task = MULTI if name != "convlstm" else T2M
    result = train_submission(root, task, prepared, progress=False, **SMOKE)
    weights = root / "weights" / task
    assert {p.name for p in weights.iterdir()} == {"config.json", "weights.safetensors", "meta.json", "training_log.json"}
    meta = json.loads((weights / "meta.json").read_text())
    assert meta["task_fingerprint"] == load_task(task).fingerprint and meta["data_fingerprint"]
    assert meta["normalization"]["channels"] == load_task(task).channel_keys
    model, _ = load_checkpoint(weights, load_task(task))
    assert not model.training
    results, path = evaluate(root, task, EvaluationSettings(prepared, progress=False), tmp_path / "results")
    assert path.is_file() and Results.read(path).training["curve"]
    rmse = results.metric(load_task(task).channel_keys[0], "rmse")
    assert all(np.isfinite(rmse)) and results.submission["parameters"] == result.meta["parameters"]
    assert results.submission["training"]["hardware"]


def _weights(root, task=MULTI):
    return {k: v for k, v in load_file(str(root / "weights" / task / WEIGHTS)).items()}


def test_training_is_deterministic_for_a_fixed_seed(prepared, tmp_path):
    a, b = copy_baseline("deep_cnn", tmp_path / "a"), copy_baseline("deep_cnn", tmp_path / "b")
    for root in (a, b):
        train_submission(root, MULTI, prepared, progress=False, **SMOKE)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.parametrize("ema_decay", [None, 0.99])
def test_resume_continues_from_the_last_epoch(ema_decay, prepared, tmp_path):
    straight, resumed = copy_baseline("deep_cnn", tmp_path / "a"), copy_baseline("deep_cnn", tmp_path / "b")
    settings = {**SMOKE, "epochs": 2, "precision": "fp32", "ema_decay": ema_decay}
    train_submission(straight, MULTI, prepared, progress=False, **settings)
    work = resumed / ".train" / MULTI / "last.pt"
    # Run epoch 1 of the 2-epoch recipe, then stop the process at the epoch boundary.
    from bench.zoo import train as train_module

    class Stop(Exception):
        pass

    def stop_after_first(entry):
        raise Stop

    from bench.zoo.config import read_train_config

    config = read_train_config(resumed, MULTI, **settings)
    data = load_training_data(PreparedData(prepared, load_task(MULTI)), config.options.static_fields)
    with pytest.raises(Stop):
        train_module.fit(config, data, resumed / "weights" / MULTI, work.parent, progress=False, on_epoch=stop_after_first)
    assert work.is_file() and not (resumed / "weights" / MULTI).exists()
    train_submission(resumed, MULTI, prepared, progress=False, resume=True, **settings)
    ws, wr = _weights(straight), _weights(resumed)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    log = json.loads((resumed / "weights" / MULTI / "training_log.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2]


def test_an_ema_recipe_validates_selects_and_stores_the_averaged_weights(prepared, tmp_path):
    settings = {**SMOKE, "epochs": 2, "precision": "fp32"}
    plain = train_submission(copy_baseline("deep_cnn", tmp_path / "plain"), MULTI, prepared, progress=False, **settings)
    # A decay of ~0 makes the average the online weights themselves: the same model as without EMA.
    same_root = copy_baseline("deep_cnn", tmp_path / "same")
    same = train_submission(same_root, MULTI, prepared, progress=False, ema_decay=1e-9, **settings)
    assert same.meta["validation"]["score"] == pytest.approx(plain.meta["validation"]["score"], rel=1e-5)
    # The online weights are scored beside the average: with a decay of ~0 they are the same model.
    assert all(row["val_score_online"] == pytest.approx(row["val_score"], rel=1e-5) for row in same.log)
    assert all("val_score_online" not in row for row in plain.log)
    averaged_root = copy_baseline("deep_cnn", tmp_path / "ema")
    averaged = train_submission(averaged_root, MULTI, prepared, progress=False, ema_decay=0.999, **settings)
    wp, wa = _weights(same_root), _weights(averaged_root)
    assert any(not torch.allclose(wp[k].float(), wa[k].float()) for k in wp)  # the stored weights are the average
    assert [row["val_score"] for row in averaged.log][averaged.meta["best_epoch"] - 1] == min(row["val_score"] for row in averaged.log)
    assert averaged.meta["train_config"]["ema_decay"] == 0.999
    assert any(row["val_score_online"] != pytest.approx(row["val_score"], rel=1e-6) for row in averaged.log)


def test_a_bf16_recipe_trains_under_autocast(prepared, tmp_path):
    """bf16 runs on any CPU (emulated where it has no AVX-512 BF16 / AMX, hence only a handful of steps here)."""
    tiny = {**SMOKE, "window_stride": 400, "val_stride": 40}
    runs = {p: train_submission(copy_baseline("deep_cnn", tmp_path / p), T2M, prepared, progress=False, **{**tiny, "precision": p})
            for p in ("fp32", "bf16")}
    assert runs["bf16"].meta["train_config"]["precision"] == "bf16"
    scores = {p: run.meta["validation"]["score"] for p, run in runs.items()}
    assert np.isfinite(scores["bf16"]) and scores["bf16"] != scores["fp32"]  # autocast changed the arithmetic


def test_a_bf16_recipe_on_a_cpu_that_would_emulate_it_warns_and_names_the_fix(monkeypatch, tmp_path):
    from bench.zoo import runner
    from bench.zoo.config import read_train_config

    config = read_train_config(copy_baseline("deep_cnn", tmp_path), T2M)
    assert config.precision == "bf16"
    monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="set precision: fp32 for this task in train.yaml"):
        runner.warn_emulated_bf16(config, "cpu")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner.warn_emulated_bf16(config, "cuda")  # a GPU computes bf16 natively
        monkeypatch.setattr(runner, "cpu_has_native_bf16", lambda: True)
        runner.warn_emulated_bf16(config, "cpu")


def test_cpu_flags_decide_whether_bf16_is_native(tmp_path):
    from bench.provenance import cpu_has_native_bf16

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert cpu_has_native_bf16(info) is False
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n")
    assert cpu_has_native_bf16(info) is True
    assert cpu_has_native_bf16(tmp_path / "missing") is None


def test_an_ema_decay_outside_0_1_is_a_named_error(prepared, tmp_path):
    with pytest.raises(TrainingError, match="ema_decay"):
        train_submission(copy_baseline("deep_cnn", tmp_path), MULTI, prepared, progress=False, ema_decay=1.0, **SMOKE)


def test_a_warm_start_continues_from_committed_weights_and_keeps_one_curve(prepared, tmp_path):
    root = copy_baseline("cnn", tmp_path)
    settings = {**SMOKE, "precision": "fp32"}
    first = train_submission(root, MULTI, prepared, progress=False, **settings)
    second = train_submission(root, MULTI, prepared, progress=False, init_from="weights/{task}", lr=1e-6, **settings)
    warm = second.meta["warm_start"]
    assert warm["epochs_before"] == 1 and warm["validation_score_before"] == first.meta["validation"]["score"]
    assert [(row["epoch"], row["stage"]) for row in second.log] == [(1, 1), (2, 2)]
    assert second.meta["epochs_run"] == 2
    # With a tiny learning rate the warm-started model stays next to the first one (it started from it),
    # while the same recipe from the seed's initialisation stays next to an untrained model.
    cold = train_submission(copy_baseline("cnn", tmp_path / "cold"), MULTI, prepared, progress=False, lr=1e-6, **settings)
    score = lambda result: result.meta["validation"]["score"]
    assert abs(score(second) - score(first)) < 0.2 * abs(score(cold) - score(first))


def test_a_warm_start_from_another_architecture_is_a_named_error(prepared, tmp_path):
    root = copy_baseline("cnn", tmp_path)
    train_submission(root, MULTI, prepared, progress=False, **SMOKE)
    with pytest.raises(TrainingError, match="another architecture"):
        train_submission(root, MULTI, prepared, progress=False, init_from="weights/{task}", model_args={"hidden": 8}, **SMOKE)


def test_training_never_loads_the_test_year(prepared):
    task = load_task(MULTI)
    data = load_training_data(PreparedData(prepared, task), ("land_sea_mask",))
    assert data.loaded_until < task.splits["test"].first_time
    assert (data.times < task.splits["test"].first_time).all()
    for windows in data.windows.values():
        assert data.times[windows.targets.max()] < task.splits["test"].first_time


def test_poisoned_test_year_does_not_change_training(prepared, tmp_path):
    import shutil

    poisoned = tmp_path / "poisoned"
    shutil.copytree(prepared, poisoned)
    task = load_task(T2M)
    times = PreparedData(poisoned, task).times
    first_test = int(np.searchsorted(times.values, np.datetime64(task.splits["test"].first_time)))
    for channel in task.channel_keys:
        array = zarr.open(str(poisoned / "data.zarr" / channel), mode="r+")
        array[first_test:] = np.nan
    clean, dirty = copy_baseline("deep_cnn", tmp_path / "a"), copy_baseline("deep_cnn", tmp_path / "b")
    ra = train_submission(clean, T2M, prepared, progress=False, **SMOKE)
    rb = train_submission(dirty, T2M, poisoned, progress=False, **SMOKE)
    assert np.isfinite(rb.meta["validation"]["score"])
    assert ra.meta["validation"]["score"] == rb.meta["validation"]["score"]


def test_bench_train_cli_writes_weights_and_prints_the_validation(prepared, tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli

    root = copy_baseline("deep_cnn", tmp_path)
    (root / "train.yaml").write_text((root / "train.yaml").read_text() + "tasks:\n  %s: %s\n" % (T2M, SMOKE_ENTRY))
    result = CliRunner().invoke(cli, ["train", str(root), "--task", T2M, "--data", str(prepared), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "validation RMSE at 6 h / 24 h: 2m_temperature" in result.output
    assert (root / "weights" / T2M / "weights.safetensors").is_file()


def test_an_unknown_recipe_field_is_a_named_error(prepared, tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli

    root = copy_baseline("cnn", tmp_path)
    (root / "train.yaml").write_text((root / "train.yaml").read_text() + "learning_rate: 0.1\n")
    result = CliRunner().invoke(cli, ["train", str(root), "--task", T2M, "--data", str(prepared), "--quiet"])
    assert result.exit_code == 2
    assert "TrainingError" in result.output and "unknown field(s) ['learning_rate']" in result.output


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_cpu_recipe_runs_unchanged_on_a_gpu(prepared, tmp_path):
    cpu, gpu = copy_baseline("deep_cnn", tmp_path / "cpu"), copy_baseline("deep_cnn", tmp_path / "gpu")
    rc = train_submission(cpu, MULTI, prepared, progress=False, **{**SMOKE, "precision": "fp32"})
    rg = train_submission(gpu, MULTI, prepared, device="cuda", progress=False, **{**SMOKE, "precision": "fp32"})
    assert rg.meta["hardware"]["device"] == "cuda"
    assert rg.meta["validation"]["score"] == pytest.approx(rc.meta["validation"]["score"], rel=0.05)


def test_asking_for_cuda_without_a_gpu_is_a_named_error(prepared, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from bench.errors import TrainingError

    with pytest.raises(TrainingError, match="no CUDA device"):
        train_submission(copy_baseline("cnn", tmp_path), MULTI, prepared, device="cuda", progress=False, **SMOKE)


def test_ablation_switches_off_one_option_at_a_time_and_writes_a_table(prepared, tmp_path):
    from bench.model_card import render_card
    from bench.zoo.ablation import run_ablation

    root = copy_baseline("cnn", tmp_path)
    table = run_ablation(root, MULTI, prepared, epochs=1, window_stride=20, val_stride=4, batch_size=4)
    labels = [row["variant"] for row in table["rows"]]
    assert labels[0] == "recipe" and len(labels) == 5
    residual = next(row for row in table["rows"] if row["variant"].startswith("no residual"))
    assert residual["options"]["residual"] is False and table["rows"][0]["options"]["residual"] is True
    assert len({row["validation_score"] for row in table["rows"]}) > 1  # the switches change the run
    written = json.loads((root / "ablation" / f"{MULTI}.json").read_text())
    assert written["rows"] == json.loads(json.dumps(table["rows"]))
    train_submission(root, MULTI, prepared, progress=False, **SMOKE)
    assert "Which trainer options matter" in render_card(root, tmp_path / "results")


def test_a_training_pack_trains_exactly_like_the_prepared_store_and_holds_no_test_year(prepared, tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli

    pack = tmp_path / "t2m.npz"
    result = CliRunner().invoke(cli, ["data", "pack", "--task", T2M, "--data", str(prepared), "--out", str(pack)])
    assert result.exit_code == 0, result.output
    task = load_task(T2M)
    with np.load(pack) as stored:
        assert stored["times"].max() < np.datetime64(task.splits["test"].first_time)
    from_store = train_submission(copy_baseline("deep_cnn", tmp_path / "a"), T2M, prepared, progress=False, **SMOKE)
    from_pack = train_submission(copy_baseline("deep_cnn", tmp_path / "b"), T2M, pack, progress=False, **SMOKE)
    assert from_pack.meta["validation"]["score"] == from_store.meta["validation"]["score"]
    assert from_pack.meta["data_fingerprint"] == from_store.meta["data_fingerprint"]
    root = copy_baseline("cnn", tmp_path / "c")
    (root / "train.yaml").write_text((root / "train.yaml").read_text() + "tasks:\n  %s: %s\n" % (T2M, SMOKE_ENTRY))
    result = CliRunner().invoke(cli, ["train", str(root), "--data", str(pack), "--quiet"])  # the task comes from the pack
    assert result.exit_code == 0, result.output
    assert (root / "weights" / T2M / "weights.safetensors").is_file()


def test_a_pack_of_another_task_or_reaching_into_the_test_year_is_a_named_error(prepared, tmp_path):
    from bench.zoo.data import load_training_pack, save_training_pack

    (pack,) = save_training_pack(PreparedData(prepared, load_task(T2M)), tmp_path / "t2m.npz")
    with pytest.raises(TrainingError, match="packed for task era5-64x32-12to4-t2m"):
        load_training_pack(pack, load_task(MULTI))
    with pytest.raises(TrainingError, match="no static field"):
        load_training_pack(pack, load_task(T2M), ("sea_ice",))
    with np.load(pack) as stored:
        content = {k: stored[k] for k in stored.files}
    content["times"] = content["times"] + np.timedelta64(400, "D")  # now ends in the test year
    leaky = tmp_path / "leaky.npz"
    np.savez(leaky, **content)
    with pytest.raises(TrainingError, match="holds fields of the test split"):
        load_training_pack(leaky, load_task(T2M))
    with pytest.raises(TrainingError, match="not a training pack"):
        load_training_pack(tmp_path / "missing.npz", load_task(T2M))


def test_a_pack_too_large_for_one_device_call_splits_into_parts_that_read_back_as_the_whole(prepared, tmp_path):
    """A lent GPU takes at most 64 MiB per call: the multivar pack (~150 MB) travels as parts, one per call."""
    from click.testing import CliRunner

    from bench.cli import cli
    from bench.zoo.data import load_training_pack, pack_files, save_training_pack

    task = load_task(MULTI)
    (whole,) = save_training_pack(PreparedData(prepared, task), tmp_path / "one" / "mv.npz")
    limit_mib = whole.stat().st_size / 2**20 / 3  # forces at least 3 parts
    out = tmp_path / "split" / "mv.npz"
    (tmp_path / "split").mkdir()
    (tmp_path / "split" / "mv-part1of9.npz").write_bytes(b"stale")  # an earlier split's part is replaced,
    out.write_bytes(b"stale")  # and so is an earlier whole pack (it would be read in place of the parts)
    result = CliRunner().invoke(cli, ["data", "pack", "--task", MULTI, "--data", str(prepared), "--out", str(out),
                                      "--part-mib", str(limit_mib)])
    assert result.exit_code == 0, result.output
    parts = sorted((tmp_path / "split").glob("*.npz"))
    assert len(parts) >= 3 and not out.exists() and "mv-part1of9.npz" not in [p.name for p in parts]
    assert all(p.stat().st_size <= limit_mib * 2**20 for p in parts)
    reference = load_training_pack(whole, task)
    for given in (out, parts[-1]):  # the stem or any one part names the whole pack
        joined = load_training_pack(given, task)
        assert joined.times.equals(reference.times) and np.array_equal(joined.fields, reference.fields)
        assert [len(joined.windows[s]) for s in ("train", "validation")] == [len(reference.windows[s]) for s in ("train", "validation")]
    assert result.output.count("wrote") == len(parts) and pack_files(out) == [p for p in parts if p.name.startswith("mv-part")]
    parts[1].unlink()
    with pytest.raises(TrainingError, match=f"split into {len(parts)} parts and \\['{parts[1].name}'\\] are not in"):
        load_training_pack(out, task)
    with pytest.raises(TrainingError, match="not a training pack"):
        load_training_pack(tmp_path / "split" / "other.npz", task)


def test_a_time_budget_sizes_the_epochs_and_caps_them_at_the_recipe(prepared, tmp_path):
    from bench.zoo.config import read_train_config
    from bench.zoo.train import size_epochs

    root = copy_baseline("cnn", tmp_path)
    task = load_task(T2M)
    config = read_train_config(root, T2M, **{**SMOKE, "epochs": 7})
    data = load_training_data(PreparedData(prepared, task), config.options.static_fields)
    assert size_epochs(config, data, 1e-6, submission_dir=root, steps=2) == 1
    assert size_epochs(config, data, 1e6, submission_dir=root, steps=2) == 7
    result = train_submission(root, T2M, prepared, progress=False, budget_minutes=1e-6, **SMOKE)
    assert result.meta["train_config"]["epochs"] == 1 and result.meta["train_config"]["max_minutes"] == 1e-6


def test_the_stop_reason_names_a_budget_only_when_it_cut_epochs(prepared, tmp_path):
    root = copy_baseline("cnn", tmp_path)
    cut = train_submission(root, T2M, prepared, progress=False, **{**SMOKE, "epochs": 3, "max_minutes": 1e-6})
    assert (cut.meta["stopped_by"], cut.meta["epochs_run"]) == ("time budget", 1)
    # Over the budget too, but after its last planned epoch: nothing was cut, the schedule ended it.
    whole = train_submission(root, T2M, prepared, progress=False, **{**SMOKE, "epochs": 1, "max_minutes": 1e-6})
    assert (whole.meta["stopped_by"], whole.meta["epochs_run"]) == ("epochs", 1)


def test_an_ablation_retrains_stage_one_not_a_warm_start_stage(tmp_path):
    from bench.zoo.config import read_train_config

    (tmp_path / "train.yaml").write_text(
        "model: deep_cnn\nepochs: 6\nlr: 2.0e-3\nwindow_stride: 4\ntasks:\n"
        f"  {T2M}: {{init_from: 'weights/{{task}}', epochs: 30, window_stride: 1, lr: 2.0e-4, max_minutes: 3.6}}\n"
        f"  {MULTI}: {{epochs: 9}}\n")
    staged = read_train_config(tmp_path, T2M)
    first = read_train_config(tmp_path, T2M, first_stage=True, epochs=3)
    assert (staged.init_from, staged.lr, staged.window_stride, staged.max_minutes) == ("weights/{task}", 2e-4, 1, 3.6)
    assert (first.init_from, first.lr, first.window_stride, first.max_minutes, first.epochs) == (None, 2e-3, 4, None, 3)
    assert read_train_config(tmp_path, MULTI, first_stage=True).epochs == 9  # a plain per-task block still applies
