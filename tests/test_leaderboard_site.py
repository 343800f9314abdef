"""The static leaderboard build: grouping, skill, best marks, escaping, skipping and the atomic swap."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.leaderboard import LeaderboardError, build_site
from bench.leaderboard import site as site_module
from bench.leaderboard.board import group_boards, load_entries, skill_by_lead
from bench.leaderboard.charts import value_ticks
from bench.leaderboard.display import (
    column_decimals, format_parameters, format_skill, safe_link, slugify, units_label,
)
from bench.leaderboard.tables import SKILL_VIEWS, best_value, build_table, metric_view
from bench.task import FROZEN_FINGERPRINTS

try:
    from leaderboard_fixtures import (
        INJECTED_NAME, MULTIVAR_TASK, T2M_TASK, fabricate_results, populate_results, write_results_file,
    )
except ImportError:  # tests/ collected as a package
    from tests.leaderboard_fixtures import (
        INJECTED_NAME, MULTIVAR_TASK, T2M_TASK, fabricate_results, populate_results, write_results_file,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture results built once into a site: (fixture set, report)."""
    root = tmp_path_factory.mktemp("leaderboard")
    fixtures = populate_results(root / "results")
    return fixtures, build_site(fixtures.results_dir, root / "site")


def html_files(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def boards_of(results_dir: Path):
    entries, _ = load_entries(results_dir)
    return group_boards(entries, FROZEN_FINGERPRINTS)


def row_of(table, name: str):
    return next(row for row in table.rows if row.entry.name == name)


# --- small pure functions


def test_skill_is_one_minus_rmse_ratio_and_missing_where_undefined():
    assert skill_by_lead([0.6, None, 1.0, 2.0], [1.5, 1.0, 0.0, None]) == [pytest.approx(0.6), None, None, None]


def test_best_value_follows_the_metric_direction():
    assert best_value([0.3, 0.1, None], metric_view("rmse").better) == 0.1
    assert best_value([0.9, 0.95], metric_view("acc").better) == 0.95
    assert best_value([0.3, -0.1, 0.2], metric_view("bias").better) == -0.1
    assert best_value([1.0, 2.0], metric_view("spread").better) is None
    assert best_value([None, None], "lower") is None


def test_numbers_are_written_for_readers():
    assert column_decimals([0.33, 0.84]) == 4
    assert column_decimals([1.14, 2.64]) == 3
    assert column_decimals([150.0, 330.0]) == 1
    assert column_decimals([None]) == 2
    assert format_parameters(2_400_000) == "2.4M" and format_parameters(12_288) == "12.3k"
    assert format_parameters(None) == "—" and format_parameters(True) == "—"
    assert format_skill(0.6) == "+60.0" and format_skill(None) == "—"
    assert units_label("m**2 s**-2") == "m² s⁻²"


def test_slugs_and_links_are_safe():
    assert slugify(INJECTED_NAME) == "script-alert-1-script"
    assert slugify("../../etc/passwd") == "etc-passwd"
    assert slugify("<>", "submission") == "submission"
    assert safe_link("https://example.org/x") == "https://example.org/x"
    assert safe_link("javascript:alert(1)") is None
    assert safe_link(None) is None


def test_value_ticks_start_at_zero_and_cover_the_data():
    assert value_ticks(0.33, 2.64) == [0, 1, 2, 3]
    assert value_ticks(120, 640) == [0, 200, 400, 600, 800]


# --- boards and tables


def test_boards_never_mix_fingerprints(built):
    fixtures, _ = built
    boards = boards_of(fixtures.results_dir)
    keys = [(b.key.task_name, b.is_frozen_spec, sorted(e.name for e in b.entries)) for b in boards]
    assert keys == [
        (MULTIVAR_TASK, True, ["climatology", "persistence", "unet-multi"]),
        (T2M_TASK, True, sorted(["persistence", "climatology", "unet-small", "linear-regression", INJECTED_NAME,
                                 "gaussian-ensemble", "pca-codec"])),
        (T2M_TASK, False, ["old-spec-model"]),
    ]


def test_skill_against_references_of_the_same_board(built):
    fixtures, _ = built
    main, apart = [b for b in boards_of(fixtures.results_dir) if b.key.task_name == T2M_TASK]
    channel = main.channels[0]
    vs_persistence = build_table(main, "deterministic", channel, "physical", SKILL_VIEWS[0])
    # unet-small: RMSE 1.2 * 0.5 = 0.6 K at 24 h; persistence 1.2 * 1.25 = 1.5 K -> 1 - 0.6 / 1.5 = 0.6
    last = row_of(vs_persistence, "unet-small").cells[-1]
    assert last.value == pytest.approx(0.6) and last.text == "+60.0"
    vs_climatology = build_table(main, "deterministic", channel, "physical", SKILL_VIEWS[1])
    assert row_of(vs_climatology, "unet-small").cells[0].value == pytest.approx(1 - 0.33 / 2.64)
    # The other fingerprint's board has no references: skill is a dash, never borrowed from the main board.
    lone = build_table(apart, "deterministic", apart.channels[0], "physical", SKILL_VIEWS[0])
    assert [c.text for c in lone.rows[0].cells] == ["—"] * 4


def test_best_value_per_column_is_marked(built):
    fixtures, _ = built
    main = [b for b in boards_of(fixtures.results_dir) if b.key.task_name == T2M_TASK][0]
    channel = main.channels[0]
    rmse = build_table(main, "deterministic", channel, "physical", metric_view("rmse"))
    assert [row.entry.name for row in rmse.rows if any(c.is_best for c in row.cells)] == ["unet-small"]
    assert all(c.is_best for c in row_of(rmse, "unet-small").cells)
    acc = build_table(main, "deterministic", channel, "normalized", metric_view("acc"))
    assert all(c.is_best for c in row_of(acc, "unet-small").cells)
    # On the probabilistic tab the references are guests: shown for scale, never ranked or marked best.
    probabilistic = build_table(main, "probabilistic", channel, "physical", metric_view("rmse"))
    guests = [row for row in probabilistic.rows if row.is_guest]
    assert {row.entry.name for row in guests} == {"persistence", "climatology"}
    assert all(row.rank is None and not any(c.is_best for c in row.cells) for row in guests)


# --- the built site


def test_build_writes_overview_pages_maps_and_local_assets(built):
    fixtures, report = built
    site = report.out_dir
    assert report.pages[0] == site / "index.html"
    assert len(report.pages) == 1 + 11
    assert all(page.is_file() for page in report.pages)
    assert (site / "static" / "leaderboard.css").is_file() and (site / "static" / "leaderboard.js").is_file()
    maps = sorted(p for p in site.rglob("*.png") if "codec" not in p.parts)  # codec/: error-against-compression charts
    assert len(maps) == 8 + 3 * 5
    assert all(png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for png in maps)
    assert not list(site.parent.glob(".site.*")), "temp build dirs left behind"


def test_assets_are_local_so_the_site_opens_offline(built):
    _, report = built
    for page in html_files(report.out_dir):
        html = page.read_text()
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", html):
            assert "://" not in tag and "//" not in tag.replace("</", ""), (page, tag)
        for ref in re.findall(r'(?:src|href)="([^"#]+)', html):
            if "://" not in ref:
                assert (page.parent / ref).exists(), (page, ref)


def test_submission_text_is_escaped_everywhere(built):
    _, report = built
    pages = {page: page.read_text() for page in html_files(report.out_dir)}
    for page, html in pages.items():
        assert INJECTED_NAME not in html, page
        assert "<img src=x" not in html and "<b>Mallory" not in html, page
        assert 'href="javascript:' not in html, page
    index = pages[report.out_dir / "index.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    hostile = next(html for page, html in pages.items() if page.name == "script-alert-1-script.html")
    assert "&lt;img src=x onerror=alert(2)&gt;" in hostile
    assert "javascript:alert(3)" in hostile  # shown as text, not linked


def test_malformed_file_is_reported_by_name_and_skipped(built):
    fixtures, report = built
    assert report.skipped == [(fixtures.malformed, "metrics.2m_temperature.physical.rmse must have 4 values")]
    index = (report.out_dir / "index.html").read_text()
    assert "broken-model.json" in index and "must have 4 values" in index
    assert "broken-model.html" not in index


def test_other_fingerprint_is_labelled_and_kept_apart(built):
    _, report = built
    index = (report.out_dir / "index.html").read_text()
    articles = re.findall(r"<article.*?</article>", index, flags=re.S)
    apart = [a for a in articles if "old-spec-model" in a]
    assert len(apart) == 1
    assert "different task fingerprint" in apart[0] and "0ddba11c0ffee000" in apart[0]
    linked = {Path(href).name for href in re.findall(r'<td class="name"[^>]*><a href="([^"]+)"', apart[0])}
    assert linked == {"old-spec-model.html"}


def test_board_header_says_what_the_data_is(built):
    _, report = built
    index = (report.out_dir / "index.html").read_text()
    assert "Toy GCM simulation (not ERA5)" in index and "toy-gcm-64x32.zarr" in index
    # provenance: the command that re-derives the board, the harness version, no reproduce yet
    assert "bench reproduce --task era5-64x32-12to4-t2m --data toy-gcm-64x32.zarr" in index
    assert "results re-derived and equal by bench reproduce" in index


def _results_reproduced_on_2026_11_20(tmp_path: Path):
    """Fixture results and a reproduce report beside them that found every one equal on 2026-11-20."""
    fixtures = populate_results(tmp_path / "results")
    readable, _ = load_entries(fixtures.results_dir)
    entries = [{"task": e.results.task["name"], "submission": e.name, "status": "equal",
                "last_equal_at": "2026-11-20T10:00:00+00:00", "reproduced_at": "2026-11-20T10:00:00+00:00"}
               for e in readable]
    (tmp_path / "reproduce.json").write_text(json.dumps({"schema": "bench-reproduce/1", "data": {}, "entries": entries}))
    return fixtures, readable


def test_boards_and_pages_state_the_last_successful_reproduce(tmp_path):
    fixtures, _ = _results_reproduced_on_2026_11_20(tmp_path)
    report = build_site(fixtures.results_dir, tmp_path / "site")
    index = (report.out_dir / "index.html").read_text()
    assert "re-derived and equal (last on 2026-11-20)" in index
    page = next(p for p in report.pages if p.name == "unet-small.html").read_text()
    for text in ("bench reproduce --task era5-64x32-12to4-t2m --only unet-small --data toy-gcm-64x32.zarr",
                 "re-derived and equal on 2026-11-20", "Toy GCM simulation (not ERA5) (toy-gcm-64x32.zarr, fingerprint",
                 "61-day triangular window (WeatherBench 2)"):
        assert text in page, text


def test_a_result_scored_after_the_last_reproduce_is_not_claimed_equal(tmp_path):
    fixtures, readable = _results_reproduced_on_2026_11_20(tmp_path)
    rescored = next(e for e in readable if e.name == "unet-small")
    payload = json.loads(rescored.path.read_text())
    payload["provenance"]["evaluated_at"] = "2026-12-01T08:00:00+00:00"  # retrained and scored after that run
    rescored.path.write_text(json.dumps(payload))
    report = build_site(fixtures.results_dir, tmp_path / "site")
    page = next(p for p in report.pages if p.name == "unet-small.html").read_text()
    assert "scored on 2026-12-01, after the last bench reproduce (2026-11-20); not yet re-derived" in page
    assert "re-derived and equal on" not in page
    index = (report.out_dir / "index.html").read_text()
    board = next(a for a in re.findall(r"<article.*?</article>", index, flags=re.S) if "unet-small" in a)
    assert "re-derived and equal (last on" not in board and "results re-derived and equal by bench reproduce" in board


def test_submission_page_has_card_metrics_maps_and_provenance(built):
    _, report = built
    page = next(p for p in report.pages if p.name == "unet-small.html")
    html = page.read_text()
    for text in ("Ada Lovelace", "Apache-2.0", 'href="https://example.org/code"', "2.4M", "ERA5 1979-2014",
                 "5602fdc7e447f07d", "5eed0fda7a000001", "0123456789abcdef", "test CPU", "1 min 23 s",
                 "2024-05-01", "Skill vs persistence", "+60.0", 'src="unet-small/2m_temperature.png"'):
        assert text in html, text
    assert json.loads((page.with_suffix(".json")).read_text())["submission"]["name"] == "unet-small"


# --- failure handling and the atomic swap


def small_results(results_dir: Path, names=("persistence", "model-a")) -> Path:
    for name in names:
        write_results_file(results_dir, fabricate_results(name, with_error_maps=False))
    return results_dir


def test_unreadable_and_odd_files_are_skipped_not_fatal(tmp_path):
    results = small_results(tmp_path / "results")
    (results / T2M_TASK / "truncated.json").write_text('{"schema_version": 1, "submis')
    odd = fabricate_results("odd", with_error_maps=False)
    odd["metrics"] = {"2m_temperature": 5}
    write_results_file(results, odd)
    bad_map = fabricate_results("bad-map")
    bad_map["error_maps"]["2m_temperature"]["rmse"] = "not a grid"
    write_results_file(results, bad_map)
    report = build_site(results, tmp_path / "site")
    skipped = {path.name: reason for path, reason in report.skipped}
    assert set(skipped) == {"truncated.json", "odd.json"}
    assert "not readable JSON" in skipped["truncated.json"]
    html = (report.out_dir / "submissions" / T2M_TASK).rglob("bad-map.html")
    assert "No readable error map for: 2m temperature" in next(html).read_text()


def test_rebuild_replaces_the_whole_site(tmp_path):
    results = small_results(tmp_path / "results")
    out = tmp_path / "site"
    build_site(results, out)
    (out / "stale.html").write_text("old")
    report = build_site(results, out)
    assert not (out / "stale.html").exists()
    assert (out / "index.html").is_file() and report.out_dir == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]


def test_failed_build_leaves_the_previous_site_untouched(tmp_path, monkeypatch):
    results = small_results(tmp_path / "results")
    out = tmp_path / "site"
    build_site(results, out)
    before = (out / "index.html").read_text()
    write_results_file(results, fabricate_results("model-b", with_error_maps=False))

    def broken_render(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(site_module, "write_page", broken_render)
    with pytest.raises(RuntimeError, match="disk full"):
        build_site(results, out)
    assert (out / "index.html").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results", "site"]


def test_refuses_to_replace_a_folder_it_did_not_build(tmp_path):
    results = small_results(tmp_path / "results")
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(LeaderboardError, match="not empty"):
        build_site(results, foreign)
    with pytest.raises(LeaderboardError, match="would replace the results"):
        build_site(results, tmp_path)
    with pytest.raises(LeaderboardError, match="no results folder"):
        build_site(tmp_path / "missing", tmp_path / "site")
    assert (foreign / "thesis.tex").read_text() == "precious"


def test_empty_results_folder_builds_an_empty_overview(tmp_path):
    (tmp_path / "results").mkdir()
    report = build_site(tmp_path / "results", tmp_path / "site")
    assert report.pages == [tmp_path / "site" / "index.html"] and report.skipped == []
    assert "No results yet" in report.pages[0].read_text()


def test_same_name_twice_on_a_board_gets_two_pages(tmp_path):
    results = small_results(tmp_path / "results", names=("model-a",))
    write_results_file(results, fabricate_results("model-a", with_error_maps=False), file_name="model-a-rerun.json")
    report = build_site(results, tmp_path / "site")
    assert sorted(p.name for p in report.pages[1:]) == ["model-a-2.html", "model-a.html"]


def test_codec_tab_shows_reconstruction_columns_and_a_codec_page(built):
    fixtures, report = built
    index = (report.out_dir / "index.html").read_text()
    assert "data-codec-board" in index and "PSNR" in index and "Compression" in index and "32×" in index
    page = next(p for p in report.pages if p.name == "pca-codec.html").read_text()
    assert "Latent and compression" in page and "reconstruction RMSE map" in page and "RMSE against lead time" not in page
    assert list((report.out_dir / "codec").rglob("*.png"))  # error against compression ratio


def test_a_board_reads_its_init_times_from_a_forecast_even_when_a_codec_comes_first():
    from types import SimpleNamespace

    from bench.leaderboard.board import Board, BoardKey

    codec = SimpleNamespace(results=SimpleNamespace(data={"fingerprint": "f", "split": "test"}))
    forecast = SimpleNamespace(results=SimpleNamespace(data={"fingerprint": "f", "split": "test", "n_init_times": 1461}))
    board = Board(BoardKey("era5-64x32-12to4-t2m", "t", "f"), [codec, forecast])
    assert board.data["n_init_times"] == 1461
    assert Board(BoardKey("era5-64x32-12to4-t2m", "t", "f"), [codec]).data == codec.results.data
