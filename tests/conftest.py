"""Shared fixtures: a tiny WB2-schema store and its prepared directory (built once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.prepare import prepare
from wb2_store import write_wb2_store

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def wb2_store(tmp_path_factory) -> Path:
    """A small zarr store in WeatherBench2's schema."""
    return write_wb2_store(tmp_path_factory.mktemp("store") / "wb2.zarr")


@pytest.fixture(scope="session")
def prepared(wb2_store, tmp_path_factory) -> Path:
    """``bench data prepare`` output for every task, from the tiny store."""
    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare(str(wb2_store), out, progress=False)
    return out


@pytest.fixture()
def make_submission(tmp_path):
    """Write a code submission whose model.py body is given; returns its directory."""

    def make(body: str, name: str = "probe", track: str = "deterministic", tasks=("era5-64x32-12to4-t2m",)) -> Path:
        root = tmp_path / name
        root.mkdir()
        task_list = ", ".join(tasks)
        (root / "submission.yaml").write_text(
            f"name: {name}\nkind: code\ntrack: {track}\ntasks: [{task_list}]\nauthors: [Tester]\n"
            "description: a test model\nlicense: MIT\nentry_point: model.py:build_model\n"
        )
        (root / "model.py").write_text(body)
        return root

    return make


def pytest_collection_modifyitems(config, items):
    """Long runs (marker ``slow``) stay out of the default run; ``-m slow`` selects them."""
    if "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="long run: select with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
