"""The prepared climatology is WeatherBench 2's: checked against WB2's own code on identical data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import wb2_reference
from bench.climatology import compute_climatology, window_weights


def field(years: str = "2015-01-01/2017-12-31T18", seed: int = 0) -> xr.DataArray:
    """A 6-hourly field with a seasonal cycle, a diurnal cycle and noise, over a leap year."""
    first, last = years.split("/")
    times = pd.date_range(first, last, freq="6h")
    rng = np.random.default_rng(seed)
    season = 10 * np.sin(2 * np.pi * times.day_of_year.values / 365.25)[:, None, None]
    diurnal = 2 * np.cos(2 * np.pi * times.hour.values / 24)[:, None, None]
    values = 280 + season + diurnal + rng.normal(0, 3, (len(times), 3, 4))
    return xr.DataArray(values.astype(np.float32), dims=("time", "latitude", "longitude"),
                        coords={"time": times, "latitude": [-30.0, 0.0, 30.0], "longitude": [0.0, 90.0, 180.0, 270.0]})


def test_window_weights_are_wb2s_triangular_weights():
    np.testing.assert_allclose(window_weights(61), wb2_reference.create_window_weights(61).values, rtol=0, atol=0)
    assert window_weights(5).tolist() == pytest.approx([0, 1.25, 2.5, 1.25, 0])  # zero at both ends, mean 1
    assert window_weights(5, "flat").tolist() == [1, 1, 1, 1, 1]


@pytest.mark.parametrize("window_days", [61, 5])
def test_climatology_equals_wb2_compute_hourly_stat_on_identical_data(window_days):
    x = field()
    ours = compute_climatology(x, 6, window_days)
    theirs = wb2_reference.compute_hourly_stat(x.to_dataset(name="t"), window_days, slice("2015", "2017"), 6)["t"]
    theirs = theirs.transpose("dayofyear", "hour", "latitude", "longitude")
    assert theirs.sizes["dayofyear"] == 366 and list(theirs["hour"].values) == [0, 6, 12, 18]
    np.testing.assert_allclose(ours.values, theirs.values.astype(np.float32), rtol=2e-7)


def test_the_flat_window_of_older_harnesses_differs_from_wb2():
    x = field(seed=1)
    theirs = wb2_reference.compute_hourly_stat(x.to_dataset(name="t"), 61, slice("2015", "2017"), 6)["t"]
    flat = compute_climatology(x, 6, 61, window="flat")
    assert np.abs(flat.values - theirs.transpose(*flat.dims).values).max() > 1e-3


def test_prepared_data_with_the_old_flat_climatology_is_refused_with_the_fix(prepared, tmp_path):
    import json
    import shutil

    from bench.dataset import PreparedData
    from bench.errors import DataError
    from bench.prepare import verify_prepared
    from bench.task import load_task

    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["climatology"] == {"window_days": 61, "window": "triangular", "method": "wb2-hourly-explicit",
                                       "statistic": "mean", "years": "train split"}
    old = tmp_path / "old"
    shutil.copytree(prepared, old)
    manifest.pop("climatology")
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="flat 61-day climatology window.*re-run: bench data prepare"):
        verify_prepared(old)
    with pytest.raises(DataError, match="triangular"):
        PreparedData(old, load_task("era5-64x32-12to4-t2m")).climatology
