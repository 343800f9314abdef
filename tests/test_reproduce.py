"""`bench reproduce`: committed results re-derived and compared; an edited number caught and named;
`--rewrite`; the same run on a dask LocalCluster (2 workers) identical; a worker killed mid-run survived."""
from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bench.cli import cli
from bench.distributed import DaskRunner, EvaluationJob, score_job
from bench.evaluate import EvaluationSettings, evaluate, predict
from bench.reproduce import ReproduceOptions, Tolerance, read_report, run_reproduce
from bench.results import Results
from conftest import PROJECT_ROOT

T2M = "era5-64x32-12to4-t2m"
MULTI = "era5-64x32-12to4-multivar"


@pytest.fixture()
def project(tmp_path, prepared) -> Path:
    """A project with two baselines, a predictions submission and their committed results."""
    root = tmp_path / "project"
    for name in ("persistence", "climatology"):  # copies, renamed: a name may not collide with a real baseline
        shutil.copytree(PROJECT_ROOT / "baselines" / name, root / "baselines" / name)
        manifest = yaml.safe_load((root / "baselines" / name / "submission.yaml").read_text())
        (root / "baselines" / name / "submission.yaml").write_text(yaml.safe_dump({**manifest, "name": f"my-{name}"}))
    preds = root / "submissions" / "persistence_file"
    preds.mkdir(parents=True)
    (preds / "submission.yaml").write_text(yaml.safe_dump({
        "name": "persistence-file", "kind": "predictions", "track": "deterministic", "tasks": [T2M],
        "authors": ["Tester"], "description": "persistence, from its forecasts file", "license": "MIT",
        "predictions": {T2M: "forecasts.zarr"}, "parameters": 0}))
    (root / "leaderboard").mkdir()
    (root / "leaderboard" / "reproduce.yaml").write_text(yaml.safe_dump({"predictions": [
        {"submission": "submissions/persistence_file", "task": T2M, "from_code": "baselines/persistence"}]}))
    settings = EvaluationSettings(prepared, batch_size=16, progress=False)
    predict(root / "baselines/persistence", T2M, settings, preds / "forecasts.zarr")
    results = root / "leaderboard" / "results"
    for name, task in (("persistence", T2M), ("climatology", T2M), ("persistence", MULTI)):
        evaluate(root / "baselines" / name, task, settings, results)
    evaluate(preds, T2M, settings, results)
    shutil.rmtree(preds / "forecasts.zarr")  # not in git: reproduce makes it again from its recipe
    return root


def options(project: Path, prepared: Path, **kwargs) -> ReproduceOptions:
    kwargs.setdefault("report_path", project / "leaderboard/reproduce.json")
    return ReproduceOptions(results_dir=project / "leaderboard/results", settings=EvaluationSettings(prepared, batch_size=16, progress=False),
                            project_root=project, **kwargs)


def test_every_committed_result_is_re_derived_equal_and_reported(project, prepared):
    entries, report = run_reproduce(options(project, prepared), log=lambda _: None)
    assert {(e.submission, e.task) for e in entries} == {
        ("my-persistence", T2M), ("my-climatology", T2M), ("my-persistence", MULTI), ("persistence-file", T2M)}
    assert all(e.status == "equal" for e in entries), [(e.submission, e.error, e.comparison and e.comparison.differences[:2]) for e in entries]
    assert report["ok"] and report["counts"]["equal"] == 4 and report["inputs_made"] == ["submissions/persistence_file/forecasts.zarr"]
    saved = read_report(project / "leaderboard/reproduce.json")
    assert saved["last_success_at"] and saved["data"]["fingerprint"] and saved["data"]["climatology"]["window"] == "triangular"
    assert all(e["numbers_compared"] > 2048 for e in saved["entries"])  # metrics, error maps and facts
    assert {e["command"] for e in saved["entries"] if e["submission"] == "my-persistence" and e["task"] == T2M} == {
        f"bench reproduce --task {T2M} --only my-persistence --data wb2.zarr"}
    assert all(e["data_fingerprint"] == saved["data"]["fingerprint"] for e in saved["entries"])
    # a partial run replaces only its own entries, one per results file
    _, partial = run_reproduce(options(project, prepared, only=("my-climatology",)), log=lambda _: None)
    assert len(partial["entries"]) == 4 and len({(e["task"], e["submission"], e["results_file"]) for e in partial["entries"]}) == 4


def test_an_edited_committed_number_is_caught_named_and_exits_non_zero(project, prepared):
    path = project / "leaderboard/results" / T2M / "my-persistence.json"
    raw = json.loads(path.read_text())
    committed = raw["metrics"]["2m_temperature"]["physical"]["rmse"][1]
    raw["metrics"]["2m_temperature"]["physical"]["rmse"][1] = round(committed * 1.001, 6)
    path.write_text(json.dumps(raw))
    result = CliRunner().invoke(cli, ["reproduce", "--results", str(project / "leaderboard/results"), "--data", str(prepared),
                                      "--only", "my-persistence", "--task", T2M, "--batch-size", "16", "--quiet",
                                      "--project-root", str(project)])
    assert result.exit_code == 1, result.output
    assert "my-persistence on era5-64x32-12to4-t2m: metrics.2m_temperature.physical.rmse at +12h" in result.output
    assert f"committed {round(committed * 1.001, 6)!r}, re-derived {committed!r}" in result.output
    assert json.loads(path.read_text())["metrics"]["2m_temperature"]["physical"]["rmse"][1] != committed  # never rewritten silently
    entries, report = run_reproduce(options(project, prepared, only=("my-persistence",), tasks=(T2M,), rewrite=True), log=lambda _: None)
    assert [e.status for e in entries] == ["rewritten"] and report["ok"]
    assert json.loads(path.read_text())["metrics"]["2m_temperature"]["physical"]["rmse"][1] == committed
    entries, _ = run_reproduce(options(project, prepared, only=("my-persistence",), tasks=(T2M,)), log=lambda _: None)
    assert [e.status for e in entries] == ["equal"]


def test_a_result_of_another_data_store_names_the_store_and_the_fix(project, prepared):
    path = project / "leaderboard/results" / T2M / "my-persistence.json"
    raw = json.loads(path.read_text())
    raw["data"] = {**raw["data"], "fingerprint": "0123456789abcdef", "store": "other-store.zarr"}
    path.write_text(json.dumps(raw))
    result = CliRunner().invoke(cli, ["reproduce", "--results", str(project / "leaderboard/results"), "--data", str(prepared),
                                      "--only", "my-persistence", "--task", T2M, "--batch-size", "16", "--quiet", "--no-report",
                                      "--project-root", str(project)])
    assert result.exit_code == 1, result.output
    assert "data.fingerprint: committed '0123456789abcdef'" in result.output
    assert "re-derived on another data store" in result.output and "pass --data" in result.output and "other-store.zarr" in result.output


def test_tolerance_is_one_unit_in_the_last_stored_digit():
    seven = Tolerance(7)
    assert seven.allows(2.102345, 2.102346) and not seven.allows(2.102345, 2.102348)
    assert seven.allows(None, None) and not seven.allows(None, 0.5) and seven.allows(-3.2e-05, -3.2e-05)


def test_a_local_cluster_of_two_workers_gives_identical_results(project, prepared):
    local, _ = run_reproduce(options(project, prepared, report_path=None), log=lambda _: None)
    # chunk_batches=1: the predictions file's 45 init times are scored as 3 chunks on the workers
    distributed, report = run_reproduce(options(project, prepared, report_path=None, scheduler="local:2", chunk_batches=1), log=lambda _: None)
    assert report["scheduler"] == "local:2" and all(e.status == "equal" for e in distributed)
    by_key = {(e.submission, e.task): e.new for e in local}
    for entry in distributed:
        mine = by_key[(entry.submission, entry.task)]
        assert entry.new.metrics == mine.metrics and entry.new.error_maps == mine.error_maps  # bit for bit, after rounding


SLOW_MODEL = """
import time
class Slow:
    def predict(self, inputs, batch):
        time.sleep(0.15)
        return inputs[:, -1:].repeat(4, axis=1)
def build_model(context):
    return Slow()
"""


def test_a_worker_killed_mid_run_is_survived_with_no_partial_result(prepared, make_submission, tmp_path):
    from distributed import Client, LocalCluster

    slow = make_submission(SLOW_MODEL, name="slow")
    job = EvaluationJob(slow, T2M, EvaluationSettings(prepared, batch_size=16, progress=False))
    expected = score_job(job)
    out = tmp_path / "results"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        outcomes: list = []
        runner = DaskRunner(client, retries=0)
        thread = threading.Thread(target=lambda: outcomes.extend(runner.run([job])))
        thread.start()
        deadline = time.time() + 60
        busy = None
        while time.time() < deadline and busy is None:
            busy = next((worker for worker, keys in client.processing().items() if keys), None)
            time.sleep(0.2)
        assert busy is not None, "the evaluation never started"
        time.sleep(2.0)  # mid-run: the model has answered some init times
        os.kill(pids[busy], signal.SIGKILL)
        assert not out.exists()  # nothing written while the evaluation runs
        thread.join(timeout=180)
        assert not thread.is_alive()
    [(_, value, _)] = outcomes
    assert isinstance(value, Results), value
    assert value.metrics == expected.metrics and value.error_maps == expected.error_maps
    assert value.data["n_init_times"] == 45


def test_bench_evaluate_on_a_local_cluster_writes_the_single_process_numbers(prepared, tmp_path):
    args = ["evaluate", str(PROJECT_ROOT / "baselines/persistence"), "--task", T2M, "--data", str(prepared), "--batch-size", "16", "--quiet"]
    one = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "one")])
    two = CliRunner().invoke(cli, args + ["--out", str(tmp_path / "two"), "--scheduler", "local:2"])
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    a, b = (Results.read(tmp_path / d / T2M / "persistence.json") for d in ("one", "two"))
    assert a.metrics == b.metrics and a.error_maps == b.error_maps


def test_a_malformed_scheduler_names_the_fix(prepared, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/persistence"), "--data", str(prepared),
                                      "--scheduler", "local:two", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 2 and "SchedulerError" in result.output and "local:2" in result.output


@pytest.mark.zoo
def test_train_retrains_a_scratch_copy_and_measures_the_distance(prepared):
    pytest.importorskip("torch")
    from bench.reproduce import retrain_and_compare

    weights = PROJECT_ROOT / "baselines/linear_regression/weights" / T2M
    before = {p.name: p.stat().st_mtime_ns for p in weights.iterdir()}
    record = retrain_and_compare("linear-regression", T2M, EvaluationSettings(prepared, batch_size=16, progress=False),
                                 PROJECT_ROOT / "leaderboard/results", progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in weights.iterdir()} == before  # committed weights untouched
    assert set(record["validation_rmse"]) == set(record["test_rmse"]) == {"2m_temperature"}
    assert all(d["committed"] is not None and d["new"] is not None for d in record["test_rmse"]["2m_temperature"])
    assert "not bit-reproducible across hardware" in record["note"]


def test_codec_results_of_another_board_find_their_store_in_either_schema():
    """Schema 2 records the store's name; schema 1 recorded its absolute path: both match --fields."""
    from types import SimpleNamespace

    from bench.reproduce import ReproduceError, fields_store_for

    stores = ("/data/real/era5-sample-64x32.zarr",)
    for data in ({"store": "era5-sample-64x32.zarr", "statistics": "train split"},
                 {"source": "/elsewhere/real/era5-sample-64x32.zarr", "statistics": "train split"}):
        entry = SimpleNamespace(track="codec", committed=SimpleNamespace(data=data), path="x.json")
        assert fields_store_for(entry, stores) == stores[0]
    entry = SimpleNamespace(track="codec", committed=SimpleNamespace(data={"store": "other.zarr", "statistics": "t"}), path="x.json")
    with pytest.raises(ReproduceError, match="scored on the store 'other.zarr'; name it with --fields PATH/other.zarr"):
        fields_store_for(entry, stores)
