"""What a submission's page shows: its model card, every metric, RMSE charts, error maps and provenance."""
from __future__ import annotations

import dataclasses
from pathlib import PurePosixPath
from typing import Any

from bench.climatology import ClimatologySpec
from bench.leaderboard.board import REFERENCE_NAMES, Board, Entry
from bench.leaderboard.reproduction import data_store, entry_reproduction
from bench.leaderboard.charts import (
    TRAINING_STYLES, LegendItem, LineChart, legend_items, rmse_charts, series_styles, training_chart,
)
from bench.leaderboard.display import (
    DASH, column_decimals, format_count, format_duration, format_number, format_parameters, format_skill,
    lead_label, safe_link, slugify, track_label,
)
from bench.leaderboard.tables import metric_views
from bench.results import SPACES
from bench.training_record import convergence_text

TRAINING_FIELDS = (("Data", "data"), ("Time", "time"), ("Hardware", "hardware"))


@dataclasses.dataclass(frozen=True)
class Link:
    """A card link: its label, and its address only when it is a safe http(s) address."""

    label: str
    text: str
    href: str | None


@dataclasses.dataclass
class ModelCard:
    """The model card from ``submission.yaml``, every field as display text."""

    name: str
    track: str
    kind: str
    authors: list[str]
    description: str
    license: str
    links: list[Link]
    parameters: str
    training: list[tuple[str, str]]


@dataclasses.dataclass
class MetricRow:
    """One metric's values per lead on a submission page."""

    label: str
    unit: str
    texts: list[str]


@dataclasses.dataclass
class ChannelMetrics:
    """A channel's metrics in one space: a row per metric, then the skills."""

    channel: str
    units: str
    space: str
    rows: list[MetricRow]


@dataclasses.dataclass(frozen=True)
class MapImage:
    """An error map PNG as the page links it."""

    channel: str
    src: str
    alt: str


@dataclasses.dataclass
class SubmissionPage:
    """Everything the submission template needs."""

    entry: Entry
    board: Board
    card: ModelCard
    lead_labels: list[str]
    metrics: list[ChannelMetrics]
    charts: list[tuple[str, LineChart]]
    legend: list[LegendItem]
    maps: list[MapImage]
    missing_maps: list[str]
    provenance: list[tuple[str, list[tuple[str, str]]]]
    results_json: str
    training_chart: LineChart | None = None
    training_legend: list[LegendItem] = dataclasses.field(default_factory=list)
    training_facts: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def overview_link(self) -> str:
        """The overview with this entry's track and task tabs open."""
        return f"index.html#{self.entry.track}/{slugify(self.board.key.task_name, 'task')}"


def text(value: object) -> str:
    """Any card field as text; missing or empty fields are a dash."""
    if value is None or value == "" or value == []:
        return DASH
    return str(value)


def text_list(value: object) -> list[str]:
    """A list-valued card field (authors) as a list of strings, whatever the file holds."""
    if isinstance(value, list):
        return [str(item) for item in value if item not in (None, "")]
    return [str(value)] if value not in (None, "") else []


def model_card(submission: dict[str, Any]) -> ModelCard:
    """The display model card of a ``submission`` record."""
    links = [
        Link(label, text(submission.get(key)), safe_link(submission.get(key)))
        for label, key in (("Code", "code_url"), ("Paper", "paper_url"))
    ]
    training = submission.get("training")
    training_rows = (
        [(label, text(training.get(key))) for label, key in TRAINING_FIELDS]
        if isinstance(training, dict) else []
    )
    return ModelCard(
        name=submission["name"], track=track_label(submission["track"]), kind=text(submission.get("kind")),
        authors=text_list(submission.get("authors")), description=text(submission.get("description")),
        license=text(submission.get("license")), links=links,
        parameters=format_parameters(submission.get("parameters")), training=training_rows,
    )


def channel_metrics(board: Board, entry: Entry, channel: dict[str, str], space: str) -> ChannelMetrics:
    """A channel's table on the submission page: every reported metric, then RMSE skill per reference."""
    rows = []
    for view in metric_views(board, entry.track, channel["key"], space):
        if view.is_skill:
            values = board.skill(entry, channel["key"], space, view.skill_reference) or [None] * len(board.lead_hours)
            rows.append(MetricRow(view.label, "%", [format_skill(v) for v in values]))
            continue
        values = entry.values(channel["key"], space, view.key)
        if values is None:
            continue
        decimals = column_decimals(values)
        texts = [format_number(v, decimals) for v in values]
        rows.append(MetricRow(view.label, view.unit(channel["units"], space), texts))
    return ChannelMetrics(channel["key"], channel["units"], space, rows)


def compared_entries(board: Board, entry: Entry) -> list[Entry]:
    """The entry, then the board's references it is compared with."""
    references = [board.reference(name) for name in REFERENCE_NAMES if name != entry.name]
    return [entry] + [reference for reference in references if reference is not None]


def comparison_charts(board: Board, entry: Entry) -> tuple[list[tuple[str, LineChart]], list[LegendItem]]:
    """Per channel and space, this entry's RMSE against lead time beside the references', and the legend."""
    members = compared_entries(board, entry)
    styles = series_styles([member.name for member in members])
    guests = {member.name for member in members if member is not entry}
    return rmse_charts(board, members, styles), legend_items(members, styles, guests)


def map_file(entry: Entry, channel: str) -> PurePosixPath:
    """Where an entry's error map for a channel lives, beside its page."""
    return entry.page_path.with_suffix("") / f"{slugify(channel, 'channel')}.png"


def provenance_sections(board: Board, entry: Entry, report: dict | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """Provenance as titled lists of (label, value): reproduce, task, data, code and run."""
    reproduction = entry_reproduction(board, entry, report)
    task, data, run = entry.results.task, entry.results.data, entry.results.provenance
    frozen = " (released spec)" if board.is_frozen_spec else " (differs from the released spec)"
    commit = text(run.get("git_commit")) + (" (uncommitted changes)" if run.get("git_dirty") else "")
    hardware = run.get("hardware")
    hardware_rows = (
        [(f"Hardware · {key}", text(value)) for key, value in hardware.items()]
        if isinstance(hardware, dict) else [("Hardware", text(hardware))]
    )
    return [
        ("Reproduce", [("Command", reproduction.command), ("Data", reproduction.data_label),
                       ("Harness version", reproduction.harness_versions),
                       ("Last successful bench reproduce", reproduction.status)]),
        ("Task", [("Name", text(task.get("name"))), ("Task fingerprint", text(task.get("fingerprint")) + frozen),
                  ("Lead times", ", ".join(lead_label(h) for h in board.lead_hours))]),
        ("Data", [("Title", text(data.get("title"))), ("Store", data_store(data)),
                  ("Climatology", climatology_text(data.get("climatology"))),
                  ("Split", text(data.get("split"))),
                  ("Initial times", format_count(data.get("n_init_times"))),
                  ("First → last", f"{text(data.get('first_init_time'))} → {text(data.get('last_init_time'))}"),
                  ("Data fingerprint", text(data.get("fingerprint")))]),
        ("Code", [("Git commit", commit), ("Harness version", text(run.get("harness_version")))]),
        ("Run", hardware_rows + [("Isolation", isolation_text(entry)),
                                 ("Wall time", format_duration(run.get("wall_time_s"))),
                                 ("Evaluated at", text(run.get("evaluated_at"))),
                                 ("Results file", str(entry.source))]),
    ]


def training_facts(training: dict | None) -> list[tuple[str, str]]:
    """Training options and validation scores as (label, text) rows."""
    if not training:
        return []
    options = training.get("options") or {}
    named = ", ".join(
        f"{key.replace('_', ' ')}" + (f" ({', '.join(map(str, value))})" if isinstance(value, list) and value else "")
        for key, value in options.items() if value
    )
    rows = [("Options", named or DASH), ("Precision", text(training.get("precision"))),
            ("Window stride", text(training.get("window_stride") and int(training["window_stride"]))),
            ("Weights stored as", text(training.get("storage")))]
    if converged := convergence_text(training.get("convergence")):
        rows.append(("Convergence", converged))
    if training.get("ema_decay"):
        rows.append(("Weights", f"EMA of the training weights, decay {training['ema_decay']}"))
    for channel, values in (training.get("validation_rmse") or {}).items():
        rows.append((f"Validation RMSE · {channel}", " / ".join(format_number(v, 3) for v in values)))
    if training.get("task_fingerprint_matches") is False:
        rows.append(("Warning", "weights were trained for another task fingerprint"))
    return rows


def isolation_text(entry: Entry) -> str:
    """What confined the model during the run, as the results file records it (older files: not recorded)."""
    isolation = entry.results.provenance.get("isolation")
    return text(isolation)[:200] if isolation else "not recorded (results from before the sandbox was recorded)"


def climatology_text(spec: dict | None) -> str:
    """How the climatology behind ACC and the climatology baseline was built (older files: not recorded)."""
    if not isinstance(spec, dict):
        return "not recorded (results from harness 0.1: flat 61-day window)"
    try:
        return ClimatologySpec.from_json(spec).describe()
    except TypeError:
        return text(spec)


def build_submission_page(board: Board, entry: Entry, rendered_maps: set[str], report: dict | None = None) -> SubmissionPage:
    """The page of one entry; ``rendered_maps`` names the channels whose error map PNG was written."""
    maps = [
        MapImage(channel["key"], str(map_file(entry, channel["key"]).relative_to(entry.page_path.parent)),
                 f"RMSE map of {channel['key']} for {entry.name}")
        for channel in board.channels if channel["key"] in rendered_maps
    ]
    missing = [channel["key"] for channel in board.channels if channel["key"] not in rendered_maps]
    charts, legend = comparison_charts(board, entry)
    return SubmissionPage(
        entry=entry, board=board, card=model_card(entry.results.submission),
        lead_labels=[lead_label(h) for h in board.lead_hours],
        metrics=[channel_metrics(board, entry, channel, space) for channel in board.channels for space in SPACES],
        charts=charts, legend=legend, maps=maps, missing_maps=missing,
        provenance=provenance_sections(board, entry, report), results_json=entry.page_path.with_suffix(".json").name,
        training_chart=training_chart(entry.results.training),
        training_legend=[LegendItem(name, style) for name, style in TRAINING_STYLES.items()],
        training_facts=training_facts(entry.results.training),
    )
