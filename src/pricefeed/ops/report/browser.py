"""Headless Chromium for the report's PNG: found on this machine, started with nothing that phones home."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pricefeed.errors import PricefeedError
from pricefeed.ops.report.page import write_atomic

#: How Chromium is started: headless, no sandbox (root in CI), nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class BrowserNotFound(PricefeedError):
    """No Chromium to take the screenshot with."""


def find_chromium() -> str:
    """PRICEFEED_CHROMIUM, /usr/bin/chromium, or chromium / google-chrome on PATH; ``BrowserNotFound`` else."""
    configured = os.environ.get("PRICEFEED_CHROMIUM")
    if configured:
        if Path(configured).is_file():
            return configured
        raise BrowserNotFound(f"PRICEFEED_CHROMIUM={configured} does not exist")
    candidates = ["/usr/bin/chromium", *(shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    raise BrowserNotFound(
        "no Chromium found for --png: install one (`make chromium`, or `apt-get install chromium`) "
        "or point PRICEFEED_CHROMIUM at a Chromium/Chrome binary"
    )


def screenshot(html_path: Path, png_path: Path, *, width: int = 1400, timeout_s: float = 60) -> None:
    """A full-page PNG of the rendered report, taken in headless Chromium with every network request refused."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                           else route.abort())
                page.goto(html_path.resolve().as_uri())
                page.wait_for_selector("body[data-rendered]", timeout=timeout_s * 1000)
                if page.get_attribute("body", "data-rendered") != "true":
                    raise PricefeedError(f"the report's charts failed to render in Chromium; open {html_path} to see")
                image = page.screenshot(full_page=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise PricefeedError(f"Chromium at {executable} could not render the report: {exc}") from None
    write_atomic(png_path, image)
