"""Turn a ``--data`` argument into a prepared data directory.

``sample`` is the embedded sample; a directory with ``manifest.json`` is used as is; any other
WeatherBench2-schema store (local or gs://) is prepared once into the cache and reused.
"""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from bench.dataset import default_cache_dir
from bench.embedded_sample import SAMPLE_FILE, SAMPLE_NAME, prepared_sample_dir
from bench.errors import DataError
from bench.prepare import PreparedManifest, prepare

DATA_ENV = "BENCH_DATA"


def default_data() -> str:
    """``$BENCH_DATA`` if set, else the embedded sample."""
    return os.environ.get(DATA_ENV, SAMPLE_NAME)


def _has_integrity(target: Path) -> bool:
    """True for a cached prepared directory written by a harness that records integrity digests and builds
    the climatology as this one does (WB2's triangular window); anything older is prepared again."""
    try:
        manifest = PreparedManifest.read(target / "manifest.json")
        return manifest.integrity is not None and manifest.climatology_spec is not None
    except (DataError, OSError):
        return False


def resolve_data(data: str | None, progress: bool = True) -> Path:
    """A prepared data directory for ``data``, preparing (and caching) it when needed."""
    data = data or default_data()
    if data == SAMPLE_NAME:
        target, source = prepared_sample_dir(), str(SAMPLE_FILE)
        label = "the embedded sample (simulated, Jan-Feb 2018 + Jan-Feb 2020; NOT the benchmark store)"
    else:
        path = Path(data).expanduser()
        if "://" not in data and (path / "manifest.json").is_file():
            return path
        source = data if "://" in data else str(path.resolve())
        target = default_cache_dir() / f"prepared-{hashlib.sha256(source.encode()).hexdigest()[:12]}"
        label = source
    if not _has_integrity(target):
        print(f"preparing {label} into {target} (once)", file=sys.stderr)
        prepare(source, target, progress=progress)
    elif data == SAMPLE_NAME:
        print(f"data: {label}", file=sys.stderr)
    return target
