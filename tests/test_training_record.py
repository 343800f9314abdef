"""Training records: read from a trained submission's weights/<task>/ as bounded plain JSON, carried into
results and drawn on the submission page as a training curve."""
from __future__ import annotations

import json

import pytest

from bench.errors import ResultsError
from bench.leaderboard import build_site
from bench.results import validate_results_json
from bench.training_record import StaleWeightsError, card_training, convergence, convergence_text, refresh_training, training_record

try:
    from leaderboard_fixtures import T2M_TASK, fabricate_results, write_results_file
except ImportError:  # tests/ collected as a package
    from tests.leaderboard_fixtures import T2M_TASK, fabricate_results, write_results_file

FINGERPRINT = "5602fdc7e447f07d"


def write_weights(root, meta, log):
    folder = root / "weights" / T2M_TASK
    folder.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "training_log.json").write_text(json.dumps(log))
    return root


META = {"task_fingerprint": FINGERPRINT, "data_title": "sim store", "data_fingerprint": "abc", "trained_until": "2019-12-31 18:00:00",
        "train_windows": 1461, "epochs_run": 3, "best_epoch": 2, "stopped_by": "epochs", "train_wall_time_s": 600.0,
        "hardware": {"device": "cpu", "processor": "AMD EPYC", "torch_threads": 1},
        "train_config": {"precision": "bf16", "window_stride": 4, "options": {"residual": True, "static_fields": ["land_sea_mask"]}},
        "storage": {"format": "fp16"}, "validation": {"rmse": {"2m_temperature": [0.2, 0.4, 0.6, 0.8]}}}
LOG = [{"epoch": e, "train_loss": 0.01 / e, "val_score": 0.05 / e, "wall_s": 100.0 * e} for e in (1, 2, 3)]


def test_the_record_summarises_meta_and_the_curve(tmp_path):
    record = training_record(write_weights(tmp_path, META, LOG), T2M_TASK, FINGERPRINT)
    assert record["task_fingerprint_matches"] and record["epochs_run"] == 3 and len(record["curve"]) == 3
    assert record["validation_rmse"]["2m_temperature"] == [0.2, 0.4, 0.6, 0.8]
    card = card_training(record)
    assert card["time"].startswith("10.0 min, 3 epoch(s), best 2") and "1 thread" in card["hardware"]
    assert "1461 windows" in card["data"]


def test_hostile_or_missing_records_are_bounded(tmp_path):
    assert training_record(tmp_path, T2M_TASK, FINGERPRINT) is None
    hostile = {**META, "epochs_run": "many", "data_title": "x" * 10_000, "task_fingerprint": "other",
               "validation": {"rmse": {"c": ["NaN", float("inf")] + [1.0] * 100}}}
    log = [{"epoch": i, "train_loss": "?", "val_score": None} for i in range(10_000)]
    record = training_record(write_weights(tmp_path, hostile, log), T2M_TASK, FINGERPRINT)
    assert record["epochs_run"] is None and len(record["data_title"]) == 300
    assert record["task_fingerprint_matches"] is False
    assert len(record["curve"]) == 2000 and record["validation_rmse"]["c"][:2] == [None, None]


def test_results_accept_a_training_object_and_refuse_anything_else():
    raw = fabricate_results("trained-model", T2M_TASK)
    validate_results_json({**raw, "training": {"curve": []}})
    with pytest.raises(ResultsError, match="training must be an object"):
        validate_results_json({**raw, "training": [1, 2]})


def test_the_submission_page_draws_the_training_curve(tmp_path):
    record = training_record(write_weights(tmp_path / "sub", META, LOG), T2M_TASK, FINGERPRINT)
    write_results_file(tmp_path / "results", {**fabricate_results("trained-model", T2M_TASK), "training": record})
    report = build_site(tmp_path / "results", tmp_path / "site")
    page = next(p for p in report.out_dir.rglob("trained-model.html"))
    html = page.read_text()
    assert "Training curve" in html and "Validation RMSE · 2m_temperature" in html
    assert html.count("<circle") >= 6  # 3 epochs x (train, validation) besides the RMSE charts


def test_the_board_tags_a_model_whose_validation_was_still_improving(tmp_path):
    record = training_record(write_weights(tmp_path / "sub", META, LOG), T2M_TASK, FINGERPRINT)
    assert record["convergence"]["converged"] is False  # LOG falls by a third an epoch
    write_results_file(tmp_path / "results", {**fabricate_results("trained-model", T2M_TASK), "training": record})
    flat = {**record, "convergence": {**record["convergence"], "converged": True}}
    write_results_file(tmp_path / "results", {**fabricate_results("settled-model", T2M_TASK), "training": flat})
    html = (build_site(tmp_path / "results", tmp_path / "site").out_dir / "index.html").read_text()
    rows = html.split("<tr")
    assert all("still improving" in row for row in rows if ">trained-model</a>" in row)
    assert not any("still improving" in row for row in rows if ">settled-model</a>" in row)
    assert html.count(">still improving</span>") == sum(">trained-model</a>" in row for row in rows) > 0


def test_stages_on_different_machines_are_all_named_with_their_minutes(tmp_path):
    from bench.training_record import training_machines

    cpu = {"device": "cpu", "processor": "AMD EPYC", "torch_threads": 1}
    gpu = {"device": "cuda", "processor": "Xeon", "gpu": "NVIDIA H200", "torch_threads": 2}
    # Stage 1 (no hardware record, as older checkpoints) and 2 on the CPU, stages 3 and 4 on a GPU.
    meta = {**META, "hardware": gpu, "train_wall_time_s": 900.0,
            "warm_start": {"hardware_before": gpu, "train_wall_time_s_before": 720.0,
                           "warm_start_before": {"hardware_before": cpu, "train_wall_time_s_before": 600.0,
                                                 "warm_start_before": None}}}
    machines = training_machines(meta)
    assert [m for m, _ in machines] == ["cpu · AMD EPYC · 1 thread(s)", "cuda · NVIDIA H200 · 2 thread(s)"]
    assert [round(minutes, 6) for _, minutes in machines] == [10.0, 5.0]
    assert training_machines({**META, "hardware": cpu, "train_wall_time_s": 60.0}) == [("cpu · AMD EPYC · 1 thread(s)", 1.0)]
    record = training_record(write_weights(tmp_path, meta, LOG), T2M_TASK, FINGERPRINT)
    assert record["hardware"] == "cpu · AMD EPYC · 1 thread(s) (10.0 min), then cuda · NVIDIA H200 · 2 thread(s) (5.0 min)"


def test_convergence_says_what_the_last_epoch_and_the_last_stage_still_gained():
    log = [{"epoch": 1, "val_score": 0.04, "stage": 1}, {"epoch": 2, "val_score": 0.02, "stage": 1},
           {"epoch": 3, "val_score": 0.021, "stage": 2}, {"epoch": 4, "val_score": 0.019, "stage": 2}]
    record = convergence(log)
    assert record["last_epoch_change"] == pytest.approx(0.019 / 0.021 - 1)
    assert record["last_stage_gain"] == pytest.approx(-0.05) and record["last_stage_epochs"] == 2
    assert "0.02000 -> 0.01900 (-5.00%)" in convergence_text(record)
    single = convergence(LOG)  # no stages: the last epoch only
    assert "last_stage_gain" not in single and convergence_text(single).startswith("still improving; last epoch -33.33%")
    assert convergence(LOG[:1]) is None and convergence("junk") is None


def test_the_verdict_is_early_stopping_or_a_plateau_and_a_warm_restart_that_no_longer_helps():
    flat = [{"epoch": e, "val_score": 0.02 * (1 - 0.001 * e)} for e in range(1, 9)]  # 0.1% an epoch
    assert convergence(flat)["converged"] and convergence(flat)["plateau_change"] == pytest.approx(0.992 / 0.995 - 1)
    assert convergence_text(convergence(flat)).startswith("converged; last epoch")
    falling = [{"epoch": e, "val_score": 0.02 * (1 - 0.01 * e)} for e in range(1, 9)]  # 1% an epoch
    assert not convergence(falling)["converged"]
    overfit = falling[:4] + [{"epoch": e, "val_score": 0.02} for e in range(5, 9)]  # best 4 epochs before the end
    assert convergence(overfit)["converged"] and convergence(overfit)["epochs_since_best"] == 4
    assert convergence_text(convergence(overfit)).startswith("converged (the best epoch 4 epochs before the end); last epoch")
    restart = [{**row, "stage": 1} for row in falling] + [{**row, "epoch": row["epoch"] + 8, "val_score": 0.0180 * 0.9999 ** row["epoch"], "stage": 2} for row in flat]
    assert convergence(restart)["last_stage_gain"] < -0.02 and not convergence(restart)["converged"]  # flat, but the restart gained 2.3%
    assert convergence(flat[:3])["converged"] is False  # too short to show a plateau


def test_an_ema_stage_reports_what_the_average_gained_over_the_online_weights():
    log = [{"epoch": 1, "val_score": 0.02, "stage": 1},
           {"epoch": 2, "val_score": 0.0195, "val_score_online": 0.0200, "stage": 2},
           {"epoch": 3, "val_score": 0.0190, "val_score_online": 0.0196, "stage": 2}]
    record = convergence(log)
    assert record["ema_gain"] == pytest.approx(0.0190 / 0.0196 - 1)
    assert "weight EMA scored -3.06% against the online weights' best" in convergence_text(record)
    earlier = convergence(log + [{"epoch": 4, "val_score": 0.0189, "stage": 3}])  # the last stage has no EMA
    assert "ema_gain" not in earlier
    assert "ema_gain" not in convergence(log[:2] + [{"epoch": 3, "val_score": 0.019, "val_score_online": "x", "stage": 2}])


def test_a_hostile_convergence_record_renders_nothing_rather_than_failing():
    assert convergence_text({"last_epoch_change": "0.1"}) is None
    assert convergence_text({"last_epoch_change": -0.01, "last_stage_epochs": [], "best_score": 1}) == "last epoch -1.00% validation score"


def test_refresh_rederives_the_training_summary_and_leaves_the_scores(tmp_path):
    root = write_weights(tmp_path / "sub", META, LOG)
    record = training_record(root, T2M_TASK, FINGERPRINT)
    old = {key: value for key, value in record.items() if key != "convergence"}  # scored before the summary had it
    raw = {**fabricate_results("trained-model", T2M_TASK), "training": old}
    path = write_results_file(tmp_path / "results", raw)
    assert refresh_training(path, root) == "refreshed"
    fresh = json.loads(path.read_text())
    assert fresh["training"]["convergence"] == record["convergence"] and fresh["metrics"] == raw["metrics"]
    assert refresh_training(path, root) == "already current"
    (root / "weights" / T2M_TASK / "meta.json").write_text(json.dumps({**META, "epochs_run": 4}))  # retrained since
    with pytest.raises(StaleWeightsError, match="epochs_run differ.*bench evaluate"):
        refresh_training(path, root)
    assert json.loads(path.read_text()) == fresh  # nothing written
    untrained = write_results_file(tmp_path / "other", fabricate_results("trained-model", T2M_TASK))
    assert refresh_training(untrained, root) == "no training summary"


def test_the_refresh_command_brings_a_committed_result_up_to_date(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from bench.cli import cli

    project = Path(__file__).resolve().parent.parent
    committed = project / "leaderboard" / "results" / T2M_TASK / "lstm.json"
    raw = json.loads(committed.read_text())
    raw["training"].pop("convergence", None)  # as scored before the summary had it
    path = write_results_file(tmp_path / "results", raw)
    result = CliRunner().invoke(cli, ["leaderboard", "refresh-training", str(project / "baselines" / "lstm"), "--results", str(tmp_path / "results")])
    assert result.exit_code == 0, result.output
    assert f"{path}: refreshed" in result.output and json.loads(path.read_text())["training"]["convergence"]["converged"] is True
    raw["training"]["best_epoch"] = 1  # scored with other weights than the committed ones
    write_results_file(tmp_path / "results", raw)
    result = CliRunner().invoke(cli, ["leaderboard", "refresh-training", str(project / "baselines" / "lstm"), "--results", str(tmp_path / "results")])
    assert result.exit_code != 0 and "best_epoch differ" in result.output and "bench evaluate" in result.output
    assert json.loads(path.read_text())["training"]["best_epoch"] == 1  # left as it was
