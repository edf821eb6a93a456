"""The report's one self-contained HTML page: header figures, the coverage, failures and unknown symbols, charts."""

from __future__ import annotations

import html
import os
import tempfile
from datetime import datetime
from pathlib import Path

from pricefeed.istime import IST
from pricefeed.ops.report.figures import (
    GREEN,
    PURPLE,
    RED,
    TIMEFRAME_NAMES,
    HeatMap,
    candle_figure,
    heatmap,
    heatmap_figure,
    session_span,
    shade_gaps,
)
from pricefeed.ops.report.model import FailedDay, ReportData, date_span, summary, worst_first


def _chart_title(data: ReportData, symbol: str) -> str:
    return f"{symbol} — {TIMEFRAME_NAMES[data.timeframe]} bars, {_span_text(data)} (IST)"


def _span_text(data: ReportData) -> str:
    if data.one_day:
        return data.first.strftime("%a %d %b %Y")
    return f"{data.first:%d %b %Y} to {data.last:%d %b %Y}"


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1500px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:22px;margin:0 0 2px}h2{font-size:17px;margin:26px 0 6px}
.sub,.note{color:#5b6472}.note{margin:4px 0 8px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}
.card{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:8px 14px;min-width:130px}
.card b{display:block;font-size:22px}.card.bad b{color:#c0392b}.card.good b{color:#23803a}
.verdict{font-size:15px;font-weight:600}
section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:4px 16px 12px;margin-top:16px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{background:#f0f2f5;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{border-radius:4px;padding:0 5px;font-size:12px;color:#fff;background:#c0392b}.tag.ok{background:#23803a}
.key span{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:-1px;margin:0 4px 0 12px}
"""


#: Draws every figure from its JSON, then marks the page as rendered (what screenshots and tests wait for).
_SCRIPT = """
const figures = Array.from(document.querySelectorAll('script[type="application/json"][data-plot]'));
Promise.all(figures.map(s => Plotly.newPlot(s.dataset.plot, JSON.parse(s.textContent),
    {displaylogo: false, responsive: true})))
  .then(() => { document.body.dataset.rendered = 'true'; })
  .catch(e => { document.body.dataset.rendered = 'error'; console.error(e); });
"""


def render_html(data: ReportData) -> str:
    """The whole page: header, coverage heat-map and gaps, failures, charts; plotly.js inline."""
    from plotly.offline import get_plotlyjs

    grid = heatmap(data)
    body = "".join([
        _header(data),
        _coverage_section(data, grid),
        _failures_section(data),
        _charts_section(data),
        f'<p class="note">Times are IST (Asia/Kolkata); bars are stored as UTC instants. Source: '
        f"{_e(data.lake)}. Generated {datetime.now(IST):%Y-%m-%d %H:%M} IST by <code>pricefeed report</code>.</p>",
    ])
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>pricefeed report — {_e(date_span(data.first, data.last))}</title><style>{_CSS}</style>"
        f"<script>{get_plotlyjs()}</script></head><body><main>{body}</main><script>{_SCRIPT}</script></body></html>"
    )


def _e(value: object) -> str:
    return html.escape(str(value))


def _plot(div_id: str, fig, css_class: str = "plot") -> str:
    import plotly.io as pio

    figure = pio.to_json(fig, validate=False).replace("</", "<\\/")  # no "</script>" inside the script
    return (
        f'<div id="{div_id}" class="{css_class}"></div>'
        f'<script type="application/json" data-plot="{div_id}">{figure}</script>'
    )


def _header(data: ReportData) -> str:
    s = summary(data)
    cards = [
        ("symbols", f"{s['symbols']:,}", ""),
        ("symbol-days complete", f"{s['complete']:,}", "good"),
        ("symbol-days with gaps", f"{s['with_gaps']:,}", "bad" if s["with_gaps"] else "good"),
        ("symbol-days failed (no data)", f"{s['failed']:,}", "bad" if s["failed"] else "good"),
        ("minutes missing", f"{s['missing_minutes']:,}", "bad" if s["missing_minutes"] else "good"),
        ("unknown symbols", f"{s['unknown']:,}", "bad" if s["unknown"] else "good"),
    ]
    html_cards = "".join(
        f'<div class="card {cls}" data-stat="{_e(label)}"><b>{value}</b>{_e(label)}</div>'
        for label, value, cls in cards
    )
    return (
        f'<h1>pricefeed data report — {_e(_span_text(data))}</h1>'
        f'<div class="sub">IST trading date{"" if data.one_day else "s"} {_e(date_span(data.first, data.last))}; '
        f"1-minute history from Fyers, as stored in the lake</div>"
        f'<div class="cards">{html_cards}</div><p class="verdict" id="verdict">{_e(_verdict(s))}</p>'
    )


def _verdict(s: dict) -> str:
    if not (s["with_gaps"] or s["failed"] or s["unknown"]):
        return f"All {s['symbols']:,} symbols are complete: every session minute has a bar."
    parts = []
    if s["with_gaps"]:
        parts.append(f"{s['with_gaps']:,} symbol-day(s) have gaps")
    if s["failed"]:
        parts.append(f"{s['failed']:,} symbol-day(s) failed and have no bars")
    if s["unknown"]:
        parts.append(f"{s['unknown']:,} symbol(s) are unknown to Fyers")
    share = s["missing_minutes"] / s["expected_minutes"] if s["expected_minutes"] else 0
    missing = f" {s['missing_minutes']:,} minutes missing ({share:.1%} of the sessions)." if share else ""
    return f"Attention: {'; '.join(parts)}.{missing}"


def _coverage_section(data: ReportData, grid: HeatMap) -> str:
    if data.one_day:
        what = ("Each row is a symbol, each column a minute of the NSE session. Hover a cell for the symbol and "
                "the minute.")
        key = (f'<span style="background:{GREEN}"></span>1-minute bar stored<span style="background:{RED}">'
               f'</span>minute missing<span style="background:{PURPLE}"></span>ticker failed, nothing stored')
    else:
        what = "Each row is a symbol, each column a trading day; the colour is the share of the session missing."
        key = (f'<span style="background:{GREEN}"></span>complete<span style="background:{RED}"></span>'
               "whole session missing (or failed)")
    note = f'<p class="note" id="heatmap-note">{_e(grid.note)}</p>' if grid.note else ""
    return (
        f'<section id="coverage"><h2>Coverage: {grid.total_symbols:,} symbols, worst first</h2>'
        f'<p class="note">{what}</p><p class="note key">{key}</p>{note}'
        f'{_plot("coverage-heatmap", heatmap_figure(data, grid))}{_gaps_table(data)}</section>'
    )


def _gaps_table(data: ReportData, limit: int = 100) -> str:
    gaps = [r for r in worst_first(data.coverage) if not r.complete]
    if not gaps:
        return '<p class="note">No symbol-day in the ledger misses a minute.</p>'
    rows = "".join(
        f'<tr data-symbol="{_e(r.symbol)}"><td>{_e(r.symbol)}</td><td>{r.trading_date}</td>'
        f'<td class="num">{r.missing_minutes:,} of {r.expected_minutes:,}</td>'
        f"<td>{_e(', '.join(r.missing_ranges))}</td></tr>"
        for r in gaps[:limit]
    )
    more = f'<p class="note">… and {len(gaps) - limit:,} more.</p>' if len(gaps) > limit else ""
    return (
        f"<h2>Symbol-days with gaps ({len(gaps):,})</h2>"
        '<table id="gaps"><tr><th>symbol</th><th>IST date</th><th>minutes missing</th>'
        f"<th>missing ranges (IST, end exclusive)</th></tr>{rows}</table>{more}"
    )


def _failures_section(data: ReportData) -> str:
    intro = ("Tickers whose ingest failed for good: the run went on without them and left a dead letter "
             "(<code>ohlcv/errors/</code>). A later successful run is noted.")
    if data.failures:
        rows = "".join(_failure_row(f) for f in data.failures)
        table = (
            '<table id="failures"><tr><th>symbol</th><th>IST date</th><th>error</th><th>reason</th>'
            f'<th>attempts</th><th>failed at (IST)</th><th>status</th></tr>{rows}</table>'
        )
    else:
        table = '<p class="note" id="failures">No ticker failed.</p>'
    return (
        f'<section id="failures-section"><h2>Failures ({len(data.failures):,})</h2><p class="note">{intro}</p>'
        f"{table}{_unknown_table(data)}</section>"
    )


def _failure_row(f: FailedDay) -> str:
    status = ('<span class="tag ok">stored by a later run</span>' if f.stored_later
              else '<span class="tag">no bars</span>')
    runs = f" ({f.runs} runs failed)" if f.runs > 1 else ""
    attempts = "" if f.attempts is None else f.attempts
    return (
        f'<tr data-symbol="{_e(f.symbol)}"><td>{_e(f.symbol)}</td><td>{f.trading_date}</td><td>{_e(f.error_type)}</td>'
        f'<td>{_e(f.reason)}</td><td class="num">{attempts}</td><td>{_e(f.failed_at)}{runs}</td><td>{status}</td></tr>'
    )


def _unknown_table(data: ReportData) -> str:
    if not data.unknown:
        return '<h2>Unknown symbols (0)</h2><p class="note">Every listed symbol is in the Fyers symbol master.</p>'
    rows = "".join(
        f'<tr data-symbol="{_e(f.symbol)}"><td>{_e(f.symbol)}</td><td>{f.trading_date}</td><td>{_e(f.reason)}</td></tr>'
        for f in data.unknown
    )
    return (
        f"<h2>Unknown symbols ({len({f.symbol for f in data.unknown}):,})</h2>"
        '<p class="note">In the ticker list but not in the Fyers symbol master (misspelt, renamed or delisted): '
        "no history was requested. Fix the ticker list.</p>"
        f'<table id="unknown"><tr><th>symbol</th><th>IST date</th><th>reason</th></tr>{rows}</table>'
    )


def _charts_section(data: ReportData) -> str:
    parts = []
    for i, (symbol, bars) in enumerate(data.charts.items()):
        if bars:
            fig = candle_figure(symbol, bars, data.timeframe, _chart_title(data, symbol), session_span(data, symbol))
            shade_gaps(fig, data, symbol)
            parts.append(f'<div class="chart" data-symbol="{_e(symbol)}">{_plot(f"chart-{i}", fig, "plot candles")}'
                         "</div>")
        else:
            parts.append(f'<p class="note" data-symbol="{_e(symbol)}">{_e(symbol)}: no bars stored for '
                         f"{_e(date_span(data.first, data.last))}.</p>")
    if not parts:
        parts.append('<p class="note">No symbol has bars to chart.</p>')
    with_bars = {r.symbol for r in data.coverage if r.expected_minutes > r.missing_minutes}
    charted = len([s for s in data.charts if s in with_bars])
    which = (
        f"{charted} of the {len(with_bars):,} symbols with bars are charted (by default the worst-covered); "
        "chart others with <code>pricefeed report --symbols NSE:SBIN-EQ,…</code>."
        if charted < len(with_bars) else "Every symbol with bars is charted."
    )
    return (
        f'<section id="charts"><h2>Price and volume ({TIMEFRAME_NAMES[data.timeframe]} bars)</h2>'
        '<p class="note">Candles: green = close above open, red = below; volume underneath. '
        f'<span id="charted">{which}</span></p>'
        f'{"".join(parts)}</section>'
    )


def write_atomic(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder: never half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary open() would have made it, not mkstemp's 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
