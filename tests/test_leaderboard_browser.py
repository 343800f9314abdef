"""The built leaderboard driven in headless Chromium: loads clean, sorts, switches tabs, links, escapes."""
from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

import pytest

from bench.leaderboard import build_site
from bench.leaderboard.screenshot import CHROMIUM, CHROMIUM_ARGS

try:
    from leaderboard_fixtures import INJECTED_NAME, populate_results
except ImportError:  # tests/ collected as a package
    from tests.leaderboard_fixtures import INJECTED_NAME, populate_results


def require_browser() -> None:
    """Skip without Chromium or Playwright on a workstation; on CI (env CI set) that is a failure."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is not installed"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "the playwright package is not installed"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need Chromium and Playwright on CI: {missing}")
        pytest.skip(missing)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request to stderr."""

    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("leaderboard-browser")
    fixtures = populate_results(root / "results")
    return build_site(fixtures.results_dir, root / "site").out_dir


@pytest.fixture(scope="module")
def base_url(site):
    """The built site served on 127.0.0.1 at a free port, for the module's lifetime."""
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        yield chromium
        chromium.close()


class Watched:
    """A page with its console errors, uncaught exceptions, dialogs and requested URLs recorded."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("dialog", self.on_dialog)
        page.on("request", lambda request: self.requests.append(request.url))

    def on_dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def watched(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield Watched(context.new_page())
    context.close()


def visible_table(page):
    return page.locator(".panel:visible .table-wrap:visible table").first


def row_names(page) -> list[str]:
    return visible_table(page).locator("tbody td.name a").all_inner_texts()


def test_overview_loads_without_console_errors_or_outside_requests(watched, base_url):
    watched.page.goto(base_url + "index.html")
    assert watched.page.locator(".board:visible").count() == 2  # the released spec's board and the other fingerprint's
    assert watched.errors == []
    assert watched.requests and all(url.startswith(base_url) for url in watched.requests)


def test_site_works_from_a_file_url(watched, site):
    watched.page.goto((site / "index.html").as_uri())
    watched.page.get_by_role("tab", name="Codec reconstruction").click()
    assert row_names(watched.page) == ["pca-codec"]  # the codec table: codecs only, no forecast references
    assert watched.errors == []


def test_sorting_a_column_reorders_rows(watched, base_url):
    page = watched.page
    page.goto(base_url + "index.html")
    # the ensemble's mean is on the deterministic board too (issue 12)
    ranked = ["unet-small", "gaussian-ensemble", "linear-regression", INJECTED_NAME, "persistence", "climatology"]
    assert row_names(page) == ranked
    table = visible_table(page)
    table.get_by_role("button", name="Submission").click()
    assert row_names(page) == [
        INJECTED_NAME, "climatology", "gaussian-ensemble", "linear-regression", "persistence", "unet-small"
    ]
    assert table.locator("th.name").get_attribute("aria-sort") == "ascending"
    table.get_by_role("button", name="12 h").click()  # lower is better: best first
    assert row_names(page) == ranked
    table.get_by_role("button", name="12 h").click()
    assert row_names(page) == ranked[::-1]
    assert table.locator("th.lead").nth(1).get_attribute("aria-sort") == "descending"


def test_tabs_and_view_controls_switch_what_is_shown(watched, base_url):
    page = watched.page
    page.goto(base_url + "index.html")
    page.get_by_role("tab", name="Probabilistic").click()
    assert row_names(page) == ["gaussian-ensemble", "persistence", "climatology"]
    assert page.url.endswith("#probabilistic/era5-64x32-12to4-t2m")
    page.locator(".board:visible").first.get_by_role("button", name="CRPS").click()
    assert "CRPS (K)" in visible_table(page).locator("caption").inner_text()

    page.get_by_role("tab", name="Deterministic forecast").click()
    page.get_by_role("tab", name="multi-variable").click()
    assert row_names(page) == ["unet-multi", "persistence", "climatology"]
    board = page.locator(".board:visible").first
    board.get_by_role("button", name="geopotential 500").click()
    assert "geopotential 500" in visible_table(page).locator("caption").inner_text()
    assert "m² s⁻²" in visible_table(page).locator("caption").inner_text()
    board.get_by_role("button", name="Normalized").click()
    assert "normalized" in visible_table(page).locator("caption").inner_text()
    assert board.locator("figure.chart:visible").count() == 5
    assert board.locator("figure.chart:visible[data-space='normalized']").count() == 5
    board.get_by_role("button", name="Skill vs persistence").click()
    assert visible_table(page).locator("td.best").count() == 4
    assert watched.errors == []


def test_submission_page_opens_from_its_row_and_links_back(watched, base_url):
    page = watched.page
    page.goto(base_url + "index.html#deterministic/era5-64x32-12to4-multivar")
    page.locator(".panel:visible").get_by_role("link", name="unet-multi").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/unet-multi.html")
    assert page.locator("h1").inner_text() == "unet-multi"
    images = page.locator(".map img")
    assert images.count() == 5
    for i in range(5):
        images.nth(i).scroll_into_view_if_needed()
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    page.get_by_role("link", name="← Leaderboard").click()
    page.wait_for_load_state("load")
    assert page.get_by_role("tab", name="multi-variable").get_attribute("aria-selected") == "true"
    assert watched.errors == []


def test_injected_name_shows_as_text_and_never_runs(watched, base_url):
    page = watched.page
    page.goto(base_url + "index.html")
    link = page.locator(".panel:visible").get_by_role("link", name=INJECTED_NAME).first
    assert link.inner_text() == INJECTED_NAME
    link.click()
    page.wait_for_load_state("load")
    assert page.locator("h1").inner_text() == INJECTED_NAME
    assert page.get_by_text("<img src=x onerror=alert(2)>").count() == 1
    assert page.get_by_text("javascript:alert(3)").evaluate("node => node.closest('a')") is None
    assert page.locator("script").count() == 2  # the site's own: the js-class line and leaderboard.js
    assert watched.dialogs == [] and watched.errors == []
