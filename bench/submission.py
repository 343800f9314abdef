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
import json
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
KINDS = ("code", "predictions", "mean")  # mean: the harness averages member submissions' forecasts
TRACKS = ("deterministic", "probabilistic", "codec")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{1,63}$")
REQUIRED_FIELDS = ("name", "kind", "track", "tasks", "authors", "description", "license")
OPTIONAL_FIELDS = ("code_url", "paper_url", "entry_point", "predictions", "parameters", "training", "needs", "members")
MEMBER_PATTERN = re.compile(r"^[A-Za-z0-9][\w.-]{0,127}$")  # a member is named by its directory, never by a path
# What a code submission may ask the harness for beyond the task, statistics and climatology.
NEEDS = ("train_fields",)  # the train-split fields (e.g. a climatological or analogue ensemble); never the test year
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
    needs: tuple[str, ...] = ()
    members: dict[str, list[str]] | None = None  # kind mean: task -> member directories

    def model_card(self) -> dict[str, Any]:
        """The manifest as plain data, for results files and the leaderboard."""
        card = dataclasses.asdict(self)
        card["tasks"], card["authors"] = list(self.tasks), list(self.authors)
        card["needs"] = list(self.needs)
        if not self.needs:
            del card["needs"]  # results of submissions that ask for nothing extra keep their shape
        if self.members is None:
            del card["members"]  # likewise for every kind but mean
        return card


@dataclasses.dataclass(frozen=True)
class Submission:
    """A submission directory and its manifest."""

    root: Path
    manifest: SubmissionManifest

    @property
    def name(self) -> str:
        return self.manifest.name


MAX_MANIFEST_BYTES = 64 * 1024
MAX_TEXT = {"description": 5000, "license": 100, "code_url": 500, "paper_url": 500}
MAX_AUTHORS, MAX_NAME_TEXT = 100, 200
MAX_PARAMETERS = 10**13


class NoAliasLoader(yaml.SafeLoader):
    """YAML's safe loader without anchors and aliases: a 'billion laughs' manifest is refused, not expanded."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.events.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in submission.yaml", event.start_mark)
        node = super().compose_node(parent, index)
        if getattr(node, "anchor", None) is not None:
            raise yaml.composer.ComposerError(None, None, "anchors (&name) are not allowed in submission.yaml", node.start_mark)
        return node


def parse_manifest(path: Path) -> Any:
    """The YAML of ``path``: at most MAX_MANIFEST_BYTES, no aliases; SubmissionError naming the problem."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise SubmissionError(f"{path} cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise SubmissionError(f"{path} is over {MAX_MANIFEST_BYTES // 1024} KiB; a model card is a few lines")
    try:
        return yaml.load(data.decode("utf-8"), Loader=NoAliasLoader)  # noqa: S506 - a safe loader without aliases
    except UnicodeDecodeError as exc:
        raise SubmissionError(f"{path} is not UTF-8 text") from exc
    except (yaml.YAMLError, RecursionError) as exc:
        problem = " ".join(str(exc).split())[:300] if isinstance(exc, yaml.YAMLError) else "nested too deeply"
        raise SubmissionError(f"{path} is not valid YAML: {problem}") from exc


def confined_path(root: Path, relative: str) -> Path | None:
    """``root / relative`` when it stays inside ``root`` (no absolute path, URL, '..' or escaping link), else None."""
    if not relative or "://" in relative or "\0" in relative or Path(relative).is_absolute() or ".." in Path(relative).parts:
        return None
    root = Path(root).resolve()
    path = (root / relative).resolve()
    return path if path == root or root in path.parents else None


def _text_problems(raw: dict) -> list[str]:
    """Type and size checks of the free-text fields."""
    problems = []
    for key, limit in MAX_TEXT.items():
        value = raw.get(key)
        if value is None or (key in ("description", "license") and value == ""):
            continue
        if not isinstance(value, str):
            problems.append(f"{key} must be text, not {type(value).__name__}")
        elif len(value) > limit:
            problems.append(f"{key} is {len(value)} characters long; keep it under {limit}")
        elif key.endswith("_url") and not re.fullmatch(r"https?://[^\s<>\"']+", value):
            problems.append(f"{key} must be an http(s) address")
    return problems


def _problems(raw: dict, root: Path | None = None) -> list[str]:
    """Every problem of a raw manifest, each with its fix."""
    problems = []
    for key in REQUIRED_FIELDS:
        if raw.get(key) in (None, "", []):
            problems.append(f"missing field {key!r}: add it to {MANIFEST_FILE}")
    known = REQUIRED_FIELDS + OPTIONAL_FIELDS
    for key in raw:
        if not isinstance(key, str):
            problems.append(f"field names must be text, not {type(key).__name__}")
        elif key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.7)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(known)}"
            problems.append(f"unknown field {key[:80]!r}{hint}")
    name = raw.get("name")
    if name is not None and not (isinstance(name, str) and NAME_PATTERN.fullmatch(name)):
        problems.append(f"name {str(name)[:80]!r} must be 2-64 lowercase letters, digits, '-' or '_'")
    kind, track = raw.get("kind"), raw.get("track")
    if kind is not None and not (isinstance(kind, str) and kind in KINDS):
        problems.append(f"kind {str(kind)[:80]!r} is not one of {KINDS}")
    if track is not None and not (isinstance(track, str) and track in TRACKS):
        problems.append(f"track {str(track)[:80]!r} is not one of {TRACKS}")
    tasks = raw.get("tasks")
    if tasks is not None:
        if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
            problems.append("tasks must be a list of task names")
        else:
            problems += [f"unknown task {t[:80]!r}; tasks are {', '.join(task_names())}" for t in tasks if t not in task_names()]
            if len(set(tasks)) != len(tasks):
                problems.append("tasks lists a task twice")
    authors = raw.get("authors")
    if authors is not None and not (
        isinstance(authors, list) and 0 < len(authors) <= MAX_AUTHORS
        and all(isinstance(a, str) and 0 < len(a) <= MAX_NAME_TEXT for a in authors)
    ):
        problems.append(f"authors must be a list of names (at most {MAX_AUTHORS}, each under {MAX_NAME_TEXT} characters)")
    problems += _text_problems(raw)
    entry_point = raw.get("entry_point")
    if kind == "code":
        if not (isinstance(entry_point, str) and re.fullmatch(r"[\w./-]+\.py:\w+", entry_point)):
            problems.append("a code submission needs entry_point: FILE.py:FUNCTION (e.g. model.py:build_model)")
        elif root is not None and confined_path(root, entry_point.split(":")[0]) is None:
            problems.append(f"entry_point {entry_point!r} must name a file inside the submission directory")
    if kind == "predictions":
        predictions = raw.get("predictions")
        if not isinstance(predictions, dict) or not predictions:
            problems.append("a predictions submission needs predictions: {TASK_NAME: PATH} (zarr or netCDF)")
        else:
            for task_name, file_name in predictions.items():
                if not isinstance(task_name, str) or not isinstance(file_name, str):
                    problems.append("predictions must map task names to file names (text)")
                elif root is not None and confined_path(root, file_name) is None:
                    problems.append(f"predictions file {file_name[:200]!r} must be a path inside the submission directory")
            if isinstance(tasks, list):
                problems += [f"predictions has no file for task {t!r}" for t in tasks if isinstance(t, str) and t not in predictions]
    problems += _member_problems(raw, root)
    parameters = raw.get("parameters")
    if parameters is not None and not (type(parameters) is int and 0 <= parameters < MAX_PARAMETERS):
        problems.append("parameters must be a non-negative integer")
    needs = raw.get("needs")
    if needs is not None:
        if not isinstance(needs, list) or not all(isinstance(n, str) and n in NEEDS for n in needs):
            problems.append(f"needs must be a list drawn from {list(NEEDS)}")
        elif kind != "code":
            problems.append("needs applies to code submissions only")
    training = raw.get("training")
    if training is not None:
        if not isinstance(training, dict):
            problems.append(f"training must be a mapping with {TRAINING_FIELDS}")
        else:
            problems += [f"unknown training field {str(k)[:80]!r}; allowed: {TRAINING_FIELDS}" for k in training if k not in TRAINING_FIELDS]
            if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) and len(str(v)) <= 500 for v in training.values()):
                problems.append("training values must be short text")
    return problems


def member_dir(root: Path, member: str, project_root: Path = PROJECT_ROOT) -> Path | None:
    """A mean's member directory: beside the mean's own directory, else under the project's baselines/."""
    if not MEMBER_PATTERN.fullmatch(member):
        return None
    for folder in (Path(root).resolve().parent, Path(project_root) / "baselines"):
        if (folder / member / MANIFEST_FILE).is_file():
            return (folder / member).resolve()
    return None


def check_member(owner: str, member: "Submission") -> None:
    """A mean's member (or candidate) must be deterministic code or a predictions file, never another mean."""
    if member.manifest.kind == "mean" or member.manifest.track != "deterministic":
        raise SubmissionError(f"{owner}: member {member.root.name!r} is a {member.manifest.kind} of track "
                              f"{member.manifest.track!r}; members are deterministic code or predictions submissions")


def _member_problems(raw: dict, root: Path | None) -> list[str]:
    """A kind-mean manifest needs members: {TASK: [2+ member directories]} for each of its tasks, and nothing to run."""
    kind, members, tasks = raw.get("kind"), raw.get("members"), raw.get("tasks")
    if kind != "mean":
        return ["members applies to kind: mean only"] if members is not None else []
    problems = []
    if raw.get("track") not in (None, "deterministic"):
        problems.append("a mean averages deterministic forecasts: use track: deterministic")
    if raw.get("entry_point") is not None or raw.get("predictions") is not None:
        problems.append("a mean runs its members, not code or a file of its own: drop entry_point and predictions")
    if not isinstance(members, dict) or not members or not all(
        isinstance(t, str) and isinstance(m, list) and all(isinstance(x, str) for x in m) for t, m in members.items()
    ):
        return problems + ["a mean needs members: {TASK_NAME: [MEMBER_DIR, MEMBER_DIR, ...]} (directories beside it or under baselines/)"]
    for task_name, names in members.items():
        if len(names) < 2 or len(set(names)) != len(names):
            problems.append(f"members of {task_name!r} must be at least two different submissions")
        for name in names:
            if not MEMBER_PATTERN.fullmatch(name):
                problems.append(f"member {name[:80]!r} must be a directory name (no path), beside the mean or under baselines/")
            elif root is not None and member_dir(root, name) is None:
                problems.append(f"member {name!r} of {task_name!r} has no {MANIFEST_FILE} beside {Path(root).name}/ or under baselines/")
    if isinstance(tasks, list):
        problems += [f"members has no list for task {t!r}" for t in tasks if isinstance(t, str) and t not in members]
    return problems


def read_manifest(root: Path) -> tuple[dict, list[str]]:
    """The raw manifest of a submission directory and its problems (empty when valid)."""
    root = Path(root)
    path = root / MANIFEST_FILE
    if not root.is_dir():
        raise SubmissionError(f"{root} is not a directory; a submission is a directory with {MANIFEST_FILE}")
    if not path.is_file():
        raise SubmissionError(f"{root} has no {MANIFEST_FILE}; see submissions/README.md for its fields")
    raw = parse_manifest(path)
    if not isinstance(raw, dict):
        raise SubmissionError(f"{path} must be a mapping of fields")
    return raw, _problems(raw, root)


def registered_names(folder: Path) -> dict[str, list[Path]]:
    """Submission names declared one level under ``folder`` and the directories declaring each."""
    names: dict[str, list[Path]] = {}
    for path in sorted(Path(folder).glob(f"*/{MANIFEST_FILE}")):
        try:
            raw = parse_manifest(path)
        except SubmissionError:
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
        parameters=raw.get("parameters"), training=raw.get("training"), needs=tuple(raw.get("needs") or ()),
        members={t: list(m) for t, m in raw["members"].items()} if raw.get("members") is not None else None,
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
    _train_fields: "TrainFields | None" = dataclasses.field(default=None, repr=False)

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

    def train_fields(self) -> TrainFields:
        """The train split's fields (physical units), for submissions that declare ``needs: [train_fields]``."""
        if self._train_fields is None:
            raise SubmissionError("the harness provides the train-split fields only to submissions that declare "
                                  "needs: [train_fields] in submission.yaml; add it")
        return self._train_fields


@dataclasses.dataclass(frozen=True)
class TrainFields:
    """The train split's fields in physical units: times (T,) datetime64[ns] and values (T, channel, lat, lon)."""

    times: np.ndarray
    values: np.ndarray

    def at(self, times: np.ndarray) -> np.ndarray:
        """Fields at ``times`` (any shape, each a train-split time) -> times.shape + (channel, lat, lon)."""
        wanted = np.asarray(times, dtype="datetime64[ns]")
        index = np.searchsorted(self.times, wanted.ravel())
        index = np.clip(index, 0, len(self.times) - 1)
        if not (self.times[index] == wanted.ravel()).all():
            missing = wanted.ravel()[self.times[index] != wanted.ravel()][0]
            raise SubmissionError(f"{missing} is not a train-split time ({self.times[0]} .. {self.times[-1]}); ask only for train times")
        return self.values[index].reshape(wanted.shape + self.values.shape[1:])

    def same_season(self, times: np.ndarray, offsets_days: tuple[int, ...], span_hours: int = 0,
                    years: tuple[int, ...] | None = None) -> np.ndarray:
        """For each of ``times`` (any shape): the same calendar day and hour in every train year, shifted by each
        offset (days) -> times.shape + (years x offsets,) train times. 29 February maps to the 28th; a time
        whose ``[t, t + span_hours]`` leaves the train split is moved by a year's days within its year, and one
        absent from the fields (a store with fewer train years) becomes the nearest present time of that hour."""
        flat = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]").ravel())
        years = sorted(years or set(pd.DatetimeIndex(self.times).year))
        first, last = self.times[0], self.times[-1] - np.timedelta64(span_hours, "h")
        out = np.empty((len(flat), len(years) * len(offsets_days)), dtype="datetime64[ns]")
        for i, t in enumerate(flat):
            day = 28 if (t.month, t.day) == (2, 29) else t.day
            column = 0
            for year in years:
                base = pd.Timestamp(year=year, month=t.month, day=day, hour=t.hour)
                for offset in offsets_days:
                    candidate = (base + pd.Timedelta(days=offset)).to_datetime64()
                    for shift in (0, 365, -365):
                        moved = candidate + np.timedelta64(shift, "D")
                        if first <= moved <= last:
                            candidate = moved
                            break
                    out[i, column] = candidate
                    column += 1
        return self._snap(out, last).reshape(np.shape(times) + (out.shape[1],))

    def _snap(self, wanted: np.ndarray, last: np.datetime64) -> np.ndarray:
        """Times absent from the split (a gap, a store with fewer train years) -> the nearest present one, same hour."""
        present = self.times[self.times <= last]
        absent = ~np.isin(wanted, present)
        if not absent.any():
            return wanted
        hours = pd.DatetimeIndex(present).hour.values
        snapped = wanted.copy()
        for position in zip(*np.nonzero(absent)):
            t = wanted[position]
            pool = present[hours == pd.Timestamp(t).hour]
            pool = pool if len(pool) else present
            snapped[position] = pool[np.argmin(np.abs(pool - t))]
        return snapped


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
    forecaster, function_name = _call_entry_point(submission, context)
    if not callable(getattr(forecaster, "predict", None)):
        raise SubmissionError(f"{function_name}() must return an object with predict(inputs, batch)")
    return forecaster


class Codec(Protocol):
    """What a codec submission's entry point returns (see bench.codec_eval for the whole contract)."""

    latent_shape: tuple[int, ...]

    def encode(self, fields: np.ndarray) -> np.ndarray: ...

    def decode(self, latents: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


def build_codec(submission: Submission, context: SubmissionContext) -> Codec:
    """Import a codec submission's entry point, call it with the context and check the codec contract."""
    from bench.errors import CodecContractError

    codec, function_name = _call_entry_point(submission, context)
    missing = [m for m in ("encode", "decode", "describe") if not callable(getattr(codec, m, None))]
    if missing:
        raise CodecContractError(f"{function_name}() must return an object with encode(fields), decode(latents) and describe(); "
                                 f"it has no {', '.join(missing)}")
    shape = getattr(codec, "latent_shape", None)
    if not (isinstance(shape, (tuple, list)) and shape and all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape)):
        raise CodecContractError(f"the codec's latent_shape is {str(shape)[:80]}; declare one field's latent shape as a tuple "
                                 "of positive integers without the batch, e.g. latent_shape = (4, 4, 8)")
    description = codec.describe()
    try:
        json.dumps(description, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CodecContractError(f"the codec's describe() is not plain JSON data ({exc}); return a dict of "
                                 "strings, numbers, lists and dicts, e.g. {'input_scaling': 'zscore', ...}") from exc
    if not isinstance(description, dict):
        raise CodecContractError("the codec's describe() must return a dict, e.g. {'input_scaling': 'zscore', 'native_grid': True}")
    return codec


def _call_entry_point(submission: Submission, context: SubmissionContext) -> tuple[Any, str]:
    """Import the entry point ``FILE.py:FUNCTION`` and return ``FUNCTION(context)`` and the function's name."""
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
    return factory(context), function_name


def count_parameters(forecaster: Any) -> int | None:
    """Trainable parameters of a forecaster: its own count, torch's, or None if it has none."""
    counter = getattr(forecaster, "num_parameters", None)
    if callable(counter):
        return int(counter())
    parameters = getattr(forecaster, "parameters", None)
    if callable(parameters):
        return int(sum(p.numel() for p in parameters()))
    return None
