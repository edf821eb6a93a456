"""`pricefeed report` over a lake the workflow really wrote: one ticker dead-lettered by a Fyers outage, one
unknown to Fyers, three stored. The page is opened in headless Chromium with the network cut off."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pricefeed.cli.main import app
from pricefeed.local.run import export, start_execution, wait_for

DAY = date(2026, 11, 4)  # a Wednesday no other e2e test runs
STORED = ["NSE:INFY-EQ", "NSE:ITC-EQ", "NSE:SBIN-EQ"]
FAILING, UNKNOWN = "NSE:AXISBANK-EQ", "NSE:NOSUCHRPT-EQ"
PRICEFEED = str(Path(sys.executable).with_name("pricefeed"))


def _run(pipeline, tmp_path: Path, symbols: list[str]) -> dict:
    csv = tmp_path / f"tickers-{len(symbols)}.csv"
    csv.write_text("symbol\n" + "".join(f"{s}\n" for s in symbols))
    return wait_for(pipeline.stack, start_execution(pipeline.stack, DAY, csv), timeout_s=300)


@pytest.fixture(scope="module")
def lake(pipeline, tmp_path_factory) -> Path:
    """Two runs of DAY, exported: AXISBANK alone through an outage longer than the retry policy (dead letter),
    then three good tickers and one Fyers does not list."""
    tmp = tmp_path_factory.mktemp("report")
    pipeline.sim.set_faults(fail_next_5xx=15)  # 5 invocations x 3 client attempts: every one fails
    try:
        assert _run(pipeline, tmp, [FAILING])["status"] == "SUCCEEDED"
    finally:
        pipeline.sim.set_faults(fail_next_5xx=0)
    assert _run(pipeline, tmp, [*STORED, UNKNOWN])["status"] == "SUCCEEDED"
    export(pipeline.stack, tmp / "lake")
    return tmp / "lake"


@pytest.fixture(scope="module")
def written(lake, tmp_path_factory) -> tuple[Path, Path, str]:
    """The command run as a user runs it (its own process: Playwright's sync API wants its own thread)."""
    out = tmp_path_factory.mktemp("out")
    html, png = out / "report.html", out / "report.png"
    args = ["report", "--lake", str(lake), "--date", DAY.isoformat(), "--symbols", "SBIN-EQ,NSE:ITC-EQ"]
    done = subprocess.run(
        [PRICEFEED, *args, "--out", str(html), "--png", str(png)], capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return html, png, " ".join(done.stdout.split())


def test_the_command_summarises_the_day_and_writes_both_files(written):
    html, png, said = written

    assert "report for 2026-11-04: 4 symbol(s), 3 complete / 0 with gaps / 1 failed symbol-day(s)" in said
    assert "375 minute(s) missing, 1 unknown symbol(s)" in said
    assert f"wrote {html}" in said and f"wrote {png}" in said
    assert 4_000_000 < html.stat().st_size < 7_000_000
    # --symbols chose two of the three with bars: the page says so, and how to chart the others
    assert "2 of the 3 symbols with bars are charted" in html.read_text(encoding="utf-8")


def test_the_png_is_a_full_page_screenshot(written):
    png = written[1].read_bytes()

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width == 1400 and 1500 < height < 6000
    assert len(png) > 50_000


@pytest.fixture(scope="module")
def page(written, browser, artifacts):
    """The report in headless Chromium; every request is recorded and anything but file:// refused."""
    html = written[0]
    tab = browser.new_page(viewport={"width": 1400, "height": 900})
    requests, errors = [], []
    tab.route("**/*", lambda route: (requests.append(route.request.url),
                                     route.continue_() if route.request.url.startswith("file:") else route.abort()))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.goto(html.as_uri())
    tab.wait_for_selector('body[data-rendered="true"]', timeout=60_000)
    shutil.copyfile(html, artifacts / "report.html")
    tab.screenshot(path=str(artifacts / "report.png"), full_page=True)
    yield tab, requests, errors
    tab.close()


def test_the_page_is_self_contained_and_renders_without_errors(page):
    tab, requests, errors = page

    assert [u for u in requests if not u.startswith("file:")] == []
    assert errors == []
    assert tab.title() == "pricefeed report — 2026-11-04"
    cards = {c.split("\n")[1]: c.split("\n")[0] for c in tab.locator(".card").all_inner_texts()}
    assert cards["symbols"] == "4" and cards["symbol-days failed (no data)"] == "1" and cards["unknown symbols"] == "1"


def test_the_heatmap_has_a_row_per_symbol_the_failed_one_on_top(page):
    tab = page[0]

    rows = tab.evaluate("document.getElementById('coverage-heatmap').data[0].y")
    labels = tab.locator("#coverage-heatmap .ytick text").evaluate_all(
        "els => els.map(e => [e.getBoundingClientRect().top, e.textContent])"
    )
    drawn = [name for _, name in sorted(labels)]  # top to bottom, as a reader sees them
    top_row = tab.evaluate("document.getElementById('coverage-heatmap').data[0].text[0][0]")

    assert rows == [FAILING, *STORED] and drawn == rows
    assert top_row == "FAILED: TransientFyersError (no bars stored)"
    assert tab.evaluate("document.getElementById('coverage-heatmap').data[0].x.length") == 375


def test_the_failures_table_names_the_dead_lettered_ticker_and_why(page):
    tab = page[0]

    row = tab.locator(f'#failures tr[data-symbol="{FAILING}"] td').all_inner_texts()
    unknown = tab.locator("#unknown").inner_text()

    assert row[:3] == [FAILING, "2026-11-04", "TransientFyersError"]
    assert row[3].startswith("server error; HTTP 5"), row[3]  # the simulated outage: 500, 502 or 503
    assert row[4] == "5" and row[6] == "no bars"
    assert UNKNOWN in unknown and "symbol master" in unknown


def test_a_candlestick_chart_renders_for_each_chosen_symbol_in_ist(page):
    tab = page[0]

    charted = tab.locator(".chart").evaluate_all("els => els.map(e => e.dataset.symbol)")
    sbin = tab.locator('.chart[data-symbol="NSE:SBIN-EQ"] .js-plotly-plot')
    kinds = sbin.evaluate("el => el.data.map(t => t.type)")
    first_bar = sbin.evaluate("el => el.data[0].x[0]")
    candles = tab.locator('.chart[data-symbol="NSE:SBIN-EQ"] .boxlayer path').count()

    assert charted == ["NSE:SBIN-EQ", "NSE:ITC-EQ"]
    assert kinds == ["candlestick", "bar"]
    assert first_bar.startswith("2026-11-04T09:15:00")  # 03:45 UTC, shown as the IST bar start
    assert candles == 75  # 5-minute bars, 09:15-15:30
    assert sbin.locator(".gtitle").text_content() == "NSE:SBIN-EQ — 5-minute bars, Wed 04 Nov 2026 (IST)"


def test_an_unknown_symbol_or_date_is_named_and_nothing_is_written(lake, tmp_path):
    out = tmp_path / "report.html"
    base = ["report", "--lake", str(lake), "--out", str(out)]

    symbol = CliRunner().invoke(app, [*base, "--date", DAY.isoformat(), "--symbols", "NSE:NOTHERE-EQ"])
    day = CliRunner().invoke(app, [*base, "--date", "2026-11-05", "--symbols", "NSE:SBIN-EQ"])

    assert symbol.exit_code == 2 and "NSE:NOTHERE-EQ" in " ".join(symbol.output.split())
    assert day.exit_code == 2 and "no data" in day.output and "2026-11-05" in day.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
