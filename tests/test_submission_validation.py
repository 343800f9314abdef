"""`bench validate` names every problem of a submission with its fix, and `bench evaluate`
refuses the same submission without writing a results file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from click.testing import CliRunner

from bench.cli import cli
from bench.dataset import PreparedData
from bench.forecasts import forecast_dataset
from bench.task import load_task
from bench.validation import validate

PROJECT_ROOT = Path(__file__).resolve().parents[1]
T2M = "era5-64x32-12to4-t2m"
MANIFEST = {
    "name": "probe", "kind": "code", "track": "deterministic", "tasks": [T2M], "authors": ["Tester"],
    "description": "a test model", "license": "MIT", "entry_point": "model.py:build_model",
}
PERSISTENCE = (PROJECT_ROOT / "baselines" / "persistence" / "model.py").read_text()


def write_submission(root: Path, **fields) -> Path:
    """A submission directory with MANIFEST updated by ``fields`` (None removes a field)."""
    manifest = {k: v for k, v in {**MANIFEST, **fields}.items() if v is not None}
    root.mkdir(parents=True)
    (root / "submission.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    (root / "model.py").write_text(PERSISTENCE)
    return root


def run_cli(*args) -> object:
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_evaluate_refuses(submission: Path, data: Path, tmp_path: Path, error: str, fragment: str) -> None:
    """``bench evaluate`` fails with one named error line and writes nothing."""
    out = tmp_path / "results"
    result = run_cli("evaluate", submission, "--data", data, "--out", out, "--quiet")
    assert result.exit_code == 2, result.output
    assert f"error: {error}: " in result.stderr and fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


# ---- submission.yaml -----------------------------------------------------------------------

MANIFEST_PROBLEMS = [
    ("missing-field", {"license": None}, "missing field 'license': add it to submission.yaml"),
    ("typo-field", {"licence": "MIT"}, "unknown field 'licence' (did you mean 'license'?)"),
    ("extra-field", {"gpu_hours": 3}, "unknown field 'gpu_hours'; allowed: name, kind"),
    ("wrong-track", {"track": "determinstic"}, "track 'determinstic' is not one of ('deterministic', 'probabilistic', 'codec')"),
    ("wrong-kind", {"kind": "model"}, "kind 'model' is not one of ('code', 'predictions', 'mean')"),
    ("unknown-task", {"tasks": ["era5-64x32-t2m"]}, "unknown task 'era5-64x32-t2m'; tasks are"),
    ("bad-name", {"name": "My Model"}, "name 'My Model' must be 2-64 lowercase letters"),
    ("no-entry-point", {"entry_point": None}, "a code submission needs entry_point: FILE.py:FUNCTION"),
    ("no-predictions", {"kind": "predictions", "entry_point": None}, "a predictions submission needs predictions: {TASK_NAME: PATH}"),
    ("baseline-name", {"name": "persistence"}, "name 'persistence' collides with the baseline in"),
]


@pytest.mark.parametrize("fields, fragment", [p[1:] for p in MANIFEST_PROBLEMS], ids=[p[0] for p in MANIFEST_PROBLEMS])
def test_manifest_problem_is_named_and_blocks_evaluation(tmp_path, prepared, fields, fragment):
    submission = write_submission(tmp_path / "sub", **fields)
    report = validate(submission, None)
    assert not report.ok and any(fragment in p for p in report.problems), report.problems
    result = run_cli("validate", submission, "--no-data")
    assert result.exit_code == 1 and "problem: " in result.output and fragment in result.output
    assert_evaluate_refuses(submission, prepared, tmp_path, "SubmissionError", fragment)


def test_every_manifest_problem_is_listed_at_once(tmp_path):
    submission = write_submission(tmp_path / "sub", license=None, track="best", licence="MIT")
    problems = validate(submission, None).problems
    assert len(problems) == 3, problems


def test_duplicate_names_among_submissions_are_reported_for_each(tmp_path):
    project = tmp_path / "project"
    first = write_submission(project / "submissions" / "first", name="twin")
    second = write_submission(project / "submissions" / "second", name="twin")
    write_submission(project / "baselines" / "persistence", name="persistence")
    for one, other in ((first, second), (second, first)):
        problems = validate(one, None, project_root=project).problems
        assert problems == [f"name 'twin' duplicates the submission in {other.resolve()}; choose a unique name"]
    assert validate(project / "baselines" / "persistence", None, project_root=project).ok


def test_duplicate_of_a_committed_submission_is_not_evaluated(tmp_path, prepared):
    submission = write_submission(tmp_path / "sub", name="example-code")
    assert_evaluate_refuses(submission, prepared, tmp_path, "SubmissionError", "name 'example-code' duplicates the submission in")


def test_a_forecaster_declared_as_a_codec_is_refused_by_the_codec_contract(tmp_path, prepared):
    submission = write_submission(tmp_path / "sub", track="codec")
    assert_evaluate_refuses(submission, prepared, tmp_path, "CodecContractError", "must return an object with encode(fields), decode(latents)")


def test_example_submissions_pass_the_static_checks():
    assert validate(PROJECT_ROOT / "submissions" / "example_code", None).ok
    raw = yaml.safe_load((PROJECT_ROOT / "submissions" / "example_predictions" / "submission.yaml").read_text())
    assert raw["kind"] == "predictions" and raw["predictions"] == {T2M: "forecasts.zarr"}


# ---- predictions files -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_forecast(prepared) -> xr.Dataset:
    """Persistence forecasts for every test init time of the prepared data, in WB2's native layout."""
    task = load_task(T2M)
    data = PreparedData(prepared, task)
    init_times = data.init_times("test")
    forecasts = np.repeat(data.inputs(init_times)[:, -1:], task.output_steps, axis=1)
    return forecast_dataset(task, init_times, forecasts)


def predictions_submission(root: Path, forecast: xr.Dataset, file_name: str = "forecasts.zarr", **fields) -> Path:
    """A predictions submission whose file holds ``forecast``."""
    fields = {"kind": "predictions", "entry_point": None, "predictions": {T2M: file_name}, **fields}
    submission = write_submission(root, **fields)
    if file_name.endswith(".nc"):
        forecast.to_netcdf(submission / file_name)
    else:
        forecast.to_zarr(submission / file_name, mode="w", zarr_format=2)
    return submission


def with_value(ds: xr.Dataset, value: float) -> xr.Dataset:
    field = ds["2m_temperature"].copy()
    field[3, 2, 10, 20] = value
    return ds.assign({"2m_temperature": field})


BAD_FILES = [
    ("wrong-grid", lambda ds: ds.isel(latitude=slice(None, None, 2), longitude=slice(None, None, 2)),
     "PredictionsFileError", "on a 32x16 (lon x lat) grid spanning latitude -87.1875..81.5625"),
    ("shifted-longitude", lambda ds: ds.assign_coords(longitude=ds.longitude - 180.0),
     "PredictionsFileError", "the task's 64x32_equiangular_conservative grid is latitude -87.1875..87.1875"),
    ("missing-lead", lambda ds: ds.isel(prediction_timedelta=slice(0, 3)),
     "PredictionsFileError", "predictions lack lead times [24] h"),
    ("missing-init-times", lambda ds: ds.isel(time=slice(0, -5)),
     "PredictionsFileError", "predictions lack 5 of 45 test init times (first missing 2020-01-10 18:00:00); forecast every init time"),
    ("duplicate-init-times", lambda ds: xr.concat([ds, ds.isel(time=[0])], dim="time"),
     "PredictionsFileError", "predictions repeat init times"),
    ("nan", lambda ds: with_value(ds, np.nan), "NonFiniteOutputError", "forecast has 1 NaN/inf values"),
    ("inf", lambda ds: with_value(ds, -np.inf), "NonFiniteOutputError", "forecast has 1 NaN/inf values"),
    ("celsius", lambda ds: ds - 273.15, "OutputUnitsError", "it looks like degrees Celsius: add 273.15 to get kelvin"),
    ("int-dtype", lambda ds: ds.round().astype(np.int16), "OutputDtypeError", "forecast dtype is int16; return float32"),
    ("float16", lambda ds: ds.astype(np.float16), "OutputDtypeError", "forecast dtype is float16"),
    ("ensemble-on-deterministic", lambda ds: ds.expand_dims(number=[0, 1], axis=1),
     "PredictionsFileError", "track 'deterministic' must not have an ensemble dimension; use track: probabilistic"),
    ("wrong-variable-name", lambda ds: ds.rename({"2m_temperature": "t2m"}),
     "PredictionsFileError", "has no variable '2m_temperature' (it has ['t2m']); name variables as WB2 does"),
    ("no-lead-dim", lambda ds: ds.isel(prediction_timedelta=0, drop=True),
     "PredictionsFileError", "has no 'lead_time' dimension"),
]


@pytest.mark.parametrize("mutate, error, fragment", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_predictions_file_is_named_and_not_scored(tmp_path, prepared, good_forecast, mutate, error, fragment):
    submission = predictions_submission(tmp_path / "sub", mutate(good_forecast))
    report = validate(submission, prepared)
    assert report.problems == [report.problems[0]] and f"{T2M}: {error}: " in report.problems[0], report.problems
    assert fragment in report.problems[0], report.problems
    assert_evaluate_refuses(submission, prepared, tmp_path, error, fragment)


def test_probabilistic_track_without_ensemble_is_refused(tmp_path, prepared, good_forecast):
    submission = predictions_submission(tmp_path / "sub", good_forecast, track="probabilistic")
    fragment = "track 'probabilistic' needs an ensemble dimension 'number'"
    assert any(fragment in p for p in validate(submission, prepared).problems)
    assert_evaluate_refuses(submission, prepared, tmp_path, "PredictionsFileError", fragment)


def test_missing_predictions_file_is_named_with_the_command_that_writes_it(tmp_path, prepared):
    submission = write_submission(tmp_path / "sub", kind="predictions", entry_point=None, predictions={T2M: "forecasts.zarr"})
    fragment = f"predictions file {submission / 'forecasts.zarr'} for {T2M} does not exist; write it (e.g. bench predict"
    assert any(fragment in p for p in validate(submission, None).problems)
    assert_evaluate_refuses(submission, prepared, tmp_path, "PredictionsFileError", "does not exist; write it (bench predict")


def with_extras(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with an init time before the test split and leads past 24 h, as WB2 files have."""
    six_hours = np.timedelta64(6, "h")
    earlier = ds.isel(time=[0]).assign_coords(time=ds.time.values[:1] - six_hours)
    ds = xr.concat([earlier, ds], dim="time")
    later = ds.assign_coords(prediction_timedelta=ds.prediction_timedelta.values + 4 * six_hours)
    return xr.concat([ds, later], dim="prediction_timedelta")


ACCEPTED = [
    ("wb2-native", lambda ds: ds, {}, "forecasts.zarr"),
    ("init-lead-spelling", lambda ds: ds.rename(time="init_time", prediction_timedelta="lead_time"), {}, "forecasts.zarr"),
    ("lead-in-hours", lambda ds: ds.assign_coords(prediction_timedelta=[6, 12, 18, 24]), {}, "forecasts.zarr"),
    ("descending-latitude", lambda ds: ds.isel(latitude=slice(None, None, -1)), {}, "forecasts.zarr"),
    ("extra-leads-and-init-times", lambda ds: with_extras(ds), {}, "forecasts.zarr"),
    ("netcdf", lambda ds: ds, {}, "forecasts.nc"),
    ("member-on-probabilistic", lambda ds: ds.expand_dims(member=[0, 1], axis=1), {"track": "probabilistic"}, "forecasts.zarr"),
    ("number-on-probabilistic", lambda ds: ds.expand_dims(number=[0, 1, 2], axis=1), {"track": "probabilistic"}, "forecasts.zarr"),
]


@pytest.mark.parametrize("mutate, fields, file_name", [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_wb2_forecast_layouts_are_accepted(tmp_path, prepared, good_forecast, mutate, fields, file_name):
    submission = predictions_submission(tmp_path / "sub", mutate(good_forecast), file_name, **fields)
    report = validate(submission, prepared)
    assert report.ok, report.problems
    assert f"{T2M}: predictions cover every test init time and pass every check" in report.checked


def test_validate_cli_prints_each_check_and_valid(tmp_path, prepared, good_forecast):
    submission = predictions_submission(tmp_path / "sub", good_forecast.rename(time="init_time", prediction_timedelta="lead_time"))
    result = run_cli("validate", submission, "--data", prepared)
    assert result.exit_code == 0, result.output
    assert "ok: submission.yaml fields" in result.output and result.output.strip().endswith(f"{submission}: valid")
