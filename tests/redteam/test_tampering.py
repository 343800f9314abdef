"""Tampering: the model cannot change the data, the store, the results, the committed results,
the harness or the environment; a prepared directory changed behind the harness's back is refused."""
from __future__ import annotations

import json
import shutil
import site
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.errors import DataIntegrityError
from bench.evaluate import evaluate
from hostile import BENCH_DIR, PROJECT_ROOT, T2M, hostile, hostile_model, requires_kernel_sandbox, settings_for, unchanged  # noqa: F401 (fixtures)

WRITE_PROBE = '''
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
opened = []
for path in ({targets}):
    fd = libc.syscall(257, -100, path.encode(), os.O_WRONLY | os.O_APPEND, 0)   # raw openat: no audit hook
    if fd >= 0:
        opened.append(path)
        os.close(fd)
    if libc.syscall(257, -100, (path + ".new").encode(), os.O_WRONLY | os.O_CREAT, 0o644) >= 0:
        opened.append(path + ".new")
if opened:
    raise RuntimeError(f"TAMPER could open {{opened}}")
'''


@requires_kernel_sandbox
def test_nothing_the_harness_owns_can_be_opened_for_writing(hostile, prepared, wb2_store, tmp_path, unchanged):
    results = tmp_path / "results"
    results.mkdir()
    (results / "old.json").write_text("{}")
    targets = [prepared / "manifest.json", prepared / "stats.json", wb2_store / ".zmetadata", results / "old.json",
               BENCH_DIR / "__init__.py", PROJECT_ROOT / "leaderboard" / "results" / T2M / "persistence.json",
               Path(sys.executable), Path(np.__file__)]
    code = WRITE_PROBE.format(targets=", ".join(repr(str(t)) for t in targets))
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    before = {str(t): t.stat().st_mtime_ns for t in targets}
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "scored")
    assert {str(t): t.stat().st_mtime_ns for t in targets} == before
    check()


@requires_kernel_sandbox
def test_the_submission_cannot_rewrite_itself(hostile, prepared, tmp_path, unchanged):
    code = '''
import pathlib
try:
    pathlib.Path(__file__).write_text("cheat = True")
except OSError:
    pass
'''
    submission = hostile(hostile_model(build=code))
    check = unchanged(submission, tmp_path / "untouched")
    evaluate(submission, T2M, settings_for(prepared), tmp_path / "results")
    check()


def _copy(prepared: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "prepared-copy"
    shutil.copytree(prepared, copy)
    return copy


@pytest.mark.parametrize("part", ["data", "stats", "climatology"])
def test_a_tampered_prepared_directory_is_refused_by_name(prepared, tmp_path, part):
    copy = _copy(prepared, tmp_path)
    if part == "stats":
        stats = json.loads((copy / "stats.json").read_text())
        first = next(iter(stats["stats"] if "stats" in stats else stats))
        (copy / "stats.json").write_text(json.dumps(stats).replace("0", "1", 1))
    else:
        store = copy / ("data.zarr" if part == "data" else "climatology.zarr")
        chunk = sorted(p for p in (store / "2m_temperature").iterdir() if not p.name.startswith("."))[0]
        import xarray as xr

        ds = xr.open_zarr(store)
        altered = ds.copy(deep=True).load()
        altered["2m_temperature"].values[(0,) * altered["2m_temperature"].ndim] += 1.0
        altered.to_zarr(store, mode="w", zarr_format=2, consolidated=True)
        assert chunk.exists()
    with pytest.raises(DataIntegrityError, match="no longer match the fingerprints|cannot be read back"):
        evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings_for(copy), tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_a_prepared_directory_without_digests_is_refused_by_name(prepared, tmp_path):
    copy = _copy(prepared, tmp_path)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.pop("integrity")
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DataIntegrityError, match="without integrity digests; re-run: bench data prepare"):
        evaluate(PROJECT_ROOT / "baselines" / "persistence", T2M, settings_for(copy), tmp_path / "results")
    assert not (tmp_path / "results").exists()
