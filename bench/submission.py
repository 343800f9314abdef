"""The submission contract: ``submission.yaml`` (the model card) and the model interface.

A code submission's entry point ``FILE.py:FUNCTION`` is called as ``FUNCTION(context)`` and
returns a forecaster with ``predict(inputs, batch) -> forecasts``:
inputs ``(batch, 12, channel, 32, 64)`` in physical units; forecasts ``(batch, 4, channel, 32, 64)``
(deterministic) or ``(batch, members, 4, channel, 32, 64)`` (probabilistic), physical units.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from bench.climatology import climatology_at
from bench.errors import SubmissionError
from bench.normalization import NormStats
from bench.provenance import PROJECT_ROOT
from bench.task import TaskSpec, task_names

MANIFEST_FILE = "submission.yaml"
KINDS = ("code", "predictions")
TRACKS = ("deterministic", "probabilistic", "codec")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
REQUIRED_FIELDS = ("name", "kind", "track", "tasks", "authors", "description", "license")
OPTIONAL_FIELDS = ("code_url", "paper_url", "entry_point", "predictions", "parameters", "training")
TRAINING_FIELDS = ("data", "time", "hardware")


@dataclasses.dataclass(frozen=True)
class SubmissionManifest:
    """The parsed ``submission.yaml``: who made the model, what it is and how to run it."""

    name: str
    kind: str
    track: str
    tasks: tuple[str, ...]
    authors: tuple[str, ...]
    description: str
    license: str
    code_url: str | None = None
    paper_url: str | None = None
    entry_point: str | None = None
    predictions: dict[str, str] | None = None
    parameters: int | None = None
    training: dict[str, str] | None = None

    def model_card(self) -> dict[str, Any]:
        """The manifest as plain data, for results files and the leaderboard."""
        card = dataclasses.asdict(self)
        card["tasks"], card["authors"] = list(self.tasks), list(self.authors)
        return card


@dataclasses.dataclass(frozen=True)
class Submission:
    """A submission directory and its manifest."""

    root: Path
    manifest: SubmissionManifest

    @property
    def name(self) -> str:
        return self.manifest.name


def _problems(raw: dict) -> list[str]:
    """Every problem of a raw manifest, each with its fix."""
    problems = []
    for key in REQUIRED_FIELDS:
        if raw.get(key) in (None, "", []):
            problems.append(f"missing field {key!r}: add it to {MANIFEST_FILE}")
    known = REQUIRED_FIELDS + OPTIONAL_FIELDS
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(known)}"
            problems.append(f"unknown field {key!r}{hint}")
    name = raw.get("name")
    if name is not None and not (isinstance(name, str) and NAME_PATTERN.match(name)):
        problems.append(f"name {name!r} must be 2-64 lowercase letters, digits, '-' or '_'")
    if raw.get("kind") is not None and raw.get("kind") not in KINDS:
        problems.append(f"kind {raw.get('kind')!r} is not one of {KINDS}")
    if raw.get("track") is not None and raw.get("track") not in TRACKS:
        problems.append(f"track {raw.get('track')!r} is not one of {TRACKS}")
    tasks = raw.get("tasks")
    if tasks is not None:
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            problems.append("tasks must be a list of task names")
        else:
            problems += [f"unknown task {t!r}; tasks are {', '.join(task_names())}" for t in tasks if t not in task_names()]
    authors = raw.get("authors")
    if authors is not None and not (isinstance(authors, list) and all(isinstance(a, str) for a in authors)):
        problems.append("authors must be a list of names")
    if raw.get("kind") == "code" and not re.match(r"^[\w./-]+\.py:\w+$", str(raw.get("entry_point", ""))):
        problems.append("a code submission needs entry_point: FILE.py:FUNCTION (e.g. model.py:build_model)")
    if raw.get("kind") == "predictions":
        predictions = raw.get("predictions")
        if not isinstance(predictions, dict) or not predictions:
            problems.append("a predictions submission needs predictions: {TASK_NAME: PATH} (zarr or netCDF)")
        elif isinstance(tasks, list):
            problems += [f"predictions has no file for task {t!r}" for t in tasks if t not in predictions]
    parameters = raw.get("parameters")
    if parameters is not None and not (isinstance(parameters, int) and parameters >= 0):
        problems.append("parameters must be a non-negative integer")
    training = raw.get("training")
    if training is not None:
        if not isinstance(training, dict):
            problems.append(f"training must be a mapping with {TRAINING_FIELDS}")
        else:
            problems += [f"unknown training field {k!r}; allowed: {TRAINING_FIELDS}" for k in training if k not in TRAINING_FIELDS]
    return problems


def read_manifest(root: Path) -> tuple[dict, list[str]]:
    """The raw manifest of a submission directory and its problems (empty when valid)."""
    root = Path(root)
    path = root / MANIFEST_FILE
    if not root.is_dir():
        raise SubmissionError(f"{root} is not a directory; a submission is a directory with {MANIFEST_FILE}")
    if not path.is_file():
        raise SubmissionError(f"{root} has no {MANIFEST_FILE}; see submissions/README.md for its fields")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SubmissionError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SubmissionError(f"{path} must be a mapping of fields")
    return raw, _problems(raw)


def registered_names(folder: Path) -> dict[str, list[Path]]:
    """Submission names declared one level under ``folder`` and the directories declaring each."""
    names: dict[str, list[Path]] = {}
    for path in sorted(Path(folder).glob(f"*/{MANIFEST_FILE}")):
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            names.setdefault(raw["name"], []).append(path.parent.resolve())
    return names


def name_problems(name: str, root: Path, project_root: Path = PROJECT_ROOT) -> list[str]:
    """A name must not collide with a baseline's nor duplicate another submission's (results are keyed by name)."""
    root = Path(root).resolve()
    problems = []
    for other in registered_names(Path(project_root) / "baselines").get(name, []):
        if other != root:
            problems.append(f"name {name!r} collides with the baseline in {other}; choose another name")
    for other in registered_names(Path(project_root) / "submissions").get(name, []):
        if other != root:
            problems.append(f"name {name!r} duplicates the submission in {other}; choose a unique name")
    return problems


def load_submission(root: Path | str, project_root: Path = PROJECT_ROOT) -> Submission:
    """Read and check a submission directory; raise one SubmissionError listing every problem."""
    root = Path(root)
    raw, problems = read_manifest(root)
    if isinstance(raw.get("name"), str):
        problems += name_problems(raw["name"], root, project_root)
    if problems:
        raise SubmissionError(f"{root / MANIFEST_FILE}: " + "; ".join(problems))
    manifest = SubmissionManifest(
        name=raw["name"], kind=raw["kind"], track=raw["track"], tasks=tuple(raw["tasks"]),
        authors=tuple(raw["authors"]), description=" ".join(str(raw["description"]).split()),
        license=str(raw["license"]), code_url=raw.get("code_url"), paper_url=raw.get("paper_url"),
        entry_point=raw.get("entry_point"), predictions=raw.get("predictions"),
        parameters=raw.get("parameters"), training=raw.get("training"),
    )
    return Submission(root.resolve(), manifest)


@dataclasses.dataclass(frozen=True)
class Batch:
    """Times of one batch of windows (no data): init, input and valid times."""

    init_times: np.ndarray  # (batch,) datetime64[ns]
    input_times: np.ndarray  # (batch, input_steps)
    valid_times: np.ndarray  # (batch, output_steps)


@dataclasses.dataclass
class SubmissionContext:
    """What a model may use: the task, train-split statistics and climatology, its own folder."""

    task: TaskSpec
    stats: NormStats
    submission_dir: Path
    climatology_path: Path | None = None
    _climatology: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def load(self) -> None:
        """Read the climatology into memory (done before the model is built)."""
        if self.climatology_path is not None and self._climatology is None:
            from bench.dataset import load_climatology

            self._climatology = load_climatology(self.climatology_path, self.task.channel_keys)

    def climatology(self, times: np.ndarray) -> np.ndarray:
        """Train-split climatology at ``times`` (any shape) -> times.shape + (channel, lat, lon)."""
        self.load()
        if self._climatology is None:
            raise SubmissionError("no climatology was prepared for this evaluation")
        return climatology_at(self._climatology, times, self.task.time_step_hours)


def make_batch(task: TaskSpec, init_times: pd.DatetimeIndex) -> Batch:
    init = pd.DatetimeIndex(init_times).values
    return Batch(
        init_times=init,
        input_times=init[:, None] + task.input_offsets()[None, :].astype("timedelta64[ns]"),
        valid_times=init[:, None] + task.target_offsets()[None, :].astype("timedelta64[ns]"),
    )


class Forecaster(Protocol):
    """What an entry point returns."""

    def predict(self, inputs: np.ndarray, batch: Batch) -> np.ndarray: ...


def build_forecaster(submission: Submission, context: SubmissionContext) -> Forecaster:
    """Import the entry point of a code submission and call it with the context."""
    file_name, function_name = str(submission.manifest.entry_point).split(":")
    path = submission.root / file_name
    if not path.is_file():
        raise SubmissionError(f"entry point file {path} does not exist; fix entry_point in {MANIFEST_FILE}")
    module_name = f"submission_{submission.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(submission.root))
    spec.loader.exec_module(module)
    factory = getattr(module, function_name, None)
    if factory is None:
        raise SubmissionError(f"{path} has no function {function_name!r}; fix entry_point in {MANIFEST_FILE}")
    forecaster = factory(context)
    if not callable(getattr(forecaster, "predict", None)):
        raise SubmissionError(f"{function_name}() must return an object with predict(inputs, batch)")
    return forecaster


def count_parameters(forecaster: Any) -> int | None:
    """Trainable parameters of a forecaster: its own count, torch's, or None if it has none."""
    counter = getattr(forecaster, "num_parameters", None)
    if callable(counter):
        return int(counter())
    parameters = getattr(forecaster, "parameters", None)
    if callable(parameters):
        return int(sum(p.numel() for p in parameters()))
    return None
