"""What the overview page shows: tabs per track and task, and per board its tables, charts and header."""
from __future__ import annotations

import dataclasses
from typing import Any

from bench.leaderboard.board import Board
from bench.leaderboard.charts import (
    BarChart, LegendItem, LineChart, legend_items, metric_charts, rank_histogram_charts, rmse_charts, series_styles,
)
from bench.leaderboard.display import TRACK_ORDER, channel_label, slugify, track_label
from bench.leaderboard.tables import MetricView, Table, build_table, metric_views, table_rows_entries
from bench.results import SPACES


@dataclasses.dataclass(frozen=True)
class Tab:
    """A tab button: the key it selects, its title, a subtitle and how many submissions it holds."""

    key: str
    title: str
    subtitle: str
    count: int


@dataclasses.dataclass
class BoardView:
    """One board as shown on one track's tab: controls, a table per view, RMSE charts and a legend."""

    board: Board
    track: str
    metrics: list[MetricView]
    tables: list[Table]
    charts: list[tuple[str, LineChart]]
    legend: list[LegendItem]
    # Probabilistic track only: CRPS and spread/skill against lead, rank histograms at the longest lead.
    ensemble_charts: list[tuple[str, list[tuple[str, LineChart]]]] = dataclasses.field(default_factory=list)
    rank_histograms: list[BarChart] = dataclasses.field(default_factory=list)

    @property
    def channels(self) -> list[dict[str, str]]:
        return self.board.channels

    @property
    def channel_options(self) -> list[tuple[str, str]]:
        """(value, button text) per channel for the variable control."""
        return [(channel["key"], channel_label(channel["key"])) for channel in self.channels]

    @property
    def metric_options(self) -> list[tuple[str, str]]:
        """(value, button text) per metric view for the metric control."""
        return [(view.key, view.label) for view in self.metrics]


@dataclasses.dataclass
class Panel:
    """The content of one (track, task) tab pair: its boards, first the frozen spec's."""

    track: str
    task_slug: str
    task_name: str
    boards: list[BoardView]


@dataclasses.dataclass
class Overview:
    """Everything the overview template needs."""

    track_tabs: list[Tab]
    task_tabs: list[Tab]
    panels: list[Panel]
    n_results: int
    skipped: list[tuple[str, str]]


def task_title(task: dict[str, Any]) -> str:
    """A task tab's title: its channel for a one-channel task, else "multi-variable"."""
    channels = task["channels"]
    return channels[0]["key"] if len(channels) == 1 else f"multi-variable ({len(channels)})"


def board_view(board: Board, track: str) -> BoardView:
    """A board's tables for every channel, space and metric of a track, with its charts."""
    views: dict[str, MetricView] = {}
    for channel in board.channels:
        for space in SPACES:
            views.update({view.key: view for view in metric_views(board, track, channel["key"], space)})
    tables = [
        build_table(board, track, channel, space, view)
        for channel in board.channels for space in SPACES for view in views.values()
    ]
    members = table_rows_entries(board, track)
    entries = [entry for entry, _ in members]
    styles = series_styles([entry.name for entry in entries])
    legend = legend_items(entries, styles, guests={entry.name for entry, is_guest in members if is_guest})
    view = BoardView(board, track, list(views.values()), tables, rmse_charts(board, entries, styles), legend)
    if track == "probabilistic":
        ensembles = board.on_track(track)
        view.ensemble_charts = [
            ("CRPS against lead time", metric_charts(board, entries, styles, "crps")),
            ("Spread/skill against lead time (1 = reliable; sqrt((M+1)/M)-corrected)",
             metric_charts(board, ensembles, styles, "spread_skill")),
        ]
        view.rank_histograms = rank_histogram_charts(board, ensembles, styles)
    return view


def tracks_present(boards: list[Board]) -> list[str]:
    """Every track with a submission, the three standard ones always first (even when empty)."""
    present = {track for board in boards for track in board.tracks}
    return list(TRACK_ORDER) + sorted(present - set(TRACK_ORDER))


def tasks_present(boards: list[Board]) -> list[tuple[str, dict[str, Any]]]:
    """Each task name with its spec, single-channel tasks first."""
    tasks: dict[str, dict[str, Any]] = {}
    for board in boards:
        tasks.setdefault(board.key.task_name, board.task)
    return sorted(tasks.items(), key=lambda item: (len(item[1]["channels"]), item[0]))


def build_overview(boards: list[Board], skipped: list[tuple[str, str]], codec_charts: dict | None = None) -> Overview:
    """The overview: a tab per track and per task, and for each pair the boards that have entries there.

    The codec track shows reconstruction tables (bench.leaderboard.codec_view); ``codec_charts`` names,
    per board key, the channels whose error-against-compression chart was drawn.
    """
    from bench.leaderboard.codec_view import CODEC_TRACK, codec_board_view

    def view(board: Board, track: str):
        return codec_board_view(board, (codec_charts or {}).get(board.key, set())) if track == CODEC_TRACK else board_view(board, track)

    tracks = tracks_present(boards)
    tasks = tasks_present(boards)
    track_tabs = [
        Tab(track, track_label(track), "", sum(len(b.on_track(track)) for b in boards)) for track in tracks
    ]
    task_tabs = [
        Tab(slugify(name, "task"), task_title(task), name,
            sum(len(board.entries) for board in boards if board.key.task_name == name))
        for name, task in tasks
    ]
    panels = [
        Panel(track, slugify(name, "task"), name, [
            view(board, track)
            for board in boards if board.key.task_name == name and board.ranked_on(track)
        ])
        for track in tracks for name, _ in tasks
    ]
    n_results = sum(len(board.entries) for board in boards)
    return Overview(track_tabs, task_tabs, panels, n_results, skipped)
