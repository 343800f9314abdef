"""Leaderboard tables: one per (board, track, channel, space, metric), best value per column marked."""
from __future__ import annotations

import dataclasses
from typing import Callable

from bench.leaderboard.board import REFERENCE_NAMES, Board, Entry
from bench.leaderboard.display import (
    METRIC_ORDER, column_decimals, format_number, format_skill, lead_label, metric_label, metric_units,
)

SPACE_LABELS = {"physical": "Physical units", "normalized": "Normalized"}
ENSEMBLE_ONLY_METRICS = {"crps", "spread", "spread_skill"}


@dataclasses.dataclass(frozen=True)
class MetricView:
    """A metric a table can show: how it is named, what "better" means and how it is written."""

    key: str
    label: str
    better: str  # "lower", "higher", "zero" (smallest magnitude) or "none" (no best marked)
    skill_reference: str | None = None

    @property
    def is_skill(self) -> bool:
        return self.skill_reference is not None

    def unit(self, channel_units: str, space: str) -> str:
        """Units of this metric's values for a channel."""
        return "%" if self.is_skill else metric_units(self.key, channel_units, space)

    @property
    def better_text(self) -> str:
        return {"lower": "lower is better", "higher": "higher is better",
                "zero": "closest to zero is better", "one": "closest to 1 is better (sqrt((M+1)/M)-corrected)",
                "none": ""}[self.better]


def metric_view(metric: str) -> MetricView:
    """The view of a reported metric (unknown metrics get no best marking)."""
    better = {"acc": "higher", "bias": "zero", "spread": "none", "spread_skill": "one"}.get(metric, "lower")
    if metric not in METRIC_ORDER and metric != "rmse":
        better = "none"
    return MetricView(metric, metric_label(metric), better)


SKILL_VIEWS = tuple(
    MetricView(f"skill_{name}", f"Skill vs {name}", "higher", skill_reference=name) for name in REFERENCE_NAMES
)


@dataclasses.dataclass
class Cell:
    """One table value: the number, its text and whether it is the best of its column."""

    value: float | None
    text: str
    is_best: bool = False


@dataclasses.dataclass
class Row:
    """A submission's row; guests are references from another track, shown for scale, never ranked best."""

    entry: Entry
    rank: int | None
    cells: list[Cell]
    is_guest: bool = False


@dataclasses.dataclass
class Table:
    """A sortable table of one metric per lead for one channel, space and track of a board."""

    channel: str
    space: str
    metric: MetricView
    unit: str
    lead_hours: list[float]
    rows: list[Row]

    @property
    def lead_labels(self) -> list[str]:
        return [lead_label(hours) for hours in self.lead_hours]

    @property
    def caption(self) -> str:
        name = f"{self.metric.label} ({self.unit})" if self.unit else self.metric.label
        parts = [name, SPACE_LABELS.get(self.space, self.space).lower()]
        if self.metric.better_text:
            parts.append(self.metric.better_text)
        return " · ".join(parts)


def metric_views(board: Board, track: str, channel: str, space: str) -> list[MetricView]:
    """Metrics a track's entries report for a channel, in the usual order, then the two skills."""
    reported = {m for entry in board.ranked_on(track) for m in entry.metric_names(channel, space)}
    if track == "deterministic":  # ensembles are ranked here by their ensemble mean: deterministic metrics only
        reported -= ENSEMBLE_ONLY_METRICS
    ordered = [m for m in METRIC_ORDER if m in reported] + sorted(reported - set(METRIC_ORDER))
    return [metric_view(m) for m in ordered] + list(SKILL_VIEWS)


def table_rows_entries(board: Board, track: str) -> list[tuple[Entry, bool]]:
    """Entries shown on a track's table: its own, then the board's references from other tracks."""
    own = board.ranked_on(track)
    guests = [e for e in board.entries if e.is_reference and e.track != track]
    return [(entry, False) for entry in own] + [(entry, True) for entry in guests]


def entry_values(board: Board, entry: Entry, channel: str, space: str, view: MetricView) -> list[float | None]:
    """Per-lead values an entry shows under a metric view (all None when it does not report it)."""
    if view.skill_reference is not None:
        values = board.skill(entry, channel, space, view.skill_reference)
    else:
        values = entry.values(channel, space, view.key)
    return values if values is not None else [None] * len(board.lead_hours)


def best_value(values: list[float | None], better: str) -> float | None:
    """The best of a column's values under a "better" rule, or None if nothing can be best."""
    present = [v for v in values if v is not None]
    if not present or better == "none":
        return None
    choose: dict[str, Callable[[list[float]], float]] = {
        "lower": min,
        "higher": max,
        "zero": lambda vs: min(vs, key=abs),
        "one": lambda vs: min(vs, key=lambda v: abs(v - 1.0)),
    }
    return choose[better](present)


def mark_best(rows: list[Row], better: str) -> None:
    """Mark, per column, the cells holding the best value among two or more ranked (non-guest) rows."""
    ranked = [row for row in rows if not row.is_guest]
    if not ranked:
        return
    for column in range(len(ranked[0].cells)):
        values = [row.cells[column].value for row in ranked]
        if sum(value is not None for value in values) < 2:
            continue  # a lone value is not "best" of anything
        best = best_value(values, better)
        if best is None:
            continue
        for row in ranked:
            row.cells[column].is_best = ties_best(row.cells[column].value, best, better)


def ties_best(value: float | None, best: float, better: str) -> bool:
    """True if ``value`` is as good as ``best`` (for bias, +b and -b are equally good)."""
    if value is None:
        return False
    if better == "one":
        return abs(value - 1.0) == abs(best - 1.0)
    return abs(value) == abs(best) if better == "zero" else value == best


def build_table(board: Board, track: str, channel: dict[str, str], space: str, view: MetricView) -> Table:
    """The table of one metric for a channel and space, rows in the board's ranking order."""
    members = table_rows_entries(board, track)
    values = [entry_values(board, entry, channel["key"], space, view) for entry, _ in members]
    columns = list(zip(*values)) if values else []
    decimals = [column_decimals(list(column)) for column in columns]
    rows = []
    rank = 0
    for (entry, is_guest), row_values in zip(members, values):
        rank += 0 if is_guest else 1
        cells = [
            Cell(value, format_skill(value) if view.is_skill else format_number(value, decimals[i]))
            for i, value in enumerate(row_values)
        ]
        rows.append(Row(entry, None if is_guest else rank, cells, is_guest))
    mark_best(rows, view.better)
    unit = view.unit(channel["units"], space)
    return Table(channel["key"], space, view, unit, board.lead_hours, rows)

