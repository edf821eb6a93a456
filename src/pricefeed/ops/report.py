"""`pricefeed report`: one self-contained HTML page (and optionally a PNG of it) about an exported lake.

For an IST date (or a range) it shows what a trader asks first: how complete the data is (a heat-map of
symbols x session minutes, or symbols x days for a range, worst first), which tickers failed and why
(the dead letters), which symbols Fyers does not know, and candlestick charts with volume of a few
symbols. Everything is read from an exported lake (``<lake>/raw/<raw key>``, ``<lake>/processed/<key>``,
as ``make demo`` / ``pricefeed local run --export`` leave it).

The page carries plotly.js inline (about 4.8 MB, once for every chart): it opens offline, from a mail
attachment or a CI artefact, and keeps hover and zoom, which a trader uses to read off a gap's minutes.
``gather`` reads (and validates the request), ``render_html`` renders, ``screenshot`` drives Chromium.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from pricefeed.errors import InvalidInput, PricefeedError
from pricefeed.istime import IST, parse_date
from pricefeed.lake.paths import COVERAGE_ROOT, DEAD_LETTER_ROOT, processed_key
from pricefeed.symbol import split_symbol

#: The heat-map shows at most this many symbols (worst first); a note counts the others.
MAX_HEATMAP_ROWS = 150
#: Candlestick charts drawn when ``--symbols`` is not given (the worst-covered symbols that have bars).
DEFAULT_CHARTS = 3
#: Cell values of the one-day heat-map.
STORED, MISSING, FAILED = 0, 1, 2
STATUS_TEXT = {STORED: "stored", MISSING: "MISSING", FAILED: "FAILED (no data)"}
#: Error type of a dead letter the plan writes for a symbol Fyers does not list.
UNKNOWN_SYMBOL_ERROR = "InvalidSymbol"
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
_GREEN, _RED, _PURPLE = "#b7e1b0", "#d62728", "#5b2a86"


class BrowserNotFound(PricefeedError):
    """No Chromium to take the screenshot with."""


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CoverageRow:
    """One ledger row: a symbol-day and its session/missing minutes as IST ``"HH:MM-HH:MM"`` ranges."""

    symbol: str  # "NSE:SBIN-EQ"
    trade_date: date
    sessions: tuple[str, ...]
    expected_minutes: int
    missing_minutes: int
    missing_ranges: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.missing_minutes == 0


@dataclass(frozen=True)
class Failure:
    """The newest dead letter of one symbol-day, how many runs failed on it, and whether bars came later."""

    symbol: str
    trade_date: date
    error_type: str
    reason: str
    attempts: int | None
    failed_at: str  # IST, "2026-11-25 16:20"
    run_id: str
    runs: int = 1
    stored_later: bool = False

    @property
    def unknown_symbol(self) -> bool:
        return self.error_type == UNKNOWN_SYMBOL_ERROR


@dataclass(frozen=True)
class Bar:
    ist: datetime  # bar start, naive IST wall clock
    open: float
    high: float
    low: float
    close: float
    volume: int


@dataclass
class ReportData:
    lake: Path
    first: date
    last: date
    coverage: list[CoverageRow]
    failures: list[Failure]  # tickers that failed to ingest (not the unknown symbols)
    unknown: list[Failure]  # symbols not in the Fyers symbol master
    timeframe: str
    charts: dict[str, list[Bar]] = field(default_factory=dict)

    @property
    def one_day(self) -> bool:
        return self.first == self.last


def gather(
    lake: Path, *, day: str | None = None, first: str | None = None, last: str | None = None,
    symbols: str | None = None,
) -> ReportData:
    """Everything the report shows; ``InvalidInput`` naming the problem (no lake, no data, unknown symbol)."""
    _check_lake(lake)
    start, end = _dates(lake, day, first, last)
    coverage = read_coverage(lake, start, end)
    letters = read_dead_letters(lake, start, end, stored={(r.symbol, r.trade_date) for r in coverage})
    if not coverage and not letters:
        raise InvalidInput(f"report: no data in {lake} for {_span(start, end)} (the ledger has {_ledger_span(lake)})")
    timeframe = "5m" if start == end else "1d"
    data = ReportData(
        lake, start, end, coverage,
        failures=[f for f in letters if not f.unknown_symbol], unknown=[f for f in letters if f.unknown_symbol],
        timeframe=timeframe,
    )
    data.charts = {s: read_bars(lake, s, timeframe, start, end) for s in _chart_symbols(data, symbols)}
    return data


def _check_lake(lake: Path) -> None:
    if not lake.is_dir():
        raise InvalidInput(f"report: no lake at {lake}: run `make demo` or `pricefeed local run --export {lake}` first")
    if not _ledger_dates(lake):
        raise InvalidInput(
            f"report: no coverage ledger under {lake / 'processed' / COVERAGE_ROOT}: "
            f"export a finished run there (`pricefeed local run --export {lake}`)"
        )


def _dates(lake: Path, day: str | None, first: str | None, last: str | None) -> tuple[date, date]:
    if day and (first or last):
        raise InvalidInput("report: give either --date or --from/--to, not both")
    if bool(first) != bool(last):
        raise InvalidInput("report: give both --from and --to (or --date for one day)")
    if day:
        one = parse_date(day, what="--date")
        return one, one
    if first:
        start, end = parse_date(first, what="--from"), parse_date(last, what="--to")
        if end < start:
            raise InvalidInput(f"report: --to {end} is before --from {start}")
        return start, end
    newest = max(_ledger_dates(lake))
    return newest, newest


def _ledger_dates(lake: Path) -> set[date]:
    """IST dates that have a coverage partition (from the directory names: no file is read)."""
    root = lake / "processed" / COVERAGE_ROOT
    found = set()
    for folder in root.glob("exchange=*/symbol=*/year=*/month=*/day=*"):
        y, m, d = (folder.parts[i].split("=", 1)[1] for i in (-3, -2, -1))
        try:
            found.add(date(int(y), int(m), int(d)))
        except ValueError:
            continue
    return found


def _ledger_span(lake: Path) -> str:
    dates = sorted(_ledger_dates(lake))
    return _span(dates[0], dates[-1]) if dates else "no dates"


def _span(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start} .. {end}"


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _day_glob(day: date) -> str:
    return f"year={day.year:04d}/month={day.month:02d}/day={day.day:02d}"


def read_coverage(lake: Path, start: date, end: date) -> list[CoverageRow]:
    """The ledger rows of ``start .. end`` (only those days' partitions are read)."""
    import pyarrow.parquet as pq

    root = lake / "processed" / COVERAGE_ROOT
    rows = []
    for day in _days(start, end):
        for path in sorted(root.glob(f"exchange=*/symbol=*/{_day_glob(day)}/*.parquet")):
            columns = ["exchange", "symbol", "trade_date", "sessions", "expected_minutes", "missing_minutes",
                       "missing_ranges"]
            rows += [_coverage_row(r) for r in pq.ParquetFile(path).read(columns=columns).to_pylist()]
    return rows


def _coverage_row(r: dict) -> CoverageRow:
    return CoverageRow(
        symbol=f"{r['exchange']}:{r['symbol']}",
        trade_date=r["trade_date"],
        sessions=tuple(r["sessions"] or ()),
        expected_minutes=int(r["expected_minutes"]),
        missing_minutes=int(r["missing_minutes"]),
        missing_ranges=tuple(r["missing_ranges"] or ()),
    )


def read_dead_letters(lake: Path, start: date, end: date, *, stored: set[tuple[str, date]]) -> list[Failure]:
    """One :class:`Failure` per symbol-day of ``start .. end`` that has dead letters (the newest one wins)."""
    root = lake / "raw" / DEAD_LETTER_ROOT
    by_day: dict[tuple[str, date], list[dict]] = {}
    for day in _days(start, end):
        for path in root.glob(f"symbol=*/{_day_glob(day)}/failed-*.json"):
            letter = json.loads(path.read_text(encoding="utf-8"))
            symbol = str(letter.get("symbol") or path.parts[-5].split("=", 1)[1])
            by_day.setdefault((symbol, day), []).append(letter)
    failures = [_failure(sym, day, letters, (sym, day) in stored) for (sym, day), letters in by_day.items()]
    return sorted(failures, key=lambda f: (f.trade_date, f.symbol))


def _failure(symbol: str, day: date, letters: list[dict], stored_later: bool) -> Failure:
    newest = max(letters, key=lambda x: str(x.get("failed_at", "")))
    return Failure(
        symbol=symbol,
        trade_date=day,
        error_type=str(newest.get("error_type") or "unknown error"),
        reason=str(newest.get("error_message", "")).split(": ", 1)[-1][:300],
        attempts=newest.get("attempts"),
        failed_at=_ist_stamp(newest.get("failed_at")),
        run_id=str(newest.get("run_id", "")),
        runs=len(letters),
        stored_later=stored_later,
    )


def _ist_stamp(value: object) -> str:
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return moment.replace(tzinfo=moment.tzinfo or UTC).astimezone(IST).strftime("%Y-%m-%d %H:%M")


def read_bars(lake: Path, symbol: str, timeframe: str, start: date, end: date) -> list[Bar]:
    """The stored bars of ``symbol`` (``EXCH:NAME``) at ``timeframe``, oldest first, bar starts in IST."""
    import pyarrow.parquet as pq

    exchange, name = split_symbol(symbol)
    bars = []
    for day in _days(start, end):
        path = lake / "processed" / processed_key(timeframe, exchange, name, day)
        if path.is_file():
            table = pq.ParquetFile(path).read(columns=["ts", "open", "high", "low", "close", "volume"])
            bars += [_bar(r) for r in table.to_pylist()]
    return sorted(bars, key=lambda b: b.ist)


def _bar(r: dict) -> Bar:
    ist = r["ts"].astimezone(IST).replace(tzinfo=None)
    return Bar(ist, r["open"], r["high"], r["low"], r["close"], int(r["volume"]))


def _chart_symbols(data: ReportData, wanted: str | None) -> list[str]:
    """``--symbols`` checked against the lake, else the worst-covered symbols that stored anything."""
    known = {r.symbol for r in data.coverage} | {f.symbol for f in data.failures + data.unknown}
    if wanted:
        return [_resolve(s.strip(), known, data) for s in wanted.split(",") if s.strip()]
    totals = symbol_missing(data)
    with_bars = {r.symbol for r in data.coverage if r.expected_minutes > r.missing_minutes}
    return [s for s in sorted(totals, key=lambda s: (-totals[s], s)) if s in with_bars][:DEFAULT_CHARTS]


def _resolve(given: str, known: set[str], data: ReportData) -> str:
    """``NSE:SBIN-EQ`` or ``SBIN-EQ`` -> the lake's ``NSE:SBIN-EQ``; ``InvalidInput`` naming it if absent."""
    matches = sorted(s for s in known if given in (s, s.split(":", 1)[-1]))
    if not matches:
        some = ", ".join(sorted(known)[:10]) + (", ..." if len(known) > 10 else "")
        raise InvalidInput(
            f"report: symbol {given!r} has no data in {data.lake} for {_span(data.first, data.last)} "
            f"(symbols there: {some or 'none'})"
        )
    return matches[0]


def _worst_first(rows: Iterable[CoverageRow]) -> list[CoverageRow]:
    return sorted(rows, key=lambda r: (-r.missing_minutes, r.symbol, r.trade_date))


# ---------------------------------------------------------------------------------------------- the numbers


def _expected_minutes(symbol: str, day: date) -> list[int]:
    """Session minutes of ``day`` as minutes after 00:00 IST (from the exchange calendar)."""
    from pricefeed.trading_calendar import DEFAULT_CALENDAR

    exchange, _ = split_symbol(symbol)
    midnight = int(datetime.combine(day, time(0), tzinfo=IST).timestamp())
    return [(int(s) - midnight) // 60 for s in DEFAULT_CALENDAR.minute_starts(day, exchange)]


def parse_ranges(ranges: Iterable[str]) -> set[int]:
    """``["12:00-15:30"]`` (IST, end exclusive) -> the minutes after 00:00 IST they cover."""
    minutes: set[int] = set()
    for text in ranges:
        start, end = (int(p[:2]) * 60 + int(p[3:5]) for p in text.split("-"))
        minutes.update(range(start, end))
    return minutes


def failed_days(data: ReportData) -> list[Failure]:
    """Failures that left the symbol-day without bars (a later successful run clears them)."""
    return [f for f in data.failures if not f.stored_later]


def symbol_missing(data: ReportData) -> dict[str, int]:
    """Minutes missing per symbol over the report's dates; a failed symbol-day misses its whole session."""
    totals: dict[str, int] = {}
    for r in data.coverage:
        totals[r.symbol] = totals.get(r.symbol, 0) + r.missing_minutes
    for f in failed_days(data):
        totals[f.symbol] = totals.get(f.symbol, 0) + len(_expected_minutes(f.symbol, f.trade_date))
    return totals


def summary(data: ReportData) -> dict:
    """The header's numbers."""
    failed = failed_days(data)
    failed_minutes = sum(len(_expected_minutes(f.symbol, f.trade_date)) for f in failed)
    return {
        "symbols": len(symbol_missing(data)),
        "symbol_days": len(data.coverage) + len(failed),
        "complete": sum(1 for r in data.coverage if r.complete and r.expected_minutes),
        "with_gaps": sum(1 for r in data.coverage if not r.complete),
        "failed": len(failed),
        "missing_minutes": sum(r.missing_minutes for r in data.coverage) + failed_minutes,
        "expected_minutes": sum(r.expected_minutes for r in data.coverage) + failed_minutes,
        "unknown": len({f.symbol for f in data.unknown}),
    }


@dataclass(frozen=True)
class HeatMap:
    """Rows (symbols, worst first, capped), columns (IST minute starts or dates), a value and a hover text
    per cell (None: no session for that symbol then, or the symbol was not run that day)."""

    symbols: list[str]
    columns: list
    z: list[list[float | None]]
    text: list[list[str]]
    total_symbols: int
    note: str


def heatmap(data: ReportData, *, max_rows: int = MAX_HEATMAP_ROWS) -> HeatMap:
    """Symbols x session minutes for one day (stored / missing / failed), symbols x days for a range
    (share of the session missing)."""
    totals = symbol_missing(data)
    order = sorted(totals, key=lambda s: (-totals[s], s))
    shown, hidden = order[:max_rows], order[max_rows:]
    grid = _minute_grid(data, shown) if data.one_day else _day_grid(data, shown)
    return HeatMap(shown, *grid, total_symbols=len(order), note=_hidden_note(shown, hidden, totals))


def _hidden_note(shown: list[str], hidden: list[str], totals: dict[str, int]) -> str:
    if not hidden:
        return ""
    complete = sum(1 for s in hidden if not totals[s])
    return (
        f"Showing the {len(shown):,} worst-covered of {len(shown) + len(hidden):,} symbols. The other "
        f"{len(hidden):,} are not drawn: {complete:,} of them are complete, and none misses more than "
        f"{max(totals[s] for s in hidden):,} minutes."
    )


def _minute_grid(data: ReportData, shown: list[str]):
    day = data.first
    rows = {r.symbol: r for r in data.coverage}
    failed = {f.symbol: f for f in failed_days(data)}
    cells: dict[str, dict[int, int]] = {}
    for symbol in shown:
        if symbol in rows:
            r = rows[symbol]
            missing = parse_ranges(r.missing_ranges)
            cells[symbol] = {m: MISSING if m in missing else STORED for m in sorted(parse_ranges(r.sessions))}
        else:
            cells[symbol] = dict.fromkeys(_expected_minutes(symbol, day), FAILED)
    minutes = sorted(set().union(*cells.values())) if cells else []
    z = [[cells[s].get(m) for m in minutes] for s in shown]
    text = [[_minute_text(v, failed.get(s)) for v in zrow] for s, zrow in zip(shown, z, strict=True)]
    columns = [datetime.combine(day, time(m // 60, m % 60)) for m in minutes]
    return columns, z, text


def _minute_text(value: int | None, failure: Failure | None) -> str:
    if value is None:
        return "no session"
    if value == FAILED and failure is not None:
        return f"FAILED: {failure.error_type} (no bars stored)"
    return STATUS_TEXT[value]


def _day_grid(data: ReportData, shown: list[str]):
    rows = {(r.symbol, r.trade_date): r for r in data.coverage}
    failed = {(f.symbol, f.trade_date): f for f in failed_days(data)}
    days = sorted({d for _, d in rows} | {d for _, d in failed})
    z, text = [], []
    for symbol in shown:
        cells = [_day_cell(rows.get((symbol, d)), failed.get((symbol, d))) for d in days]
        z.append([c[0] for c in cells])
        text.append([c[1] for c in cells])
    return days, z, text


def _day_cell(row: CoverageRow | None, failure: Failure | None) -> tuple[float | None, str]:
    if row is not None:
        if not row.expected_minutes:
            return None, "no session (holiday)"
        if row.complete:
            return 0.0, f"complete ({row.expected_minutes} min)"
        ranges = ", ".join(row.missing_ranges)
        return row.missing_minutes / row.expected_minutes, (
            f"missing {row.missing_minutes} of {row.expected_minutes} min: {ranges}"
        )
    if failure is not None:
        return 1.0, f"FAILED: {failure.error_type} (no bars stored)"
    return None, "not in this run"


# ---------------------------------------------------------------------------------------------- the figures


def heatmap_figure(data: ReportData, grid: HeatMap):
    """The coverage heat-map as a plotly figure (worst symbol on top)."""
    import numpy as np
    import plotly.graph_objects as go

    z = np.array([[np.nan if v is None else v for v in row] for row in grid.z], dtype="float32")
    trace = go.Heatmap(
        z=z, x=grid.columns, y=grid.symbols, text=grid.text, hoverongaps=False, ygap=1,
        **(_minute_style() if data.one_day else _day_style()),
    )
    fig = go.Figure(trace)
    fig.update_layout(
        template="plotly_white", height=max(220, 110 + 16 * len(grid.symbols)),
        margin={"l": 10, "r": 10, "t": 60, "b": 20},
        yaxis={"autorange": "reversed", "type": "category", "automargin": True, "title": "symbol (worst first)"},
        xaxis={"title": "minute of the session (IST)" if data.one_day else "IST trading date", "side": "top"},
    )
    if data.one_day:
        fig.update_xaxes(type="date", tickformat="%H:%M", dtick=30 * 60 * 1000)
    else:
        fig.update_xaxes(type="category")
    return fig


def _minute_style() -> dict:
    scale = [[0, _GREEN], [0.25, _GREEN], [0.25, _RED], [0.75, _RED], [0.75, _PURPLE], [1, _PURPLE]]
    return {
        "zmin": 0, "zmax": 2, "colorscale": scale,
        "colorbar": {"tickvals": [0.25, 1, 1.75], "ticktext": ["stored", "missing", "failed"], "thickness": 14},
        "hovertemplate": "<b>%{y}</b><br>%{x|%H:%M} IST: %{text}<extra></extra>",
    }


def _day_style() -> dict:
    return {
        "zmin": 0, "zmax": 1, "colorscale": [[0, _GREEN], [0.02, "#fdd49e"], [0.5, "#fc8d59"], [1, _RED]],
        "colorbar": {"title": {"text": "session missing"}, "tickformat": ".0%", "thickness": 14},
        "hovertemplate": "<b>%{y}</b> on %{x}<br>%{text}<extra></extra>",
    }


def candle_figure(symbol: str, bars: list[Bar], timeframe: str, title: str, session: tuple | None = None):
    """Candlesticks (green up, red down) over a volume panel, times in IST; an intraday chart spans the whole
    ``session`` (first, last bar start), so a hole at either end shows as empty space."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x = [b.ist.strftime("%Y-%m-%d") if timeframe == "1d" else b.ist for b in bars]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.03)
    fig.add_trace(go.Candlestick(
        x=x, open=[b.open for b in bars], high=[b.high for b in bars], low=[b.low for b in bars],
        close=[b.close for b in bars], name=symbol, showlegend=False,
    ), row=1, col=1)
    colours = ["#2ca02c" if b.close >= b.open else _RED for b in bars]
    fig.add_trace(go.Bar(x=x, y=[b.volume for b in bars], marker_color=colours, name="volume", showlegend=False,
                         hovertemplate="%{x}<br>volume %{y:,}<extra></extra>"), row=2, col=1)
    fig.update_layout(template="plotly_white", height=460, title={"text": title, "x": 0.01},
                      margin={"l": 10, "r": 10, "t": 50, "b": 30}, xaxis_rangeslider_visible=False)
    fig.update_yaxes(title_text="price (₹)", row=1, col=1, automargin=True)
    fig.update_yaxes(title_text="volume", row=2, col=1, automargin=True)
    if timeframe == "1d":
        fig.update_xaxes(type="category")  # trading days only: no gaps for weekends and holidays
    else:
        fig.update_xaxes(tickformat="%H:%M", hoverformat="%d %b %H:%M IST")
        if session:
            pad = timedelta(minutes=5)
            fig.update_xaxes(range=[session[0] - pad, session[1] + pad])
    fig.update_xaxes(title_text="IST", row=2, col=1)
    return fig


_TF_NAME = {"1m": "1-minute", "5m": "5-minute", "15m": "15-minute", "1d": "daily"}


def _chart_title(data: ReportData, symbol: str) -> str:
    return f"{symbol} — {_TF_NAME[data.timeframe]} bars, {_span_text(data)} (IST)"


def _span_text(data: ReportData) -> str:
    if data.one_day:
        return data.first.strftime("%a %d %b %Y")
    return f"{data.first:%d %b %Y} to {data.last:%d %b %Y}"


# ---------------------------------------------------------------------------------------------- the page

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
        f"<title>pricefeed report — {_e(_span(data.first, data.last))}</title><style>{_CSS}</style>"
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
        f'<div class="sub">IST trading date{"" if data.one_day else "s"} {_e(_span(data.first, data.last))}; '
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
        key = (f'<span style="background:{_GREEN}"></span>1-minute bar stored<span style="background:{_RED}">'
               f'</span>minute missing<span style="background:{_PURPLE}"></span>ticker failed, nothing stored')
    else:
        what = "Each row is a symbol, each column a trading day; the colour is the share of the session missing."
        key = (f'<span style="background:{_GREEN}"></span>complete<span style="background:{_RED}"></span>'
               "whole session missing (or failed)")
    note = f'<p class="note" id="heatmap-note">{_e(grid.note)}</p>' if grid.note else ""
    return (
        f'<section id="coverage"><h2>Coverage: {grid.total_symbols:,} symbols, worst first</h2>'
        f'<p class="note">{what}</p><p class="note key">{key}</p>{note}'
        f'{_plot("coverage-heatmap", heatmap_figure(data, grid))}{_gaps_table(data)}</section>'
    )


def _gaps_table(data: ReportData, limit: int = 100) -> str:
    gaps = [r for r in _worst_first(data.coverage) if not r.complete]
    if not gaps:
        return '<p class="note">No symbol-day in the ledger misses a minute.</p>'
    rows = "".join(
        f'<tr data-symbol="{_e(r.symbol)}"><td>{_e(r.symbol)}</td><td>{r.trade_date}</td>'
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


def _failure_row(f: Failure) -> str:
    status = ('<span class="tag ok">stored by a later run</span>' if f.stored_later
              else '<span class="tag">no bars</span>')
    runs = f" ({f.runs} runs failed)" if f.runs > 1 else ""
    attempts = "" if f.attempts is None else f.attempts
    return (
        f'<tr data-symbol="{_e(f.symbol)}"><td>{_e(f.symbol)}</td><td>{f.trade_date}</td><td>{_e(f.error_type)}</td>'
        f'<td>{_e(f.reason)}</td><td class="num">{attempts}</td><td>{_e(f.failed_at)}{runs}</td><td>{status}</td></tr>'
    )


def _unknown_table(data: ReportData) -> str:
    if not data.unknown:
        return '<h2>Unknown symbols (0)</h2><p class="note">Every listed symbol is in the Fyers symbol master.</p>'
    rows = "".join(
        f'<tr data-symbol="{_e(f.symbol)}"><td>{_e(f.symbol)}</td><td>{f.trade_date}</td><td>{_e(f.reason)}</td></tr>'
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
            fig = candle_figure(symbol, bars, data.timeframe, _chart_title(data, symbol), _session(data, symbol))
            _shade_gaps(fig, data, symbol)
            parts.append(f'<div class="chart" data-symbol="{_e(symbol)}">{_plot(f"chart-{i}", fig, "plot candles")}'
                         "</div>")
        else:
            parts.append(f'<p class="note" data-symbol="{_e(symbol)}">{_e(symbol)}: no bars stored for '
                         f"{_e(_span(data.first, data.last))}.</p>")
    if not parts:
        parts.append('<p class="note">No symbol has bars to chart.</p>')
    return (
        f'<section id="charts"><h2>Price and volume ({_TF_NAME[data.timeframe]} bars)</h2>'
        '<p class="note">Candles: green = close above open, red = below; volume underneath. '
        "The symbols are those given with --symbols, else the worst-covered ones.</p>"
        f'{"".join(parts)}</section>'
    )


def _shade_gaps(fig, data: ReportData, symbol: str) -> None:
    """Tint the missing minutes of a one-day chart, so a flat stretch is not mistaken for a quiet market."""
    rows = [r for r in data.coverage if r.symbol == symbol] if data.one_day else []
    for text in rows[0].missing_ranges if rows else ():
        x0, x1 = (datetime.combine(data.first, datetime.strptime(t, "%H:%M").time()) for t in text.split("-"))
        fig.add_vrect(x0=x0, x1=x1, fillcolor=_RED, opacity=0.1, line_width=0, row=1, col=1,
                      annotation_text="missing", annotation_position="top left")
        fig.add_vrect(x0=x0, x1=x1, fillcolor=_RED, opacity=0.1, line_width=0, row=2, col=1)


def _session(data: ReportData, symbol: str) -> tuple[datetime, datetime] | None:
    """First and last minute of the day's session (IST wall clock) for a one-day chart."""
    minutes = _expected_minutes(symbol, data.first) if data.one_day else []
    if not minutes:
        return None
    return tuple(datetime.combine(data.first, time(m // 60, m % 60)) for m in (minutes[0], minutes[-1]))


# ---------------------------------------------------------------------------------------------- files


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
