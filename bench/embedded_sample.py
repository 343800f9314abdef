"""The embedded sample: a small cut of the simulated benchmark store shipped for the quick start.

It holds every task variable (2 m temperature, z500, t850, 10 m winds) and the static fields for
2018-01-01 .. 2018-02-28 (train: statistics and a same-season climatology) and 2019-12-29 ..
2020-02-29 (so the first test init times have their inputs), so every baseline and both tasks run
on it. Results on it are labelled as the sample and are not
comparable with the leaderboard; ``cut_sample`` is how the shipped file was made.
"""
from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import xarray as xr

from bench.dataset import default_cache_dir
from bench.store import open_store

SAMPLE_NAME = "sample"
SAMPLE_FILE = Path(str(resources.files("bench") / "sample" / "sim-era5like-64x32-sample.nc"))
SAMPLE_VARIABLES = ("2m_temperature", "geopotential", "temperature", "10m_u_component_of_wind",
                    "10m_v_component_of_wind", "land_sea_mask", "geopotential_at_surface")
SAMPLE_LEVELS = (500, 850)
SAMPLE_PERIODS = (("2018-01-01", "2018-02-28T18"), ("2019-12-29", "2020-02-29T18"))
MAX_BYTES = 10 * 2**20


def cut_sample(source: str | Path, out: Path = SAMPLE_FILE) -> Path:
    """Cut the embedded sample from the simulated store (at most 10 MB, zlib-compressed netCDF)."""
    ds = open_store(source)[list(SAMPLE_VARIABLES)].sel(level=list(SAMPLE_LEVELS))
    timed = [v for v in ds.data_vars if "time" in ds[v].dims]
    pieces = [ds[timed].sel(time=slice(first, last)) for first, last in SAMPLE_PERIODS]
    static = {v: ds[v] for v in ds.data_vars if v not in timed}
    sample = xr.concat(pieces, dim="time").assign(static).load()
    sample.attrs = dict(ds.attrs)
    sample.attrs["title"] = "EMBEDDED SAMPLE of " + str(ds.attrs.get("title", "the benchmark store"))
    sample.attrs["sample_note"] = (
        "Quick-start sample: the task variables for 2018-01..02 and 2019-12-29..2020-02-29 only. "
        "Simulation, not reanalysis; scores on it are not the benchmark's."
    )
    encoding = {v: {"zlib": True, "complevel": 9, "shuffle": True} for v in sample.data_vars}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.nc")
    sample.to_netcdf(tmp, engine="netcdf4", encoding=encoding)
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise ValueError(f"the sample would be {size / 2**20:.1f} MiB, over the 10 MiB budget")
    tmp.rename(out)
    return out


def prepared_sample_dir() -> Path:
    """Where the prepared sample is cached, keyed by the sample file's content."""
    digest = hashlib.sha256(SAMPLE_FILE.read_bytes()).hexdigest()[:12]
    return default_cache_dir() / f"prepared-sample-{digest}"
