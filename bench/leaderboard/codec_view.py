"""The codec tab and codec pages: reconstruction tables with document 000's columns, error against
compression ratio, and one page per codec (latent, compression, throughput, every metric, spectrum)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path, PurePosixPath

from bench.leaderboard.board import Board, Entry
from bench.leaderboard.display import (
    DASH, column_decimals, format_count, format_number, is_number, slugify, units_label,
)
from bench.leaderboard.submission_page import MapImage, ModelCard, map_file, model_card, provenance_sections, text

CODEC_TRACK = "codec"


@dataclasses.dataclass(frozen=True)
class CodecColumn:
    """A column of the codec table: which value, its heading, its unit kind and what "better" means."""

    heading: str
    space: str
    metric: str
    unit: str  # "physical" (the channel's units), "" (none) or a fixed text
    better: str  # "lower", "higher", "zero", "one" or "none"


# Document 000's columns (RMSE, MAE, SSIM, correlation; normalised RMSE, MAE, PSNR, SSIM) and the codec track's own.
CODEC_COLUMNS = (
    CodecColumn("RMSE", "physical", "rmse", "physical", "lower"),
    CodecColumn("MAE", "physical", "mae", "physical", "lower"),
    CodecColumn("Bias", "physical", "bias", "physical", "zero"),
    CodecColumn("Max |err|", "physical", "max_abs_error", "physical", "lower"),
    CodecColumn("Corr", "physical", "correlation", "", "higher"),
    CodecColumn("RMSE", "normalized", "rmse", "σ", "lower"),
    CodecColumn("RMSE", "unit_range", "rmse", "[0, 1]", "lower"),
    CodecColumn("MAE", "unit_range", "mae", "[0, 1]", "lower"),
    CodecColumn("PSNR", "unit_range", "psnr", "dB", "higher"),
    CodecColumn("SSIM", "unit_range", "ssim", "", "higher"),
    CodecColumn("Spectral err", "physical", "spectral_error", "", "lower"),
    CodecColumn("Small-scale power", "physical", "small_scale_power_ratio", "ratio", "one"),
)


@dataclasses.dataclass
class CodecCell:
    """A table value: number, text, and whether it is the best of its column."""

    value: float | None
    text: str
    is_best: bool = False


@dataclasses.dataclass
class CodecRow:
    """A codec's row: latent, compression, native grid, throughput and the channel's metrics."""

    entry: Entry
    latent: str
    compression: float | None
    compression_text: str
    native_grid: str
    cells: list[CodecCell]
    encode_rate: str
    decode_rate: str


@dataclasses.dataclass
class CodecTable:
    """The codecs of a board for one channel, best physical RMSE first."""

    channel: str
    units: str
    columns: list[tuple[str, str]]  # (heading, unit text)
    better: list[str]
    rows: list[CodecRow]
    chart: str | None  # the error-against-compression PNG, relative to the site root


@dataclasses.dataclass
class CodecBoardView:
    """A board as the codec tab shows it."""

    board: Board
    tables: list[CodecTable]

    @property
    def is_real_fields(self) -> bool:
        """True for a board of fields from another store than the benchmark's (e.g. the real ERA5 sample)."""
        return bool(self.board.data.get("statistics"))


def codec_value(entry: Entry, channel: str, space: str, metric: str) -> float | None:
    """One reconstruction metric (codec results hold one value per metric)."""
    values = entry.values(channel, space, metric)
    return values[0] if values else None


def rate_text(value: object) -> str:
    """Fields per second, three significant digits."""
    return f"{value:,.3g}" if is_number(value) else DASH


def native_text(description: dict) -> str:
    """"yes", or "no (resized to HxW)", from the codec's describe()."""
    native = description.get("native_grid") if isinstance(description, dict) else None
    if native is True:
        return "yes"
    if native is False:
        size = description.get("resize_to")
        return f"no, resized to {'x'.join(map(str, size))}" if isinstance(size, list) else "no"
    return DASH


def _best(values: list[float | None], better: str) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) < 2 or better == "none":
        return None
    key = {"lower": lambda v: v, "higher": lambda v: -v, "zero": abs, "one": lambda v: abs(v - 1)}[better]
    return min(present, key=key)


def chart_file(board: Board, channel: str) -> PurePosixPath:
    """Where a board's error-against-compression chart for a channel lives."""
    return PurePosixPath("codec", slugify(board.key.task_name, "task"), board.key.slug, f"{slugify(channel, 'channel')}.png")


def codec_table(board: Board, channel: dict[str, str], chart: str | None) -> CodecTable:
    """The codec table of one channel, with the best value of each column marked."""
    key = channel["key"]
    entries = sorted(board.on_track(CODEC_TRACK), key=lambda e: (codec_value(e, key, "physical", "rmse") is None,
                                                                    codec_value(e, key, "physical", "rmse") or 0.0, e.name))
    values = [[codec_value(e, key, c.space, c.metric) for c in CODEC_COLUMNS] for e in entries]
    decimals = [column_decimals(list(column)) for column in zip(*values)] if values else []
    rows = []
    for entry, row_values in zip(entries, values):
        codec = entry.results.codec or {}
        ratio = codec.get("compression_ratio")
        shape = codec.get("latent_shape")
        cells = [CodecCell(v, format_number(v, decimals[i])) for i, v in enumerate(row_values)]
        rows.append(CodecRow(entry, "×".join(map(str, shape)) if isinstance(shape, list) else DASH,
                             ratio if is_number(ratio) else None, f"{ratio:.3g}×" if is_number(ratio) else DASH,
                             native_text(codec.get("description") or {}), cells,
                             rate_text(codec.get("encode_fields_per_s")), rate_text(codec.get("decode_fields_per_s"))))
    for i, column in enumerate(CODEC_COLUMNS):
        best = _best([row.cells[i].value for row in rows], column.better)
        for row in rows:
            row.cells[i].is_best = best is not None and row.cells[i].value == best
    columns = [(c.heading, units_label(channel["units"]) if c.unit == "physical" else c.unit) for c in CODEC_COLUMNS]
    return CodecTable(key, channel["units"], columns, [c.better for c in CODEC_COLUMNS], rows, chart)


def codec_board_view(board: Board, charts: set[str]) -> CodecBoardView:
    """The codec tab's view of a board; ``charts`` names the channels whose chart PNG was written."""
    return CodecBoardView(board, [
        codec_table(board, channel, str(chart_file(board, channel["key"])) if channel["key"] in charts else None)
        for channel in board.channels
    ])


def write_codec_charts(board: Board, site: Path) -> set[str]:
    """Draw RMSE against compression ratio (log x) for every channel of a board's codecs; returns the channels drawn."""
    from bench.codec_compare import error_vs_compression_figure, save_figure

    codecs = board.on_track(CODEC_TRACK)
    drawn = set()
    for channel in board.channels:
        points = [(e.name, e.results.codec.get("compression_ratio"), codec_value(e, channel["key"], "physical", "rmse")) for e in codecs]
        points = [p for p in points if is_number(p[1]) and p[1] > 0 and is_number(p[2])]
        if not points:
            continue
        title = f"{board.key.task_name} · {board.data.get('title') or ''}"[:90]
        save_figure(error_vs_compression_figure(points, channel["key"], channel["units"], title), site / chart_file(board, channel["key"]))
        drawn.add(channel["key"])
    return drawn


@dataclasses.dataclass
class CodecPage:
    """Everything the codec page template needs."""

    entry: Entry
    board: Board
    card: ModelCard
    facts: list[tuple[str, str]]
    description: list[tuple[str, str]]
    metrics: list[tuple[str, str, list[tuple[str, str, str]]]]  # channel, units, (space, metric, value text)
    bands: list[tuple[str, list[tuple[str, str]]]]  # channel, (wavenumbers, power ratio)
    maps: list[MapImage]
    provenance: list[tuple[str, list[tuple[str, str]]]]
    results_json: str

    @property
    def overview_link(self) -> str:
        return f"index.html#{CODEC_TRACK}/{slugify(self.board.key.task_name, 'task')}"


SPACE_NAMES = {"physical": "physical units", "normalized": "z-score (train split)", "unit_range": "scaled to [0, 1] (train-split range)"}


def build_codec_page(board: Board, entry: Entry, rendered_maps: set[str]) -> CodecPage:
    """The page of one codec on one board."""
    codec = entry.results.codec or {}
    ratio = codec.get("compression_ratio")
    facts = [
        ("Latent shape", "×".join(map(str, codec.get("latent_shape") or [])) or DASH),
        ("Latent dtype", text(codec.get("latent_dtype"))),
        ("Latent values per field", format_count(codec.get("latent_values"))),
        ("Field values (native grid)", format_count(codec.get("field_values"))),
        ("Compression vs float32", (f"{ratio:.4g}×" + (" (expansion: the latent is larger than the field)" if ratio < 1 else ""))
         if is_number(ratio) else DASH),
        ("Encode", f"{rate_text(codec.get('encode_fields_per_s'))} fields/s"),
        ("Decode", f"{rate_text(codec.get('decode_fields_per_s'))} fields/s"),
        ("Throughput measured as", text(codec.get("throughput_note"))),
    ]
    description = codec.get("description") if isinstance(codec.get("description"), dict) else {}
    metrics = []
    bands = []
    for channel in board.channels:
        key = channel["key"]
        rows = []
        for space, table in entry.results.metrics.get(key, {}).items():
            for metric, values in table.items():
                value = values[0] if values else None
                rows.append((SPACE_NAMES.get(space, space), metric.replace("_", " "), f"{value:.5g}" if is_number(value) else DASH))
        metrics.append((key, channel["units"], rows))
        spectrum = (codec.get("spectra") or {}).get(key) or {}
        bands.append((key, [(f"k = {b['wavenumbers'][0]}–{b['wavenumbers'][1]}", f"{b['power_ratio']:.3g}" if is_number(b.get("power_ratio")) else DASH)
                            for b in spectrum.get("bands", []) if isinstance(b, dict) and isinstance(b.get("wavenumbers"), list)]))
    maps = [
        MapImage(channel["key"], str(map_file(entry, channel["key"]).relative_to(entry.page_path.parent)),
                 f"reconstruction RMSE map of {channel['key']} for {entry.name}")
        for channel in board.channels if channel["key"] in rendered_maps
    ]
    provenance = provenance_sections(board, entry)
    data = entry.results.data
    provenance[1] = ("Data", [("Title", text(data.get("title"))), ("Store", text(data.get("store") or data.get("source"))), ("Split", text(data.get("split"))),
                              ("Fields", format_count(data.get("n_fields"))),
                              ("First → last", f"{text(data.get('first_time'))} → {text(data.get('last_time'))}"),
                              ("Statistics", text(data.get("statistics") or "train split of the same data")),
                              ("Data fingerprint", text(data.get("fingerprint")))])
    provenance[0] = ("Task", [row for row in provenance[0][1] if row[0] != "Lead times"])
    return CodecPage(entry, board, model_card(entry.results.submission), facts,
                     [(str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in description.items()], metrics, bands, maps, provenance,
                     entry.page_path.with_suffix(".json").name)
