"""`bench data prepare` on stores in WB2 schema: selection, checks, statistics, climatology, gs://."""
from __future__ import annotations

import importlib
import json

import fsspec
from fsspec.implementations.asyn_wrapper import AsyncFileSystemWrapper
from fsspec.implementations.dirfs import DirFileSystem
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bench.climatology import compute_climatology
from bench.errors import DataError
from bench.normalization import NormStats
from bench.prepare import prepare
from bench.store import WB2_ERA5_64X32, open_store
from wb2_store import make_wb2_store, write_wb2_store


def test_prepare_writes_channels_stats_climatology_and_a_manifest(prepared, wb2_store):
    manifest = json.loads((prepared / "manifest.json").read_text())
    assert manifest["channels"] == ["2m_temperature", "geopotential_500", "temperature_850",
                                    "10m_u_component_of_wind", "10m_v_component_of_wind"]
    assert len(manifest["gaps"]) == 1 and len(manifest["data_fingerprint"]) == 16
    data = xr.open_zarr(prepared / "data.zarr")
    source = xr.open_zarr(wb2_store)
    np.testing.assert_array_equal(data["geopotential_500"].values, source["geopotential"].sel(level=500).values)
    assert (np.diff(data["latitude"].values) > 0).all()


def test_statistics_come_from_the_train_split_only(prepared, wb2_store):
    stats = NormStats.read(prepared / "stats.json")
    t2m = xr.open_zarr(wb2_store)["2m_temperature"]
    train = t2m.sel(time=slice("2015-01-01", "2018-12-31T18")).values.astype(np.float64)
    everything = t2m.values.astype(np.float64)
    s = stats.stats["2m_temperature"]
    assert s.mean == pytest.approx(train.mean(), rel=1e-9) and s.std == pytest.approx(train.std(), rel=1e-9)
    assert s.mean != pytest.approx(everything.mean(), rel=1e-9)
    assert (s.min, s.max) == (pytest.approx(train.min()), pytest.approx(train.max()))
    x = np.random.default_rng(0).normal(280, 5, (3, 1, 32, 64)).astype(np.float32)
    sub = stats.subset(["2m_temperature"])
    np.testing.assert_allclose(sub.unzscore(sub.zscore(x)), x, rtol=1e-6)
    np.testing.assert_allclose(sub.from_unit_range(sub.to_unit_range(x)), x, rtol=1e-6)
    assert sub.to_unit_range(np.array([[[[s.min]], ]], dtype=np.float64)).item() == pytest.approx(-1)


def test_climatology_is_the_smoothed_day_of_year_hour_mean():
    times = pd.date_range("2016-01-01", "2017-12-31T18", freq="6h")
    doy = times.day_of_year.values
    values = (doy[:, None, None] * 1.0 + times.hour.values[:, None, None]) * np.ones((1, 2, 3))
    field = xr.DataArray(values, dims=("time", "latitude", "longitude"), coords={"time": times})
    raw = compute_climatology(field, 6, window_days=1, window="flat")
    assert float(raw.sel(dayofyear=100, hour=12)[0, 0]) == pytest.approx(112.0)
    smooth = compute_climatology(field, 6, window_days=5)
    # days 98..102 at 06 UTC with WB2's triangular weights 0, 1, 2, 1, 0 (a linear signal keeps its value)
    assert float(smooth.sel(dayofyear=100, hour=6)[0, 0]) == pytest.approx(106.0)
    constant = xr.DataArray(np.full((len(times), 2, 3), 7.0), dims=field.dims, coords={"time": times})
    np.testing.assert_allclose(compute_climatology(constant, 6, 61).values, 7.0, rtol=1e-6)


def test_descending_latitude_is_flipped_and_the_values_follow(tmp_path):
    store = write_wb2_store(tmp_path / "desc.zarr", descending_latitude=True)
    out = prepare(str(store), tmp_path / "prep", ["era5-64x32-12to4-t2m"], progress=False)
    data = xr.open_zarr(tmp_path / "prep" / "data.zarr")
    assert (np.diff(data["latitude"].values) > 0).all()
    src = xr.open_zarr(store)["2m_temperature"].sortby("latitude")
    np.testing.assert_array_equal(data["2m_temperature"].values, src.values)
    assert out.channels == ["2m_temperature"]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda ds: ds.isel(longitude=slice(0, 32)), "longitude grid of the store"),
        (lambda ds: ds.assign_coords(latitude=ds.latitude + 1.0), "latitude grid"),
        (lambda ds: ds.drop_vars("temperature"), "no variable 'temperature'"),
        (lambda ds: ds.sel(level=[500, 700]), "no level 850"),
        (lambda ds: ds.assign_coords(time=ds.time + pd.Timedelta(hours=3)), "6-hourly"),
    ],
)
def test_bad_stores_are_refused_with_the_problem_named(tmp_path, mutate, message):
    store = tmp_path / "bad.zarr"
    mutate(make_wb2_store()).to_zarr(store, zarr_format=2, consolidated=True)
    with pytest.raises(DataError, match=message):
        prepare(str(store), tmp_path / "out", ["era5-64x32-12to4-multivar"], progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_store_names_the_fix(tmp_path):
    with pytest.raises(DataError, match="no data store at .*sim-era5like-64x32.zarr"):
        open_store(tmp_path / "nowhere.zarr")


def test_gs_urls_are_read_anonymously_through_gcsfs(tmp_path, monkeypatch):
    """The real-ERA5 path: the WB2 URL goes to gcsfs with token='anon' (served here from a local copy)."""
    local_root = tmp_path / "bucket"
    relative = WB2_ERA5_64X32.removeprefix("gs://")
    write_wb2_store(local_root / relative)
    seen = {}

    class LocalGCS(DirFileSystem):
        protocol = "gs"

        def __init__(self, token=None, **kwargs):
            seen["token"] = token
            local = AsyncFileSystemWrapper(fsspec.filesystem("file"), asynchronous=True)
            super().__init__(path=str(local_root), fs=local, **kwargs)

        @classmethod
        def _strip_protocol(cls, path):
            return str(path).removeprefix("gs://")

    registry_module = importlib.import_module("fsspec.registry")  # `fsspec.registry` is a read-only view
    monkeypatch.setitem(registry_module._registry, "gs", LocalGCS)
    ds = open_store(WB2_ERA5_64X32)
    assert seen["token"] == "anon"
    assert set(ds.data_vars) >= {"2m_temperature", "geopotential"}
    manifest = prepare(WB2_ERA5_64X32, tmp_path / "prep", ["era5-64x32-12to4-t2m"], progress=False)
    assert manifest.source == WB2_ERA5_64X32
