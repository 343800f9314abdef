"""Code submissions run isolated: every way a model can fail ends the run with a named error,
a one-line CLI message (exit code 2) and no results or forecasts file."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.errors import SubmissionTimeoutError, TargetAccessError
from bench.evaluate import EvaluationSettings, evaluate
from bench.sandbox import SandboxLimits

HEADER = "import numpy as np\n\n\n"

# The model body is the predict method of a persistence-like model; the context is self.context.
MODEL = HEADER + '''class Model:
    def __init__(self, context):
        self.context = context
{build}
    def predict(self, inputs, batch):
        forecast = np.repeat(inputs[:, -1:], 4, axis=1)
{predict}
        return forecast


def build_model(context):
    return Model(context)
'''


def model_source(predict: str = "", build: str = "") -> str:
    """A persistence model with extra lines run in ``__init__`` and in ``predict`` (before return)."""

    def indent(text: str) -> str:
        return "".join(f"        {line}\n" for line in text.strip().splitlines())

    return MODEL.format(build=indent(build), predict=indent(predict))


def run_cli(*args: str):
    """Invoke ``bench`` in-process; returns click's Result (stdout and stderr kept apart)."""
    return CliRunner().invoke(cli, [str(a) for a in args])


def evaluate_cli(submission: Path, prepared: Path, out: Path, *options: str):
    return run_cli("evaluate", submission, "--data", prepared, "--out", out, "--quiet", *options)


def assert_failed_cleanly(result, out: Path, error: str, fragment: str) -> None:
    """One ``error: NAME: message`` line, exit code 2, no traceback, nothing under ``out``."""
    assert result.exit_code == 2, result.output
    assert f"error: {error}: " in result.stderr
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


# Each case: (id, predict lines, build lines, extra CLI options, error name, message fragment).
FAILURES = [
    ("exit", "import os; os._exit(3)", "", (), "SubmissionCrashedError", "died while predicting (exit code 3)"),
    ("segfault", "import ctypes; ctypes.string_at(0)", "", (), "SubmissionCrashedError", "signal 11"),
    ("raise-in-build", "", "raise RuntimeError('no weights found')", (), "SubmissionCrashedError",
     "raised RuntimeError while building the model: no weights found"),
    ("raise-in-predict", "raise ValueError('bad batch')", "", (), "SubmissionCrashedError",
     "raised ValueError while predicting: bad batch"),
    # The limit covers the whole run, so on a slow machine the model may still be building at 3 s.
    ("hang", "import time; time.sleep(600)", "", ("--time-limit", "3"), "SubmissionTimeoutError",
     "after the 3 s time limit; make the model faster or raise --time-limit"),
    ("memory-blow-up", "blocks = [np.ones(2**23) for _ in range(1024)]", "", ("--memory-limit", "400"),
     "SubmissionMemoryError", "over the 400 MiB limit"),
    ("memory-error", "np.empty(2**40)", "", (), "SubmissionMemoryError", "ran out of memory (MemoryError) while predicting"),
    ("wrong-shape", "forecast = forecast[:, :2]", "", (), "OutputShapeError",
     "forecast has shape (1, 2, 1, 32, 64), expected (1, 4, 1, 32, 64)"),
    ("nan", "forecast[0, 0, 0, 0, 0] = np.nan", "", (), "NonFiniteOutputError", "1 NaN/inf values"),
    ("inf", "forecast[0, 2, 0, 5, 5] = np.inf", "", (), "NonFiniteOutputError", "1 NaN/inf values"),
    ("celsius", "forecast = forecast - 273.15", "", (), "OutputUnitsError",
     "it looks like degrees Celsius: add 273.15 to get kelvin"),
    ("float16", "forecast = forecast.astype(np.float16)", "", (), "OutputDtypeError", "forecast dtype is float16"),
    ("int", "forecast = forecast.astype(np.int32)", "", (), "OutputDtypeError", "forecast dtype is int32"),
]


@pytest.mark.parametrize("predict, build, options, error, fragment", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failing_model_ends_run_with_named_error_and_no_results(make_submission, prepared, tmp_path, predict, build, options, error, fragment):
    submission = make_submission(model_source(predict, build))
    out = tmp_path / "results"
    result = evaluate_cli(submission, prepared, out, *options)
    assert_failed_cleanly(result, out, error, fragment)


def test_hang_while_building_is_timed_out(make_submission, prepared, tmp_path):
    submission = make_submission(model_source(build="import time; time.sleep(600)"))
    settings = EvaluationSettings(data_dir=prepared, limits=SandboxLimits(time_limit_s=3), progress=False)
    with pytest.raises(SubmissionTimeoutError, match="still building the model after the 3 s time limit"):
        evaluate(submission, "era5-64x32-12to4-t2m", settings, tmp_path / "results")
    assert not (tmp_path / "results").exists()


# Ways to reach the targets. The model is not told where the data is; here the paths are written
# into its code (as a model that guessed them would).
TARGET_READS = [
    ("open-swallowed", "import pathlib\ndata_dir = pathlib.Path({data!r})\n"
     "try:\n    open(data_dir / 'manifest.json').read()\nexcept OSError:\n    pass", "manifest.json"),
    ("open-zarr", "import xarray\nxarray.open_zarr({data!r} + '/data.zarr')", "data.zarr"),
    ("list-store", "import os\nos.listdir({store!r})", "wb2.zarr"),
    ("subprocess", "import subprocess\nsubprocess.run(['cat', {store!r} + '/.zmetadata'], capture_output=True)", "wb2.zarr"),
]


@pytest.mark.parametrize("code, fragment", [t[1:] for t in TARGET_READS], ids=[t[0] for t in TARGET_READS])
def test_reading_targets_while_predicting_is_refused(make_submission, prepared, wb2_store, tmp_path, code, fragment):
    submission = make_submission(model_source(predict=code.format(store=str(wb2_store), data=str(prepared))))
    out = tmp_path / "results"
    result = evaluate_cli(submission, prepared, out)
    assert_failed_cleanly(result, out, "TargetAccessError", "while predicting; submissions get inputs through the harness")
    assert fragment in result.stderr


def test_reading_targets_while_building_is_refused(make_submission, prepared, tmp_path):
    code = f"import pathlib\nself.cheat = pathlib.Path({str(prepared)!r}).joinpath('stats.json').read_text()"
    submission = make_submission(model_source(build=code))
    settings = EvaluationSettings(data_dir=prepared, progress=False)
    with pytest.raises(TargetAccessError, match=r"tried to read .*stats\.json while building the model"):
        evaluate(submission, "era5-64x32-12to4-t2m", settings, tmp_path / "results")
    assert not (tmp_path / "results").exists()


def test_failed_predict_leaves_no_forecasts_file(make_submission, prepared, tmp_path):
    submission = make_submission(model_source(predict="raise ValueError('bad batch')"))
    out_dir = tmp_path / "forecasts"
    result = run_cli("predict", submission, "--data", prepared, "--out", out_dir / "forecasts.zarr", "--quiet", "--batch-size", "16")
    assert_failed_cleanly(result, out_dir, "SubmissionCrashedError", "raised ValueError while predicting: bad batch")


def test_validate_reports_a_crashing_model_as_a_problem(make_submission, prepared):
    submission = make_submission(model_source(predict="forecast = forecast - 273.15"))
    result = run_cli("validate", submission, "--data", prepared)
    assert result.exit_code == 1
    assert "problem: era5-64x32-12to4-t2m: OutputUnitsError:" in result.output
    assert "degrees Celsius" in result.output
