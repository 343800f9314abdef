"""Manifest and predictions-file abuse: YAML bombs, oversized or mistyped fields, names with a
trailing newline, paths out of the submission, files declaring huge sizes, corrupt chunks."""
from __future__ import annotations

import time
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bench.errors import PredictionsFileError, SubmissionError
from bench.evaluate import evaluate
from bench.task import load_task
from hostile import PROJECT_ROOT, T2M, settings_for

BASE = ("name: probe\nkind: code\ntrack: deterministic\ntasks: [era5-64x32-12to4-t2m]\nauthors: [Tester]\n"
        "description: a test model\nlicense: MIT\n")
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))

MANIFESTS = [
    ("yaml-bomb", BASE + "entry_point: model.py:build_model\n" + BOMB, "aliases (*name) are not allowed"),
    ("oversized", BASE + "entry_point: model.py:build_model\n" + "# padding\n" * 8000, "is over 64 KiB"),
    ("deep-nesting", BASE + "entry_point: model.py:build_model\ntraining: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ("name-newline", BASE.replace("name: probe", 'name: "probe\\n"') + "entry_point: model.py:build_model\n", "must be 2-64 lowercase"),
    ("entry-point-escape", BASE + "entry_point: ../outside.py:build_model\n", "must name a file inside the submission directory"),
    ("entry-point-absolute", BASE + "entry_point: /tmp/outside.py:build_model\n", "must name a file inside the submission directory"),
    ("entry-point-newline", BASE + 'entry_point: "model.py:build_model\\n"\n', "needs entry_point: FILE.py:FUNCTION"),
    ("description-list", BASE.replace("description: a test model", "description: [a, b]") + "entry_point: model.py:build_model\n",
     "description must be text"),
    ("parameters-bool", BASE + "entry_point: model.py:build_model\nparameters: true\n", "parameters must be a non-negative integer"),
    ("url-javascript", BASE + "entry_point: model.py:build_model\ncode_url: javascript:alert(1)\n", "code_url must be an http(s) address"),
    ("predictions-escape", BASE.replace("kind: code", "kind: predictions") + "predictions: {era5-64x32-12to4-t2m: ../../data.zarr}\n",
     "must be a path inside the submission directory"),
    ("predictions-url", BASE.replace("kind: code", "kind: predictions") + "predictions: {era5-64x32-12to4-t2m: 'gs://bucket/x.zarr'}\n",
     "must be a path inside the submission directory"),
]


@pytest.mark.parametrize("text, fragment", [m[1:] for m in MANIFESTS], ids=[m[0] for m in MANIFESTS])
def test_abusive_manifests_are_refused_by_name(tmp_path, prepared, text, fragment):
    root = tmp_path / "sub"
    root.mkdir()
    (root / "submission.yaml").write_text(text)
    (root / "model.py").write_text((PROJECT_ROOT / "baselines" / "persistence" / "model.py").read_text())
    started = time.monotonic()
    with pytest.raises(SubmissionError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        evaluate(root, T2M, settings_for(prepared), tmp_path / "results")
    assert time.monotonic() - started < 10
    assert not (tmp_path / "results").exists()


def test_an_entry_point_symlinked_out_of_the_submission_is_refused(tmp_path, prepared):
    root = tmp_path / "sub"
    root.mkdir()
    outside = tmp_path / "outside.py"
    outside.write_text("def build_model(context):\n    raise SystemExit\n")
    (root / "model.py").symlink_to(outside)
    (root / "submission.yaml").write_text(BASE + "entry_point: model.py:build_model\n")
    with pytest.raises(SubmissionError, match="must name a file inside the submission directory"):
        evaluate(root, T2M, settings_for(prepared), tmp_path / "results")


def predictions_submission(root: Path, ds: xr.Dataset, **encoding) -> Path:
    root.mkdir()
    (root / "submission.yaml").write_text(
        BASE.replace("kind: code", "kind: predictions") + "predictions: {era5-64x32-12to4-t2m: forecasts.zarr}\n")
    ds.to_zarr(root / "forecasts.zarr", mode="w", zarr_format=2, compute=False, **encoding)
    return root


def lazy_forecast(prepared: Path, leads: int = 4, members: int | None = None, lead_chunk: int = 1) -> xr.Dataset:
    """A forecast declared on the test init times with ``leads`` leads, never computed (metadata only)."""
    from bench.dataset import PreparedData

    task = load_task(T2M)
    init = PreparedData(prepared, task).init_times("test")
    shape = (len(init),) + ((members,) if members else ()) + (leads, 32, 64)
    chunks = (len(init),) + ((members,) if members else ()) + (lead_chunk, 32, 64)
    dims = ["time"] + (["number"] if members else []) + ["prediction_timedelta", "latitude", "longitude"]
    coords = {"time": init.values, "prediction_timedelta": pd.to_timedelta(np.arange(1, leads + 1) * 6, unit="h"),
              "latitude": task.grid.latitude.values, "longitude": task.grid.longitude.values}
    if members:
        coords["number"] = np.arange(members)
    field = xr.DataArray(da.full(shape, 280.0, dtype=np.float32, chunks=chunks), dims=dims, coords=coords)
    return xr.Dataset({"2m_temperature": field})


def test_a_tiny_file_declaring_huge_chunks_is_refused_before_reading(tmp_path, prepared):
    ds = lazy_forecast(prepared, leads=20000, lead_chunk=20000)
    root = predictions_submission(tmp_path / "sub", ds)
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) < 100_000
    started = time.monotonic()
    with pytest.raises(PredictionsFileError, match="has chunks .* MiB each, over 256 MiB"):
        evaluate(root, T2M, settings_for(prepared), tmp_path / "results")
    assert time.monotonic() - started < 10


def test_a_file_declaring_thousands_of_leads_reads_only_the_task_leads(tmp_path, prepared):
    ds = lazy_forecast(prepared, leads=5000, lead_chunk=1)
    root = predictions_submission(tmp_path / "sub", ds)
    # Only the task's 4 leads hold chunks; the other 4996 are declared and never written.
    first = ds.isel(prediction_timedelta=slice(0, 4)).compute().drop_vars(["time", "latitude", "longitude"])
    first.to_zarr(root / "forecasts.zarr", region={"prediction_timedelta": slice(0, 4)}, mode="r+")
    started = time.monotonic()
    results, _ = evaluate(root, T2M, settings_for(prepared), tmp_path / "results")
    assert time.monotonic() - started < 60
    assert results.data["n_init_times"] == 45


def test_too_many_members_are_refused(tmp_path, prepared):
    ds = lazy_forecast(prepared, members=1000).chunk({"time": 1})
    root = predictions_submission(tmp_path / "sub", ds)
    (root / "submission.yaml").write_text((root / "submission.yaml").read_text().replace("deterministic", "probabilistic"))
    with pytest.raises(PredictionsFileError, match="1000 ensemble members; at most 100"):
        evaluate(root, T2M, settings_for(prepared), tmp_path / "results")


def test_a_corrupt_chunk_is_a_named_one_line_error(tmp_path, prepared):
    from click.testing import CliRunner

    from bench.cli import cli

    ds = lazy_forecast(prepared)
    root = predictions_submission(tmp_path / "sub", ds.compute())
    chunk = sorted((root / "forecasts.zarr" / "2m_temperature").glob("0.*"))[0]
    chunk.write_bytes(b"\x00garbage" * 10)
    result = CliRunner().invoke(cli, ["evaluate", str(root), "--task", T2M, "--data", str(prepared), "--out", str(tmp_path / "results"), "--quiet"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: PredictionsFileError: cannot read predictions") and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()
