"""PNG screenshots of built pages in headless Chromium (for the README and for checking the look)."""
from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# No network, no background services: the site is self-contained and the machine may be offline.
CHROMIUM_ARGS = (
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
)


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 900, full_page: bool = False) -> None:
    """Open ``page`` (a built HTML file, or a URL) and save what a reader sees to ``png``."""
    from playwright.sync_api import sync_playwright  # only screenshots need a browser

    url = page if isinstance(page, str) and "://" in page else Path(page).resolve().as_uri()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS))
        try:
            tab = browser.new_page(viewport={"width": width, "height": height})
            tab.goto(url, wait_until="load")
            tab.screenshot(path=str(png), full_page=full_page)
        finally:
            browser.close()
