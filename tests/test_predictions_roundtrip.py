"""Both kinds of submission give identical scores: `bench predict` writes a code submission's
forecasts in WB2's layout, and evaluating that file matches evaluating the code."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

from bench.cli import cli
from bench.evaluate import EvaluationSettings, evaluate
from bench.results import Results, results_path
from bench.validation import validate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CODE = PROJECT_ROOT / "submissions" / "example_code"
EXAMPLE_PREDICTIONS = PROJECT_ROOT / "submissions" / "example_predictions"
TASKS = ["era5-64x32-12to4-t2m", "era5-64x32-12to4-multivar"]


def predictions_copy(root: Path, task_name: str, forecasts: Path) -> Path:
    """The example predictions submission, renamed (names are unique), with ``forecasts`` moved inside it."""
    manifest = yaml.safe_load((EXAMPLE_PREDICTIONS / "submission.yaml").read_text())
    manifest.update(name="roundtrip-predictions", tasks=[task_name], predictions={task_name: "forecasts.zarr"})
    root.mkdir()
    if forecasts.exists():
        shutil.move(forecasts, root / "forecasts.zarr")
    (root / "submission.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return root


@pytest.mark.parametrize("task_name", TASKS)
def test_predictions_file_scores_exactly_as_the_code(prepared, tmp_path, task_name):
    forecasts = tmp_path / "forecasts.zarr"
    result = CliRunner().invoke(cli, ["predict", str(EXAMPLE_CODE), "--task", task_name, "--data", str(prepared),
                                      "--out", str(forecasts), "--quiet", "--batch-size", "16"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"wrote {forecasts}"
    written = xr.open_zarr(forecasts)
    assert set(written.dims) == {"time", "prediction_timedelta", "latitude", "longitude"} | ({"level"} if "multivar" in task_name else set())
    assert written.attrs["submission"] == "example-code" and written.attrs["task"] == task_name

    predictions = predictions_copy(tmp_path / "predictions", task_name, forecasts)
    report = validate(predictions, prepared)
    assert report.ok, report.problems

    settings = EvaluationSettings(data_dir=prepared, batch_size=32, progress=False)
    from_code, code_path = evaluate(EXAMPLE_CODE, task_name, settings, tmp_path / "results")
    from_file, file_path = evaluate(predictions, task_name, settings, tmp_path / "results")
    assert from_file.metrics == from_code.metrics
    assert from_file.error_maps == from_code.error_maps
    assert from_file.data == from_code.data
    assert Results.read(file_path).metrics == Results.read(code_path).metrics
    assert code_path == results_path(tmp_path / "results", task_name, "example-code")
    assert file_path == results_path(tmp_path / "results", task_name, "roundtrip-predictions")


def test_example_code_beats_persistence_at_24h(prepared, tmp_path):
    settings = EvaluationSettings(data_dir=prepared, progress=False)
    example, _ = evaluate(EXAMPLE_CODE, "era5-64x32-12to4-t2m", settings, tmp_path)
    persistence, _ = evaluate(PROJECT_ROOT / "baselines" / "persistence", "era5-64x32-12to4-t2m", settings, tmp_path)
    assert example.metric("2m_temperature", "rmse")[-1] < persistence.metric("2m_temperature", "rmse")[-1]
    assert example.submission["parameters"] == 4


def test_predict_refuses_a_predictions_submission(prepared, tmp_path):
    predictions = predictions_copy(tmp_path / "predictions", TASKS[0], tmp_path / "absent.zarr")
    result = CliRunner().invoke(cli, ["predict", str(predictions), "--task", TASKS[0], "--data", str(prepared),
                                      "--out", str(tmp_path / "out.zarr"), "--quiet"])
    assert result.exit_code == 2
    assert "error: SubmissionError: roundtrip-predictions is a predictions submission; bench predict runs code submissions" in result.stderr
    assert not (tmp_path / "out.zarr").exists()
