"""`pricefeed report`: a self-contained HTML (and PNG) report of an exported lake: coverage, failures, charts."""

from __future__ import annotations

from pathlib import Path

import typer

from pricefeed.cli.common import LAKE, LIVE, PROFILE, REGION, console, fail, lake_of
from pricefeed.errors import PricefeedError


def report(
    date_: str = typer.Option(None, "--date", help="One IST trading date YYYY-MM-DD (default: the lake's newest)."),
    from_: str = typer.Option(None, "--from", help="First IST date of a range (with --to)."),
    to: str = typer.Option(None, "--to", help="Last IST date of a range (with --from)."),
    symbols: str = typer.Option(None, help="Comma-separated symbols to chart, e.g. NSE:SBIN-EQ,INFY-EQ "
                                "(default: the worst-covered ones)."),
    lake: Path = LAKE,
    out: Path = typer.Option(Path("report.html"), help="Where to write the HTML report."),
    png: Path = typer.Option(None, help="Also write a screenshot of the rendered report (needs Chromium)."),
    live: bool = LIVE,
    stack: str = typer.Option(None, "--stack", help="A deployed stack's name: report on its lake (implies --live)."),
    profile: str = PROFILE,
    region: str = REGION,
) -> None:
    """One HTML page (opens offline) with the coverage heat-map, the failed and unknown tickers, and charts."""
    from pricefeed.ops.report.browser import screenshot
    from pricefeed.ops.report.lake_reader import gather
    from pricefeed.ops.report.model import summary
    from pricefeed.ops.report.page import render_html, write_atomic

    lake = lake_of(lake, live=live, stack=stack, profile=profile, region=region)
    try:
        data = gather(lake, day=date_, first=from_, last=to, symbols=symbols)
        page = render_html(data)
    except PricefeedError as exc:
        fail(exc)
        return
    write_atomic(out, page.encode("utf-8"))
    s = summary(data)
    console.print(
        f"report for {data.first}{'' if data.one_day else f' .. {data.last}'}: {s['symbols']} symbol(s), "
        f"{s['complete']} complete / {s['with_gaps']} with gaps / {s['failed']} failed symbol-day(s), "
        f"{s['missing_minutes']:,} minute(s) missing, {s['unknown']} unknown symbol(s)"
    )
    console.print(f"wrote [bold]{out}[/] ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    if png is not None:
        try:
            screenshot(out, png)
        except PricefeedError as exc:
            console.print(f"the HTML report is written to {out}; no PNG:")
            fail(exc)
        console.print(f"wrote [bold]{png}[/]")
