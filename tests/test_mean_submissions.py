"""Multi-model means (kind: mean): the harness runs each member isolated and averages; members are chosen on validation."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.errors import SubmissionError
from bench.evaluate import EvaluationSettings, score
from bench.mean_selection import SELECTION_DIR, select_members, write_selection
from bench.submission import load_submission
from bench.task import load_task

T2M = "era5-64x32-12to4-t2m"
SHIFTED = ("import numpy as np\nclass M:\n    def predict(self, inputs, batch):\n"
           "        return np.repeat(inputs[:, -1:], 4, axis=1) + {shift}\n\ndef build_model(context):\n    return M()\n")


def _mean(root: Path, members, name: str = "the-mean", **extra) -> Path:
    root.mkdir()
    lines = [f"name: {name}", "kind: mean", "track: deterministic", f"tasks: [{T2M}]", "authors: [Tester]",
             "description: a mean", "license: MIT", f"members: {json.dumps({T2M: members})}"]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    (root / "submission.yaml").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture()
def members(make_submission):
    return [make_submission(SHIFTED.format(shift=s), name=f"shift{i}") for i, s in enumerate((0.0, 1.0, 3.0))]


def _bias(results) -> np.ndarray:
    return np.array(results.metrics["2m_temperature"]["physical"]["bias"])


def test_a_mean_scores_the_average_of_its_members_forecasts(members, prepared, tmp_path):
    settings = EvaluationSettings(data_dir=prepared, batch_size=16, progress=False)
    task = load_task(T2M)
    biases = [_bias(score(load_submission(m), task, settings)) for m in members]
    mean = load_submission(_mean(tmp_path / "the_mean", [m.name for m in members]))
    results = score(mean, task, settings)
    np.testing.assert_allclose(_bias(results), np.mean(biases, axis=0), atol=1e-4)
    np.testing.assert_allclose(_bias(results) - biases[0], 4.0 / 3.0, atol=1e-4)  # shifts 0, 1, 3 K
    assert results.submission["kind"] == "mean" and results.submission["members"] == {T2M: ["shift0", "shift1", "shift2"]}
    assert results.provenance["isolation"] == score(load_submission(members[0]), task, settings).provenance["isolation"]


@pytest.mark.parametrize("members_field, extra, fragment", [
    (None, {}, "a mean needs members: {TASK_NAME: [MEMBER_DIR"),
    (["shift0"], {}, "must be at least two different submissions"),
    (["shift0", "../shift1"], {}, "must be a directory name (no path)"),
    (["shift0", "nowhere"], {}, "member 'nowhere' of 'era5-64x32-12to4-t2m' has no submission.yaml"),
    (["shift0", "shift1"], {"entry_point": "model.py:build_model"}, "drop entry_point and predictions"),
    (["shift0", "shift1"], {"track": "probabilistic"}, "use track: deterministic"),
])
def test_a_malformed_mean_is_refused_with_the_fix(members, tmp_path, members_field, extra, fragment):
    root = tmp_path / "bad_mean"
    if members_field is None:
        root.mkdir()
        (root / "submission.yaml").write_text(f"name: bad-mean\nkind: mean\ntrack: deterministic\ntasks: [{T2M}]\n"
                                              "authors: [Tester]\ndescription: d\nlicense: MIT\n")
    else:
        track = extra.pop("track", None)
        _mean(root, members_field, name="bad-mean", **extra)
        if track:
            text = (root / "submission.yaml").read_text().replace("track: deterministic", f"track: {track}")
            (root / "submission.yaml").write_text(text)
    with pytest.raises(SubmissionError) as info:
        load_submission(root)
    assert fragment in str(info.value)


def test_members_belong_to_means_only(members):
    text = (members[0] / "submission.yaml").read_text() + f"members: {{{T2M}: [shift1, shift2]}}\n"
    (members[0] / "submission.yaml").write_text(text)
    with pytest.raises(SubmissionError, match="members applies to kind: mean only"):
        load_submission(members[0])


def test_a_mean_of_means_is_refused_when_run(members, prepared, tmp_path):
    _mean(tmp_path / "inner", ["shift0", "shift1"], name="inner")
    outer = load_submission(_mean(tmp_path / "outer", ["inner", "shift2"], name="outer"))
    with pytest.raises(SubmissionError, match="members are deterministic code or predictions submissions"):
        score(outer, load_task(T2M), EvaluationSettings(data_dir=prepared, batch_size=16, progress=False))


def test_members_are_chosen_on_validation_and_the_table_is_written(members, prepared, tmp_path):
    settings = EvaluationSettings(data_dir=prepared, batch_size=16, progress=False)
    rows = select_members(members, T2M, settings)
    assert len(rows) == 7  # 3 singles, 3 pairs, 1 triple
    assert rows[0].members == ("shift0",)  # unbiased persistence beats any mean with a warm bias
    scores = [r.score for r in rows]
    assert scores == sorted(scores)
    path = write_selection(tmp_path / "the_mean", T2M, rows, "abc")
    table = json.loads(path.read_text())
    assert table["split"] == "validation" and table["rows"][0]["members"] == ["shift0"]


def test_select_members_cli_reads_validation_windows_only(members, prepared, tmp_path, monkeypatch):
    from bench import dataset

    seen = []
    original = dataset.PreparedData.targets
    monkeypatch.setattr(dataset.PreparedData, "targets", lambda self, t: seen.append(t) or original(self, t))
    mean = _mean(tmp_path / "the_mean", ["shift0", "shift1"])
    result = CliRunner().invoke(cli, ["select-members", str(mean), *map(str, members[:2]), "--task", T2M,
                                      "--data", str(prepared), "--quiet"])
    assert result.exit_code == 0, result.output
    assert (mean / "selection" / f"{T2M}.json").is_file()
    from bench.dataset import valid_times

    last = max(valid_times(load_task(T2M), batch).max() for batch in seen)
    assert seen and last <= np.datetime64("2019-12-31T18:00")  # no target of the test year is read


def test_validate_runs_one_batch_of_every_member(members, prepared, tmp_path):
    from bench.validation import validate

    report = validate(_mean(tmp_path / "the_mean", [m.name for m in members]), prepared,
                      EvaluationSettings(data_dir=prepared, batch_size=4, progress=False))
    assert report.ok, report.problems
    assert any("members built, each in its sandbox, one batch of forecasts checked" in line for line in report.checked)


def test_the_card_of_a_mean_shows_its_members_and_the_validation_table(members, prepared, tmp_path):
    from bench.model_card import render_card

    mean = _mean(tmp_path / "the_mean", ["shift1", "shift2"])
    rows = select_members(members[1:], T2M, EvaluationSettings(data_dir=prepared, batch_size=16, progress=False))
    write_selection(mean, T2M, rows, "abc")
    card = render_card(mean, tmp_path / "no-results")
    assert "Members: [shift1](../shift1), [shift2](../shift2)." in card
    assert "the members above rank 2 of 3" in card  # shift1 alone is better than the mean of shifts 1 and 3 K
    assert "| 1 | shift1 |" in card


def test_the_committed_mean_uses_the_members_its_committed_selection_chose():
    """baselines/multi_model_mean: after a candidate retrains, re-running select-members must also update the members."""
    root = Path(__file__).resolve().parents[1] / "baselines" / "multi_model_mean"
    declared = load_submission(root).manifest.members
    for task, members in declared.items():
        table = json.loads((root / SELECTION_DIR / f"{task}.json").read_text())
        assert table["split"] == "validation"
        assert set(table["rows"][0]["members"]) == set(members), (task, table["rows"][0]["members"], members)
