"""The frozen task spec (fingerprint, drift refusal) and window indexing (no leaks)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from importlib import resources

from click.testing import CliRunner

from bench.cli import cli
from bench.errors import SpecDriftError, TaskSpecError
from bench.task import DEFAULT_TASK, FROZEN_FINGERPRINTS, load_task, read_task, task_names
from bench.windows import split_init_times, window_positions

FULL_TIMES = pd.date_range("2015-01-01", "2020-12-31T18", freq="6h")


def test_frozen_tasks_load_with_their_fingerprints_and_the_issue_spec():
    for name in task_names():
        spec = load_task(name)
        assert spec.fingerprint == FROZEN_FINGERPRINTS[name]
        assert spec.grid.shape == (32, 64)
        np.testing.assert_allclose(spec.grid.longitude.values[[0, -1]], [0.0, 354.375])
        np.testing.assert_allclose(spec.grid.latitude.values[[0, -1]], [-87.1875, 87.1875])
        assert spec.lead_hours == [6, 12, 18, 24]
        assert list(spec.input_offsets() / pd.Timedelta(hours=1)) == list(range(-66, 1, 6))
    multivar = load_task("era5-64x32-12to4-multivar")
    assert multivar.channel_keys == ["2m_temperature", "geopotential_500", "temperature_850",
                                     "10m_u_component_of_wind", "10m_v_component_of_wind"]


def test_a_modified_spec_is_refused_with_a_clear_message(tmp_path):
    original = read_task(DEFAULT_TASK)
    path = tmp_path / "drifted.yaml"
    source = (resources.files("bench") / "tasks" / "era5_64x32_12to4_t2m.yaml").read_text()
    path.write_text(source.replace("output_steps: 4", "output_steps: 8"))
    with pytest.raises(SpecDriftError, match="was modified.*git checkout bench/tasks"):
        load_task(path)
    # A cosmetic change (comments, whitespace) keeps the fingerprint.
    path.write_text("# a comment\n" + source)
    assert load_task(path).fingerprint == original.fingerprint


def test_an_unknown_task_is_refused():
    with pytest.raises(TaskSpecError, match="frozen tasks are"):
        load_task("era5-64x32-12to4-nonsense")


def test_cli_refuses_spec_drift_in_one_line_without_traceback(tmp_path):
    source = (resources.files("bench") / "tasks" / "era5_64x32_12to4_t2m.yaml").read_text()
    drifted = tmp_path / "drifted.yaml"
    drifted.write_text(source.replace('first: "2020-01-01"', 'first: "2020-02-01"'))
    result = CliRunner().invoke(cli, ["evaluate", "baselines/persistence", "--task", str(drifted), "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "SpecDriftError" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_test_split_has_1461_init_times_reaching_back_into_2019_with_targets_in_2020():
    task = load_task()
    init = split_init_times(task, FULL_TIMES, task.splits["test"])
    assert len(init) == 1461
    assert init[0] == pd.Timestamp("2019-12-31T18") and init[-1] == pd.Timestamp("2020-12-30T18")
    pos = window_positions(task, FULL_TIMES, init)
    targets, inputs = FULL_TIMES[pos.targets.ravel()], FULL_TIMES[pos.inputs.ravel()]
    assert targets.min() == pd.Timestamp("2020-01-01") and targets.max() == pd.Timestamp("2020-12-31T18")
    assert inputs.min() < pd.Timestamp("2020-01-01")  # inputs may reach back into 2019


def test_no_target_leaks_into_inputs_and_no_split_sees_another_splits_targets():
    task = load_task()
    for name, split in task.splits.items():
        init = split_init_times(task, FULL_TIMES, split)
        pos = window_positions(task, FULL_TIMES, init)
        assert (pos.inputs.max(axis=1) < pos.targets.min(axis=1)).all(), name
        assert (np.diff(pos.inputs, axis=1) == 1).all() and (np.diff(pos.targets, axis=1) == 1).all()
        assert (pos.targets[:, 0] == pos.inputs[:, -1] + 1).all()
        targets = FULL_TIMES[pos.targets.ravel()]
        assert targets.min() >= split.first_time and targets.max() <= split.last_time, name
    train = split_init_times(task, FULL_TIMES, task.splits["train"])
    assert train[0] == pd.Timestamp("2015-01-03T18")  # the first init time with 12 inputs
    assert window_positions(task, FULL_TIMES, train[-1:]).targets.max() < FULL_TIMES.get_loc(pd.Timestamp("2019-01-01"))


def test_windows_crossing_a_gap_are_dropped():
    task = load_task()
    times = FULL_TIMES[(FULL_TIMES < "2020-03-01") | (FULL_TIMES >= "2020-03-05")]
    init = split_init_times(task, times, task.splits["test"])
    # A 16-step gap removes every window whose 16 steps (t0-66h .. t0+24h) touch it: 16 + 15 of them.
    assert len(init) == 1461 - 31
    pos = window_positions(task, times, init)
    assert (pos.inputs >= 0).all() and (pos.targets >= 0).all()
