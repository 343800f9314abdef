"""Build the static leaderboard site from results JSON: rendered in a temp dir, then swapped in whole.

``build_site(results_dir, out_dir)`` reads every ``RESULTS/<task>/<name>.json``, skips (and reports)
malformed files, groups the rest into boards that never mix fingerprints, and writes an overview,
one page per submission with its error maps, and the local CSS/JS: no CDN, so it works offline.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import jinja2

from bench import __version__
from bench.errors import BenchError
from bench.leaderboard import display
from bench.leaderboard.board import Board, group_boards, load_entries
from bench.leaderboard.codec_view import CODEC_TRACK, build_codec_page, write_codec_charts
from bench.leaderboard.error_maps import read_error_map, render_error_maps, shared_scale
from bench.leaderboard.overview import build_overview
from bench.leaderboard.reproduction import board_reproduction, report_beside
from bench.leaderboard.submission_page import build_submission_page, map_file
from bench.task import FROZEN_FINGERPRINTS

PACKAGE_DIR = Path(__file__).parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"
# A built site carries this file; a non-empty out dir without it is never replaced (it is not ours).
SITE_MARKER = ".bench-leaderboard-site"
SITE_TITLE = "weather-latent-bench"


class LeaderboardError(BenchError):
    """The leaderboard cannot be built where asked (missing results, or an out dir that is not a site)."""


@dataclasses.dataclass
class BuildReport:
    """What a build wrote and which results files it skipped, with why."""

    out_dir: Path
    pages: list[Path]
    skipped: list[tuple[Path, str]]
    n_results: int = 0
    n_boards: int = 0


def template_environment() -> jinja2.Environment:
    """Jinja with autoescaping always on: every piece of submission text renders as text."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    environment.globals.update(
        channel_label=display.channel_label, units_label=display.units_label, track_label=display.track_label,
        format_parameters=display.format_parameters, format_count=display.format_count,
        harness_version=__version__, site_title=SITE_TITLE,
    )
    return environment


def root_prefix(page: PurePosixPath) -> str:
    """The relative path from a page back to the site root (``../../../`` for a submission page)."""
    return "../" * (len(page.parts) - 1)


def write_page(environment: jinja2.Environment, template: str, site: Path, path: PurePosixPath, **context) -> None:
    """Render a template to ``site/path``."""
    html = environment.get_template(template).render(root=root_prefix(path), **context)
    path = site / path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")


def write_error_maps(board: Board, site: Path) -> dict[str, set[str]]:
    """Render every entry's error maps on one colour scale per channel; returns rendered channels per entry."""
    rendered: dict[str, set[str]] = {entry.slug: set() for entry in board.entries}
    # Reconstruction errors and 24 h forecast errors are different things: each gets its own colour scale.
    groups = [[e for e in board.entries if e.track == CODEC_TRACK], [e for e in board.entries if e.track != CODEC_TRACK]]
    for channel, group in ((c, g) for c in board.channels for g in groups if g):
        key = channel["key"]
        maps = [
            (entry, read_error_map(key, entry.results.error_maps[key]))
            for entry in group if key in entry.results.error_maps
        ]
        readable = [(entry, error_map) for entry, error_map in maps if error_map is not None]
        # References (climatology) would stretch the scale and wash out the models' maps.
        models = [error_map for entry, error_map in readable if not entry.is_reference]
        vmax = shared_scale(models or [error_map for _, error_map in readable])
        render_error_maps([(error_map, site / map_file(entry, key)) for entry, error_map in readable], vmax)
        for entry, _ in readable:
            rendered[entry.slug].add(key)
    return rendered


def write_site(boards: list[Board], skipped: list[tuple[str, str]], site: Path, report: dict | None = None) -> list[PurePosixPath]:
    """Write the whole site into ``site`` (an empty dir); returns the pages written.

    ``report`` is the ``bench reproduce`` report: each board and page says when it was last re-derived.
    """
    environment = template_environment()
    environment.globals["reproduction_of"] = lambda board: board_reproduction(board, report)
    shutil.copytree(STATIC_DIR, site / "static")
    codec_charts = {board.key: write_codec_charts(board, site) for board in boards if board.on_track(CODEC_TRACK)}
    overview = build_overview(boards, skipped, codec_charts)
    index = PurePosixPath("index.html")
    write_page(environment, "index.html.j2", site, index, overview=overview)
    pages = [index]
    for board in boards:
        rendered_maps = write_error_maps(board, site)
        for entry in board.entries:
            if entry.track == CODEC_TRACK and entry.results.is_codec:
                write_page(environment, "codec.html.j2", site, entry.page_path, page=build_codec_page(board, entry, rendered_maps[entry.slug]))
            else:
                page = build_submission_page(board, entry, rendered_maps[entry.slug], report)
                write_page(environment, "submission.html.j2", site, entry.page_path, page=page)
            shutil.copyfile(entry.path, site / entry.page_path.with_suffix(".json"))
            pages.append(entry.page_path)
    (site / SITE_MARKER).write_text(f"built by bench {__version__}\n")
    return pages


def check_out_dir(results_dir: Path, out_dir: Path) -> None:
    """Refuse an out dir that would swallow the results, or a non-empty dir that no build wrote."""
    results, out = results_dir.resolve(), out_dir.resolve()
    if out == results or out in results.parents:
        raise LeaderboardError(f"--out {out_dir} would replace the results in {results_dir}; choose another folder")
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out_dir} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).exists():
        raise LeaderboardError(
            f"--out {out_dir} is not empty and was not built by 'bench leaderboard build'; "
            "choose an empty or new folder (the build replaces it whole)"
        )


def swap_in(staging: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``staging``: rename the old site away, rename the new one in, delete the old."""
    retired = None
    if out_dir.exists():
        retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, retired / "site")
    try:
        os.replace(staging, out_dir)
    except BaseException:
        if retired is not None:
            os.replace(retired / "site", out_dir)
        raise
    finally:
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)


def build_site(results_dir: Path, out_dir: Path) -> BuildReport:
    """Render every results JSON under ``results_dir`` into a static site at ``out_dir``, all or nothing."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    if not results_dir.is_dir():
        raise LeaderboardError(f"no results folder at {results_dir}; run 'bench evaluate' first or pass --results")
    check_out_dir(results_dir, out_dir)
    entries, skipped = load_entries(results_dir)
    boards = group_boards(entries, FROZEN_FINGERPRINTS)
    shown_skipped = [(str(path.relative_to(results_dir)), reason) for path, reason in skipped]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.build-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)
        pages = write_site(boards, shown_skipped, staging, report_beside(results_dir))
        swap_in(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BuildReport(
        out_dir=out_dir, pages=[out_dir / page for page in pages], skipped=skipped,
        n_results=len(entries), n_boards=len(boards),
    )
