"""`bench validate`: every check a submission must pass before scoring, each problem with its fix.

Code submissions are built in the sandbox and run on one batch of validation-split inputs;
predictions files are read in full (init times, leads, grid, dtype, NaN, units) on the test split.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from bench.dataset import PreparedData
from bench.errors import BenchError
from bench.evaluate import EvaluationSettings, ForecastStream
from bench.provenance import PROJECT_ROOT
from bench.submission import MANIFEST_FILE, confined_path, load_submission, name_problems, read_manifest
from bench.task import load_task


@dataclasses.dataclass
class ValidationReport:
    """What ``bench validate`` found: problems (empty when the submission is ready) and checks run."""

    path: Path
    problems: list[str] = dataclasses.field(default_factory=list)
    checked: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def predictions_file_problems(raw: dict, root: Path) -> list[str]:
    """Every local predictions file named in the manifest must exist (checked without data)."""
    problems = []
    predictions = raw.get("predictions") if raw.get("kind") == "predictions" else None
    for task_name, file_name in (predictions or {}).items():
        path = confined_path(root, str(file_name))
        if path is None:
            continue  # reported by the manifest checks
        if not path.exists():
            problems.append(
                f"predictions file {path} for {task_name} does not exist; write it (e.g. bench predict CODE_DIR "
                f"--task {task_name} --out {path}) or fix predictions: in {MANIFEST_FILE}"
            )
    return problems


def validate(
    path: Path | str, data_dir: Path | None, settings: EvaluationSettings | None = None, project_root: Path = PROJECT_ROOT
) -> ValidationReport:
    """Run every check on a submission directory; collect problems instead of stopping at the first."""
    root = Path(path)
    report = ValidationReport(root)
    try:
        raw, problems = read_manifest(root)
    except BenchError as exc:
        report.problems.append(str(exc))
        return report
    report.problems += problems
    if not problems:
        report.checked.append(f"{MANIFEST_FILE} fields")
    if isinstance(raw.get("name"), str):
        clashes = name_problems(raw["name"], root, project_root)
        report.problems += clashes
        if not clashes:
            report.checked.append("name is unique")
    if not problems:
        report.problems += predictions_file_problems(raw, root)
    if report.problems or data_dir is None:
        return report
    submission = load_submission(root, project_root)
    settings = settings or EvaluationSettings(data_dir=data_dir, progress=False)
    for task_name in submission.manifest.tasks:
        try:
            task = load_task(task_name)
            data = PreparedData(data_dir, task)
        except BenchError as exc:
            report.checked.append(f"{task_name}: skipped, data not available ({exc})")
            continue
        try:
            if submission.manifest.track == "codec":
                from bench.codec_eval import check_codec

                n = check_codec(submission, task, data, settings.limits, settings.batch_size)
                report.checked.append(f"{task_name}: encoder and decoder built in the sandbox, {n} fields encoded, passed on and decoded")
            elif submission.manifest.kind in ("code", "mean"):  # a mean: every member runs one batch
                init_times = data.init_times("validation")[: settings.batch_size]
                if len(init_times) == 0:
                    init_times = data.init_times("test")[: settings.batch_size]
                for _ in ForecastStream(submission, task, data, settings)(init_times):
                    pass
                what = "members built, each in its sandbox," if submission.manifest.kind == "mean" else "model built in the sandbox and"
                report.checked.append(f"{task_name}: {what} one batch of forecasts checked")
            else:
                stream = ForecastStream(submission, task, data, settings)
                for _ in stream(data.init_times("test")):
                    pass
                report.checked.append(f"{task_name}: predictions cover every test init time and pass every check")
        except BenchError as exc:
            report.problems.append(f"{task_name}: {type(exc).__name__}: {exc}")
    return report
