"""Line charts of a metric against lead time, laid out in Python and drawn as inline SVG by a template."""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

from bench.leaderboard.board import Board, Entry
from bench.leaderboard.display import (
    channel_label, column_decimals, format_number, is_number, lead_label, metric_label, metric_units,
)
from bench.results import SPACES

MODEL_COLOURS = ("#3b6fb6", "#e07b39", "#3f9d6b", "#c8414b", "#8a63b8", "#b08a2e", "#2a9bb3", "#d45f9f", "#6b7a2c")
REFERENCE_STYLES = {"persistence": ("#7d8590", "6 4"), "climatology": ("#4b5159", "2 3")}

WIDTH, HEIGHT = 340, 210
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 52, 14, 12, 34


@dataclasses.dataclass(frozen=True)
class SeriesStyle:
    """How one submission is drawn: colour and dash pattern ("" for a solid line)."""

    colour: str
    dash: str = ""


@dataclasses.dataclass
class Point:
    """A drawn data point with the value it stands for (for its tooltip)."""

    x: float
    y: float
    lead: str
    text: str


@dataclasses.dataclass
class Series:
    """One submission's line: polyline segments (broken at missing values) and its points."""

    label: str
    style: SeriesStyle
    segments: list[str]
    points: list[Point]


@dataclasses.dataclass
class Tick:
    """An axis tick: its position in the plot's coordinates and its label."""

    position: float
    label: str


@dataclasses.dataclass(frozen=True)
class LegendItem:
    """A submission's swatch under a set of charts; guests are drawn muted."""

    name: str
    style: SeriesStyle
    is_guest: bool = False


@dataclasses.dataclass
class LineChart:
    """A metric against lead time for several submissions, in SVG user units."""

    title: str
    y_label: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series]
    x_label: str = "lead time"


def series_styles(names: list[str]) -> dict[str, SeriesStyle]:
    """A stable style per submission: references grey and dashed, models from a colour-blind-safe cycle."""
    styles: dict[str, SeriesStyle] = {}
    models = 0
    for name in names:
        if name in REFERENCE_STYLES:
            styles[name] = SeriesStyle(*REFERENCE_STYLES[name])
        else:
            styles[name] = SeriesStyle(MODEL_COLOURS[models % len(MODEL_COLOURS)])
            models += 1
    return styles


def legend_items(entries: list[Entry], styles: dict[str, SeriesStyle], guests: set[str]) -> list[LegendItem]:
    """The legend of charts drawn with ``styles``; entries named in ``guests`` are muted."""
    return [LegendItem(entry.name, styles[entry.name], entry.name in guests) for entry in entries]


def rmse_charts(board: Board, entries: list[Entry], styles: dict[str, SeriesStyle]) -> list[tuple[str, LineChart]]:
    """An RMSE-against-lead chart per space and channel of ``board``, one line per entry that reports it."""
    return metric_charts(board, entries, styles, "rmse")


def metric_charts(board: Board, entries: list[Entry], styles: dict[str, SeriesStyle], metric: str) -> list[tuple[str, LineChart]]:
    """A ``metric``-against-lead chart per space and channel of ``board``, one line per entry that reports it."""
    charts = []
    for space in SPACES:
        for channel in board.channels:
            series = [(entry.name, entry.values(channel["key"], space, metric)) for entry in entries]
            series = [(name, values) for name, values in series if values]
            decimals = column_decimals([v for _, values in series for v in values])
            units = metric_units(metric, channel["units"], space)
            y_label = f"{metric_label(metric)} ({units})" if units else metric_label(metric)
            chart = line_chart(
                channel_label(channel["key"]), y_label, board.lead_hours, series, styles,
                lambda value, d=decimals: format_number(value, d),
            )
            charts.append((space, chart))
    return charts


def nice_step(span: float, target_ticks: int = 5) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``target_ticks`` ticks."""
    raw = span / max(target_ticks, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def value_ticks(low: float, high: float) -> list[float]:
    """Round tick values covering [low, high]; the axis starts at zero for non-negative data."""
    low = min(low, 0.0)
    if high <= low:
        high = low + 1.0
    step = nice_step(high - low)
    first = math.floor(low / step) * step
    count = int(math.ceil((high - first) / step - 1e-9)) + 1
    return [round(first + i * step, 10) for i in range(count)]


def tick_text(value: float, step: float) -> str:
    """A tick label with as many decimals as the step needs."""
    decimals = next(d for d in range(7) if abs(round(step * 10**d) - step * 10**d) < 1e-6 or d == 6)
    return f"{value:.{decimals}f}"


def line_chart(
    title: str, y_label: str, lead_hours: list[float], series_values: list[tuple[str, list[float | None]]],
    styles: dict[str, SeriesStyle], value_text: Callable[[float], str],
    x_text: Callable[[float], str] = lead_label, x_label: str = "lead time",
) -> LineChart:
    """Lay out a chart of each named series of per-x values (by default per lead time) against x."""
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    present = [v for _, values in series_values for v in values if is_number(v)]
    y_values = value_ticks(min(present, default=0.0), max(present, default=1.0))
    y_low, y_high = y_values[0], y_values[-1]
    x_low, x_high = min(lead_hours), max(lead_hours)
    x_span = (x_high - x_low) or 1.0

    def x_of(hours: float) -> float:
        return round(plot_left + (hours - x_low) / x_span * (plot_right - plot_left), 2)

    def y_of(value: float) -> float:
        return round(plot_bottom - (value - y_low) / (y_high - y_low) * (plot_bottom - plot_top), 2)

    series = []
    for name, values in series_values:
        points: list[Point] = []
        segments: list[list[str]] = [[]]
        for hours, value in zip(lead_hours, values):
            if not is_number(value):
                segments.append([])
                continue
            point = Point(x_of(hours), y_of(value), x_text(hours), value_text(value))
            points.append(point)
            segments[-1].append(f"{point.x},{point.y}")
        series.append(Series(name, styles[name], [" ".join(s) for s in segments if len(s) > 1], points))
    step = y_values[1] - y_values[0]
    return LineChart(
        title=title, y_label=y_label, width=WIDTH, height=HEIGHT,
        left=plot_left, right=plot_right, top=plot_top, bottom=plot_bottom,
        x_ticks=[Tick(x_of(h), x_text(h)) for h in lead_hours[:: max(1, math.ceil(len(lead_hours) / 10))]],
        y_ticks=[Tick(y_of(v), tick_text(v, step)) for v in y_values],
        series=series, x_label=x_label,
    )


@dataclasses.dataclass
class Bar:
    """One bar of a bar chart, in SVG user units, with the value it stands for."""

    x: float
    y: float
    width: float
    height: float
    text: str


@dataclasses.dataclass
class BarChart:
    """A rank histogram: relative frequency per rank, with the flat line a reliable ensemble would give."""

    title: str
    subtitle: str
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    bars: list[Bar]
    flat_y: float
    y_ticks: list[Tick]
    colour: str
    x_label: str = "rank of the truth among the members"
    y_label: str = "frequency"


def rank_histogram_chart(title: str, subtitle: str, frequencies: list[float], colour: str) -> BarChart:
    """Bars of rank frequencies (M + 1 ranks) scaled to the largest, with the flat 1/(M+1) level dashed."""
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    values = [v if is_number(v) else 0.0 for v in frequencies]
    flat = 1.0 / max(len(values), 1)
    ticks = value_ticks(0.0, max(values + [flat * 1.5]))
    high = ticks[-1]
    y_of = lambda v: round(plot_bottom - v / high * (plot_bottom - plot_top), 2)
    slot = (plot_right - plot_left) / max(len(values), 1)
    bars = [Bar(round(plot_left + i * slot + 0.1 * slot, 2), y_of(v), round(0.8 * slot, 2), round(plot_bottom - y_of(v), 2),
                f"rank {i}: {v:.4f}") for i, v in enumerate(values)]
    step = ticks[1] - ticks[0]
    return BarChart(title, subtitle, WIDTH, HEIGHT, plot_left, plot_right, plot_top, plot_bottom, bars, y_of(flat),
                    [Tick(y_of(v), tick_text(v, step)) for v in ticks], colour)


def rank_histogram_charts(board: Board, entries: list[Entry], styles: dict[str, SeriesStyle]) -> list[BarChart]:
    """Per channel and ensemble entry, the rank histogram at the longest lead."""
    charts = []
    for channel in board.channels:
        for entry in entries:
            block = entry.results.ensemble or {}
            rows = ((block.get("rank_histogram") or {}).get("frequencies") or {}).get(channel["key"])
            if not rows:
                continue
            subtitle = f"{channel_label(channel['key'])} · {lead_label(board.lead_hours[-1])} · {block.get('members')} members"
            charts.append(rank_histogram_chart(entry.name, subtitle, rows[-1], styles[entry.name].colour))
    return charts


TRAINING_STYLES = {"train": SeriesStyle("#7d8590", "6 4"), "validation": SeriesStyle(MODEL_COLOURS[0])}


def training_chart(training: dict | None) -> LineChart | None:
    """The training curve: sqrt of the train loss and the validation score (normalised RMSE) per epoch."""
    curve = (training or {}).get("curve") or []
    if len(curve) < 1:
        return None
    epochs = [row["epoch"] for row in curve]
    train = [math.sqrt(row["train_loss"]) if is_number(row.get("train_loss")) and row["train_loss"] >= 0 else None for row in curve]
    series = [("validation", [row.get("val_score") for row in curve])]
    if any(v is not None for v in train):
        series.insert(0, ("train", train))
    return line_chart(
        "Training curve", "RMSE (normalized)", epochs, series, TRAINING_STYLES,
        lambda value: f"{value:.4f}", x_text=lambda epoch: f"{epoch:g}", x_label="epoch",
    )
