"""Results grouped into boards: a board holds results of one task spec on one dataset, never mixed.

Two results are comparable only if they share the task name, the task fingerprint and the data
fingerprint; each distinct triple is its own board. Skill is measured against the reference
results named ``persistence`` and ``climatology`` on the same board.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path, PurePosixPath
from typing import Any

from bench.errors import ResultsError
from bench.leaderboard.display import TRACK_ORDER, is_number, slugify
from bench.results import Results, find_results

REFERENCE_NAMES = ("persistence", "climatology")


@dataclasses.dataclass(frozen=True)
class BoardKey:
    """What makes results comparable: the same task spec evaluated on the same data."""

    task_name: str
    task_fingerprint: str
    data_fingerprint: str

    @property
    def slug(self) -> str:
        """A folder name for this board's pages, unique per key."""
        return f"{slugify(self.task_fingerprint, 'task')[:16]}-{slugify(self.data_fingerprint, 'data')[:16]}"


@dataclasses.dataclass
class Entry:
    """One results file as the site shows it."""

    results: Results
    path: Path  # the results file
    source: Path  # the same, relative to the results folder (as the site shows it)
    slug: str = ""  # page name, unique within the board; set by group_boards

    @property
    def name(self) -> str:
        """The submission's name as its author wrote it (untrusted text)."""
        return self.results.submission["name"]

    @property
    def track(self) -> str:
        """deterministic, probabilistic or codec."""
        return self.results.submission["track"]

    @property
    def is_reference(self) -> bool:
        """True for the persistence and climatology baselines that skill is measured against."""
        return self.name in REFERENCE_NAMES

    @property
    def still_improving(self) -> bool:
        """True when the training summary's verdict says validation was still improving when training stopped."""
        training = self.results.training if isinstance(self.results.training, dict) else {}
        convergence = training.get("convergence")
        return isinstance(convergence, dict) and convergence.get("converged") is False

    @property
    def key(self) -> BoardKey:
        """The board this entry belongs on."""
        return BoardKey(
            str(self.results.task["name"]),
            str(self.results.task["fingerprint"]),
            str(self.results.data["fingerprint"]),
        )

    @property
    def page_path(self) -> PurePosixPath:
        """Where this entry's page lives in the site: one folder per task and board."""
        return PurePosixPath("submissions", slugify(self.key.task_name, "task"), self.key.slug, f"{self.slug}.html")

    def metric_names(self, channel: str, space: str) -> list[str]:
        """Metrics this entry reports for a channel in a space."""
        return list(self.results.metrics.get(channel, {}).get(space, {}))

    def values(self, channel: str, space: str, metric: str) -> list[float | None] | None:
        """Per-lead values of a metric, or None when the entry does not report it."""
        values = self.results.metrics.get(channel, {}).get(space, {}).get(metric)
        if values is None:
            return None
        return [v if is_number(v) else None for v in values]


@dataclasses.dataclass
class Board:
    """All comparable results of one (task, task fingerprint, data fingerprint)."""

    key: BoardKey
    entries: list[Entry]
    frozen_task_fingerprint: str | None = None

    @property
    def task(self) -> dict[str, Any]:
        """The task record, the same for every entry (same task fingerprint)."""
        return self.entries[0].results.task

    @property
    def data(self) -> dict[str, Any]:
        """The data record, the same for every entry (same data fingerprint); a forecast's where the board has
        one, since codec results (which can come first) record no init times."""
        return next((e.results.data for e in self.entries if e.results.data.get("n_init_times")),
                    self.entries[0].results.data)

    @property
    def lead_hours(self) -> list[float]:
        """Lead times of the task's per-lead metrics, in hours."""
        return list(self.task["lead_hours"])

    @property
    def channels(self) -> list[dict[str, str]]:
        """The task's channels, each ``{"key", "units"}``."""
        return [{"key": c["key"], "units": str(c.get("units", ""))} for c in self.task["channels"]]

    @property
    def is_frozen_spec(self) -> bool:
        """True when the task fingerprint is the released (frozen) one for this task name."""
        return self.key.task_fingerprint == self.frozen_task_fingerprint

    @property
    def tracks(self) -> list[str]:
        """Tracks with at least one entry, in the site's track order."""
        present = {entry.track for entry in self.entries}
        return [t for t in TRACK_ORDER if t in present] + sorted(present - set(TRACK_ORDER))

    def reference(self, name: str) -> Entry | None:
        """The reference results called ``name`` on this board, if evaluated."""
        return next((entry for entry in self.entries if entry.name == name), None)

    def on_track(self, track: str) -> list[Entry]:
        """Entries submitted to ``track``, best first."""
        return [entry for entry in self.entries if entry.track == track]

    def ranked_on(self, track: str) -> list[Entry]:
        """Entries ranked on a track's tables: the deterministic board also ranks ensembles by their ensemble mean."""
        tracks = ("deterministic", "probabilistic") if track == "deterministic" else (track,)
        return [entry for entry in self.entries if entry.track in tracks]

    def skill(self, entry: Entry, channel: str, space: str, reference_name: str) -> list[float | None] | None:
        """RMSE skill of ``entry`` against a reference per lead, or None if either RMSE is missing."""
        reference = self.reference(reference_name)
        rmse = entry.values(channel, space, "rmse")
        reference_rmse = reference.values(channel, space, "rmse") if reference else None
        if rmse is None or reference_rmse is None:
            return None
        return skill_by_lead(rmse, reference_rmse)


def skill_by_lead(rmse: list[float | None], reference_rmse: list[float | None]) -> list[float | None]:
    """``1 - RMSE / RMSE_ref`` per lead; None where either is missing or the reference is zero."""
    return [
        1.0 - value / reference if value is not None and reference else None
        for value, reference in zip(rmse, reference_rmse)
    ]


def check_displayable(results: Results, source: str) -> None:
    """Check the parts of a valid results file that the site indexes into; raise ResultsError if odd."""
    task = results.task
    if not isinstance(task["name"], str) or not task["name"]:
        raise ResultsError(f"{source}: task.name must be a non-empty string")
    lead_hours = task["lead_hours"]
    if not isinstance(lead_hours, list) or not lead_hours or not all(is_number(h) for h in lead_hours):
        raise ResultsError(f"{source}: task.lead_hours must be a non-empty list of numbers")
    channels = task["channels"]
    if not isinstance(channels, list) or not channels:
        raise ResultsError(f"{source}: task.channels must be a non-empty list")
    if not all(isinstance(c, dict) and isinstance(c.get("key"), str) for c in channels):
        raise ResultsError(f"{source}: every task.channels item needs a string 'key'")
    for channel, spaces in results.metrics.items():
        if not isinstance(spaces, dict) or not all(isinstance(m, dict) for m in spaces.values()):
            raise ResultsError(f"{source}: metrics.{channel} must map spaces to metric tables")
    if not all(isinstance(m, dict) for m in results.error_maps.values()):
        raise ResultsError(f"{source}: every error_maps item must be an object")


NON_NEGATIVE = {"rmse", "mae", "crps", "spread", "spread_skill"}
MAX_ABS_VALUE = 1e9


def _number_problem(value: object, low: float, high: float) -> str | None:
    """Why ``value`` cannot be shown (not a finite number in [low, high]), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return f"{value!r} is not a finite number"
    if not low <= value <= high:
        return f"{value!r} is outside {low:g}..{high:g}"
    return None


def check_values(results: Results, source: str) -> None:
    """Refuse out-of-range numbers (negative RMSE, ACC beyond 1, absurd magnitudes) instead of drawing them."""
    for channel, spaces in results.metrics.items():
        for space, metrics in spaces.items():
            for name, values in metrics.items():
                low = 0.0 if name in NON_NEGATIVE else -1.0 - 1e-6 if name == "acc" else -MAX_ABS_VALUE
                high = 1.0 + 1e-6 if name == "acc" else MAX_ABS_VALUE
                for value in values:
                    problem = _number_problem(value, low, high)
                    if problem:
                        raise ResultsError(f"{source}: metrics.{channel}.{space}.{name}: {problem}")
    for hour in results.task["lead_hours"]:
        problem = _number_problem(hour, 0, 24 * 366)
        if problem:
            raise ResultsError(f"{source}: task.lead_hours: {problem}")
    for key, low, high in (("n_init_times", 0, 10**7),):
        problem = _number_problem(results.data.get(key), low, high)
        if problem:
            raise ResultsError(f"{source}: data.{key}: {problem}")
    parameters = results.submission.get("parameters")
    if parameters is not None and (type(parameters) is not int or not 0 <= parameters < 10**13):
        raise ResultsError(f"{source}: submission.parameters: {parameters!r} is not a parameter count")
    for channel, error_map in results.error_maps.items():
        rows = error_map.get("rmse")
        if isinstance(rows, list):
            for row in rows:
                for value in row if isinstance(row, list) else [row]:
                    problem = _number_problem(value, 0.0, MAX_ABS_VALUE)
                    if problem:
                        raise ResultsError(f"{source}: error_maps.{channel}: {problem}")


def read_entry(path: Path, results_dir: Path) -> Entry:
    """Read one results file for the site; raise ResultsError saying why it cannot be shown."""
    try:
        results = Results.read(path)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: not in the results schema ({exc})") from exc
    check_displayable(results, str(path))
    check_values(results, str(path))
    return Entry(results=results, path=path, source=path.relative_to(results_dir))


def reason_without_path(error: ResultsError, path: Path) -> str:
    """An error message without its leading ``PATH:`` (the report names the file already)."""
    message = str(error)
    prefix = f"{path}: "
    return message[len(prefix):] if message.startswith(prefix) else message


def load_entries(results_dir: Path) -> tuple[list[Entry], list[tuple[Path, str]]]:
    """Every readable results file under ``results_dir``, and each unreadable one with its reason."""
    entries: list[Entry] = []
    skipped: list[tuple[Path, str]] = []
    for path in find_results(results_dir):
        try:
            entries.append(read_entry(path, Path(results_dir)))
        except ResultsError as error:
            skipped.append((path, reason_without_path(error, path)))
    return entries, skipped


def ranking_key(entry: Entry, channel: str) -> tuple[bool, float, str]:
    """Sort key of the default order: physical RMSE of the first channel at the longest lead."""
    rmse = entry.values(channel, "physical", "rmse") or [None]
    last = rmse[-1]
    return (last is None, last if last is not None else 0.0, entry.name)


def assign_slugs(entries: list[Entry]) -> None:
    """Give each entry a page name from its submission name, unique within its board."""
    taken: set[str] = set()
    for entry in entries:
        base = slugify(entry.name, "submission")
        slug, n = base, 2
        while slug in taken:
            slug, n = f"{base}-{n}", n + 1
        taken.add(slug)
        entry.slug = slug


def group_boards(entries: list[Entry], frozen_fingerprints: dict[str, str]) -> list[Board]:
    """Boards by (task, task fingerprint, data fingerprint); per task, the frozen spec and the largest first."""
    by_key: dict[BoardKey, list[Entry]] = {}
    for entry in entries:
        by_key.setdefault(entry.key, []).append(entry)
    boards = []
    for key, members in by_key.items():
        first_channel = members[0].results.task["channels"][0]["key"]
        members.sort(key=lambda entry: ranking_key(entry, first_channel))
        assign_slugs(members)
        boards.append(Board(key, members, frozen_fingerprints.get(key.task_name)))
    boards.sort(key=lambda b: (b.key.task_name, not b.is_frozen_spec, -len(b.entries), b.key.slug))
    return boards
