"""The fallback: where Landlock is missing (or BENCH_SANDBOX=audit-hook), runs still work with the
audit hook, and the results say 'audit-hook only'; with the kernel sandbox they name its mechanisms."""
from __future__ import annotations

import pytest

from bench.errors import TargetAccessError
from bench.evaluate import evaluate
from bench.sandbox import isolation_plan
from hostile import PROJECT_ROOT, T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for  # noqa: F401


@pytest.fixture()
def audit_hook_only(monkeypatch):
    monkeypatch.setenv("BENCH_SANDBOX", "audit-hook")
    isolation_plan.cache_clear()
    yield
    monkeypatch.undo()
    isolation_plan.cache_clear()


def test_the_fallback_runs_and_is_labelled(audit_hook_only, prepared, tmp_path):
    results, path = evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings_for(prepared), tmp_path)
    assert results.provenance["isolation"] == "audit-hook only"
    assert '"isolation": "audit-hook only"' in path.read_text()


def test_the_fallback_still_names_python_level_reads(audit_hook_only, hostile, prepared, tmp_path):
    submission = hostile(hostile_model(predict=f"open({str(prepared / 'manifest.json')!r}).read()"))
    with pytest.raises(TargetAccessError):
        evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")


@requires_kernel_sandbox
def test_the_kernel_sandbox_is_labelled_by_its_mechanisms(prepared, tmp_path):
    results, _ = evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings_for(prepared), tmp_path)
    assert results.provenance["isolation"].startswith("landlock+namespaces")
    assert results.provenance["isolation"].endswith("rlimits")


def test_predictions_files_run_no_code(prepared, tmp_path):
    from bench.evaluate import NO_CODE_RUN

    assert NO_CODE_RUN.startswith("none")
