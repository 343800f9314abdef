"""The README's main job: a fresh clone scores the committed ConvLSTM on the embedded sample, both tasks."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytest.importorskip("torch")

from bench.cli import cli  # noqa: E402
from zoo_helpers import PROJECT_ROOT  # noqa: E402


def test_the_quick_start_scores_the_committed_convlstm(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BENCH_DATA", raising=False)
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines/convlstm"), "--out", str(tmp_path / "r"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "EMBEDDED SAMPLE" in result.output and result.output.count("237 test init times") == 2
    for task in ("era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"):
        raw = json.loads((tmp_path / "r" / task / "convlstm.json").read_text())
        persistence_like = raw["metrics"]["2m_temperature"]["physical"]["rmse"]
        assert all(0 < v < 5 for v in persistence_like)
        assert raw["training"]["epochs_run"] >= 1 and raw["submission"]["training"]["hardware"]
