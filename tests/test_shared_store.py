"""End to end on the shared benchmark store, when it exists beside the checkout (CI has it).

The expected persistence numbers are those published in ../shared/data/README.md.
"""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.results import Results
from conftest import PROJECT_ROOT

SHARED_STORE = PROJECT_ROOT.parent / "shared" / "data" / "sim-era5like-64x32.zarr"
pytestmark = pytest.mark.skipif(not SHARED_STORE.exists(), reason=f"{SHARED_STORE} is not here")

README_PERSISTENCE = {
    ("era5-64x32-12to4-t2m", "2m_temperature"): [0.48, 0.92, 1.29, 1.59],
    ("era5-64x32-12to4-multivar", "geopotential_500"): [123, 235, 333, 415],
    ("era5-64x32-12to4-multivar", "temperature_850"): [0.67, 1.27, 1.77, 2.17],
}


@pytest.fixture(scope="module")
def shared_prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "prepared"
    result = CliRunner().invoke(cli, ["data", "prepare", "--source", str(SHARED_STORE), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("baseline", ["persistence", "climatology"])
def test_baselines_evaluate_end_to_end_on_the_shared_store(baseline, shared_prepared, tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(PROJECT_ROOT / "baselines" / baseline), "--data", str(shared_prepared),
                                      "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "1461 test init times" in result.output
    for task in ("era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"):
        results = Results.read(tmp_path / task / f"{baseline}.json")
        assert results.data["n_init_times"] == 1461
        if baseline == "persistence":
            for (t, channel), expected in README_PERSISTENCE.items():
                if t == task:
                    digits = 2 if expected[0] < 10 else 0
                    got = [round(v, digits) for v in results.metric(channel, "rmse")]
                    assert got == pytest.approx(expected, abs=10 ** -digits), (channel, got)
        else:
            rmse = results.metric("2m_temperature", "rmse")
            assert max(rmse) - min(rmse) < 0.05  # climatology ignores the lead time
