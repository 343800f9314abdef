"""`bench compare-codecs`: for the same fields, the original, each codec's reconstruction and its error
as world maps, document 000's table from the codecs' results files, and error against compression.

Land outlines: cartopy would draw coastlines from Natural Earth, but it downloads those shapes on
first use and these machines are offline; the maps instead draw the land-sea boundary as the 0.5
contour of the store's own ``land_sea_mask`` (on the 64x32 grid, so it is coarse by construction).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.codec_eval import FieldSource, run_codec, split_fields, store_fields, store_variant
from bench.dataset import PreparedData
from bench.errors import BenchError, ResultsError
from bench.evaluate import blocked_paths
from bench.prepare import verify_prepared
from bench.results import Results, atomic_write_text, results_path
from bench.sandbox import SandboxLimits
from bench.store import open_store
from bench.submission import load_submission
from bench.task import load_task

# Document 000's columns: physical RMSE, MAE, SSIM, correlation; normalised RMSE, MAE, PSNR, SSIM, correlation.
TABLE_COLUMNS = (
    ("RMSE", "physical", "rmse"), ("MAE", "physical", "mae"), ("bias", "physical", "bias"),
    ("max abs err", "physical", "max_abs_error"), ("corr", "physical", "correlation"),
    ("RMSE [0,1]", "unit_range", "rmse"), ("MAE [0,1]", "unit_range", "mae"), ("PSNR dB", "unit_range", "psnr"),
    ("SSIM", "unit_range", "ssim"), ("spectral err", "physical", "spectral_error"), ("small-scale power", "physical", "small_scale_power_ratio"),
)


@dataclasses.dataclass
class CodecRow:
    """One codec's line of the comparison: its results (None when not scored yet) and its reconstructions."""

    name: str
    results: Results | None
    reconstructions: np.ndarray | None = None


@dataclasses.dataclass
class Comparison:
    """What compare-codecs wrote."""

    table: str
    files: list[Path]


def land_mask(data: PreparedData, store: str | None) -> np.ndarray | None:
    """The land_sea_mask (lat ascending) of the scored store, else of the prepared data's source; None if neither has one."""
    for source in (store, data.manifest.source):
        if source is None or ("://" not in str(source) and not Path(str(source)).exists()):
            continue
        try:
            ds = open_store(source)
        except BenchError:
            continue
        if "land_sea_mask" in ds:
            mask = ds["land_sea_mask"]
            if float(mask["latitude"][0]) > float(mask["latitude"][-1]):
                mask = mask.isel(latitude=slice(None, None, -1))
            return np.asarray(mask.transpose("latitude", "longitude").values, dtype=np.float64)
    return None


def _number(value: float | None) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else "—"


def codec_table(rows: list[CodecRow], channel: str, units: str) -> str:
    """Document 000's table (plus bias, max error and the spectrum) for one channel, as Markdown."""
    head = ["codec", "latent", "compression", "native grid"] + [
        f"{label} [{units}]" if space == "physical" and key in ("rmse", "mae", "bias", "max_abs_error") else label
        for label, space, key in TABLE_COLUMNS
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sorted(rows, key=lambda r: (r.results is None, _rmse(r.results, channel))):
        if row.results is None:
            lines.append(f"| {row.name} | not scored on this board: run `bench evaluate` first |" + " |" * (len(head) - 2))
            continue
        codec, metrics = row.results.codec, row.results.metrics[channel]
        native = codec["description"].get("native_grid")
        cells = [row.name, "x".join(map(str, codec["latent_shape"])), f"{codec['compression_ratio']:.4g}x",
                 {True: "yes", False: f"no (resized to {codec['description'].get('resize_to')})"}.get(native, "?")]
        cells += [_number(metrics[space].get(key, [None])[0]) for _, space, key in TABLE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rmse(results: Results | None, channel: str) -> float:
    value = results.metrics[channel]["physical"]["rmse"][0] if results is not None else None
    return value if value is not None else float("inf")


def error_vs_compression_figure(points: list[tuple[str, float, float]], channel: str, units: str, title: str) -> Figure:
    """RMSE against compression ratio (log x), one labelled point per codec; ratio 1 marked (left of it: expansion)."""
    figure = Figure(figsize=(6.4, 4.2), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, ratio, rmse in points:
        axes.scatter([ratio], [rmse], s=28, zorder=3)
        axes.annotate(name.replace("$", r"\$"), (ratio, rmse), textcoords="offset points", xytext=(5, 4), fontsize=8)
    axes.set_xscale("log")
    axes.axvline(1.0, color="#999999", linestyle=":", linewidth=1)
    ratios = [p[1] for p in points] or [1.0]
    axes.set_xlim(min(min(ratios) / 2, 0.5), max(ratios) * 2)
    axes.set_ylim(bottom=0)
    axes.set_xlabel("compression ratio vs the native float32 field (log; < 1 = expansion)", fontsize=9)
    axes.set_ylabel(f"{channel} RMSE [{units}]".replace("$", r"\$"), fontsize=9)
    axes.set_title(title.replace("$", r"\$"), fontsize=10, loc="left")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return figure


def save_figure(figure: Figure, path: Path) -> Path:
    """Write a PNG through a temp file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, metadata={"Software": None})
    tmp.replace(path)
    return path


def maps_figure(truth: np.ndarray, rows: list[CodecRow], index: int, channel_index: int, channel: str, units: str,
                time: str, mask: np.ndarray | None) -> Figure:
    """Original and reconstructions (top, shared scale) and errors (bottom, shared diverging scale) of one field."""
    drawn = [r for r in rows if r.reconstructions is not None]
    n = len(drawn) + 1
    figure = Figure(figsize=(3.3 * n, 4.6), dpi=100)
    FigureCanvasAgg(figure)
    original = truth[index, channel_index]
    extent = (-2.8125, 357.1875, -90, 90)
    vmin, vmax = float(original.min()), float(original.max())
    errors = [r.reconstructions[index, channel_index] - original for r in drawn]
    emax = max([float(np.percentile(np.abs(e), 99.5)) for e in errors] + [1e-6])
    axes_grid = figure.subplots(2, n, squeeze=False)

    def panel(axes, image, title, **style):
        shown = axes.imshow(image, origin="lower", extent=extent, aspect="auto", interpolation="nearest", **style)
        if mask is not None:
            lon = np.arange(mask.shape[1]) * 360 / mask.shape[1]
            lat = np.linspace(-90 + 90 / mask.shape[0], 90 - 90 / mask.shape[0], mask.shape[0])
            axes.contour(lon, lat, mask, levels=[0.5], colors="black", linewidths=0.6)
        axes.set_title(title.replace("$", r"\$"), fontsize=9, loc="left")
        axes.set_xticks([])
        axes.set_yticks([])
        return shown

    field_image = panel(axes_grid[0, 0], original, f"original · {time}", cmap="RdYlBu_r", vmin=vmin, vmax=vmax)
    axes_grid[1, 0].axis("off")
    axes_grid[1, 0].text(0.02, 0.5, f"{channel} [{units}]\ntop: fields\nbottom: reconstruction − original\n"
                         "black line: land-sea mask 0.5".replace("$", r"\$"), fontsize=9, va="center")
    error_image = None
    for column, (row, error) in enumerate(zip(drawn, errors), start=1):
        rmse = float(np.sqrt(np.mean(error**2)))
        panel(axes_grid[0, column], row.reconstructions[index, channel_index], row.name, cmap="RdYlBu_r", vmin=vmin, vmax=vmax)
        error_image = panel(axes_grid[1, column], error, f"error · unweighted RMSE {rmse:.3g}", cmap="RdBu_r", vmin=-emax, vmax=emax)
    figure.colorbar(field_image, ax=list(axes_grid[0]), fraction=0.02, pad=0.01)
    if error_image is not None:
        figure.colorbar(error_image, ax=list(axes_grid[1]), fraction=0.02, pad=0.01)
    return figure


def field_positions(source: FieldSource, times: list[str]) -> np.ndarray:
    """Positions of the requested times (nearest field), default: the field in the middle of the source."""
    if not times:
        return np.array([len(source.times) // 2])
    import pandas as pd

    return np.array([int(np.argmin(np.abs(source.times - pd.Timestamp(t)))) for t in times])


def compare_codecs(codec_dirs: list[Path], task_name: str, data_dir: Path, out_dir: Path, results_dir: Path,
                   times: list[str] = (), channels: list[str] = (), fields_store: str | None = None,
                   limits: SandboxLimits = SandboxLimits()) -> Comparison:
    """Draw the maps, write the table and the error-vs-compression plot for ``codec_dirs`` on one task and board."""
    task = load_task(task_name)
    data = PreparedData(data_dir, task)
    verify_prepared(data.root)
    source = split_fields(data, "test") if fields_store is None else store_fields(fields_store, task, data.stats, data.manifest.source)
    variant = None if fields_store is None else store_variant(fields_store)
    positions = field_positions(source, list(times))
    chosen = source.subset(positions)
    truth = chosen.read(np.arange(len(positions)))
    rows = []
    for codec_dir in codec_dirs:
        submission = load_submission(codec_dir)
        if submission.manifest.track != "codec":
            raise BenchError(f"{codec_dir} is a {submission.manifest.track} submission; compare-codecs compares track: codec submissions")
        path = results_path(results_dir, task.name, submission.name, variant)
        try:
            results = Results.read(path) if path.is_file() else None
        except ResultsError:
            results = None
        collected: list[np.ndarray] = []
        run_codec(submission, task, data.stats, chosen, blocked_paths(data) + list(source.blocked), limits, len(positions),
                  lambda _truth, reconstruction: collected.append(reconstruction))
        rows.append(CodecRow(submission.name, results, np.concatenate(collected)))
    mask = land_mask(data, fields_store)
    board = source.record["title"] if fields_store else "simulated test year"
    out_dir = Path(out_dir)
    files, tables = [], []
    units = {c.key: c.units for c in task.channels}
    for channel in channels or [task.channel_keys[0]]:
        if channel not in task.channel_keys:
            raise BenchError(f"{task.name} has no channel {channel!r}; its channels are {task.channel_keys}")
        c = task.channel_keys.index(channel)
        suffix = f"{task.name}_{channel}" + (f"_{variant}" if variant else "")
        for i, position in enumerate(positions):
            time = str(source.times[position])[:16]
            figure = maps_figure(truth, rows, i, c, channel, units[channel], time, mask)
            files.append(save_figure(figure, out_dir / f"maps_{suffix}_{time.replace(' ', 'T').replace(':', '')}.png"))
        scored = [(r.name, r.results.codec["compression_ratio"], r.results.metrics[channel]["physical"]["rmse"][0]) for r in rows if r.results]
        figure = error_vs_compression_figure(scored, channel, units[channel], f"{task.name} · {board}")
        files.append(save_figure(figure, out_dir / f"error_vs_compression_{suffix}.png"))
        tables.append(f"### {channel} [{units[channel]}] · {task.name} · {board}\n\n{codec_table(rows, channel, units[channel])}\n")
    text = "\n".join(tables)
    table_path = out_dir / (f"table_{task.name}" + (f"_{variant}" if variant else "") + ".md")
    atomic_write_text(table_path, text)
    files.append(table_path)
    return Comparison(text, files)
