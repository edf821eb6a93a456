"""The report's plotly figures: the coverage heat-map (symbols x minutes for a day, symbols x days for a range)
and candlestick charts with volume, missing minutes shaded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from pricefeed.ops.report.model import (
    FAILED,
    MISSING,
    STORED,
    Bar,
    CoverageRow,
    FailedDay,
    ReportData,
    expected_minutes,
    failed_days,
    parse_ranges,
    symbol_missing,
)
from pricefeed.symbol import Symbol

#: The heat-map shows at most this many symbols (worst first); a note counts the others.
MAX_HEATMAP_ROWS = 150


STATUS_TEXT = {STORED: "stored", MISSING: "MISSING", FAILED: "FAILED (no data)"}


GREEN, RED, PURPLE = "#b7e1b0", "#d62728", "#5b2a86"


@dataclass(frozen=True)
class HeatMap:
    """Rows (symbols, worst first, capped), columns (IST minute starts or dates), a value and a hover text
    per cell (None: no session for that symbol then, or the symbol was not run that day)."""

    symbols: list[Symbol]
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


def _hidden_note(shown: list[Symbol], hidden: list[Symbol], totals: dict[Symbol, int]) -> str:
    if not hidden:
        return ""
    complete = sum(1 for s in hidden if not totals[s])
    return (
        f"Showing the {len(shown):,} worst-covered of {len(shown) + len(hidden):,} symbols. The other "
        f"{len(hidden):,} are not drawn: {complete:,} of them are complete, and none misses more than "
        f"{max(totals[s] for s in hidden):,} minutes."
    )


def _minute_grid(data: ReportData, shown: list[Symbol]):
    day = data.first
    rows = {r.symbol: r for r in data.coverage}
    failed = {f.symbol: f for f in failed_days(data)}
    cells: dict[Symbol, dict[int, int]] = {}
    for symbol in shown:
        if symbol in rows:
            r = rows[symbol]
            missing = parse_ranges(r.missing_ranges)
            cells[symbol] = {m: MISSING if m in missing else STORED for m in sorted(parse_ranges(r.sessions))}
        else:
            cells[symbol] = dict.fromkeys(expected_minutes(symbol, day), FAILED)
    minutes = sorted(set().union(*cells.values())) if cells else []
    z = [[cells[s].get(m) for m in minutes] for s in shown]
    text = [[_minute_text(v, failed.get(s)) for v in zrow] for s, zrow in zip(shown, z, strict=True)]
    columns = [datetime.combine(day, time(m // 60, m % 60)) for m in minutes]
    return columns, z, text


def _minute_text(value: int | None, failure: FailedDay | None) -> str:
    if value is None:
        return "no session"
    if value == FAILED and failure is not None:
        return f"FAILED: {failure.error_type} (no bars stored)"
    return STATUS_TEXT[value]


def _day_grid(data: ReportData, shown: list[Symbol]):
    rows = {(r.symbol, r.trading_date): r for r in data.coverage}
    failed = {(f.symbol, f.trading_date): f for f in failed_days(data)}
    days = sorted({d for _, d in rows} | {d for _, d in failed})
    z, text = [], []
    for symbol in shown:
        cells = [_day_cell(rows.get((symbol, d)), failed.get((symbol, d))) for d in days]
        z.append([c[0] for c in cells])
        text.append([c[1] for c in cells])
    return days, z, text


def _day_cell(row: CoverageRow | None, failure: FailedDay | None) -> tuple[float | None, str]:
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


def heatmap_figure(data: ReportData, grid: HeatMap):
    """The coverage heat-map as a plotly figure (worst symbol on top)."""
    import numpy as np
    import plotly.graph_objects as go

    z = np.array([[np.nan if v is None else v for v in row] for row in grid.z], dtype="float32")
    trace = go.Heatmap(
        z=z, x=grid.columns, y=[str(s) for s in grid.symbols], text=grid.text, hoverongaps=False, ygap=1,
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
    scale = [[0, GREEN], [0.25, GREEN], [0.25, RED], [0.75, RED], [0.75, PURPLE], [1, PURPLE]]
    return {
        "zmin": 0, "zmax": 2, "colorscale": scale,
        "colorbar": {"tickvals": [0.25, 1, 1.75], "ticktext": ["stored", "missing", "failed"], "thickness": 14},
        "hovertemplate": "<b>%{y}</b><br>%{x|%H:%M} IST: %{text}<extra></extra>",
    }


def _day_style() -> dict:
    return {
        "zmin": 0, "zmax": 1, "colorscale": [[0, GREEN], [0.02, "#fdd49e"], [0.5, "#fc8d59"], [1, RED]],
        "colorbar": {"title": {"text": "session missing"}, "tickformat": ".0%", "thickness": 14},
        "hovertemplate": "<b>%{y}</b> on %{x}<br>%{text}<extra></extra>",
    }


def candle_figure(symbol: Symbol, bars: list[Bar], timeframe: str, title: str, session: tuple | None = None):
    """Candlesticks (green up, red down) over a volume panel, times in IST; an intraday chart spans the whole
    ``session`` (first, last bar start), so a hole at either end shows as empty space."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    x = [b.ist.strftime("%Y-%m-%d") if timeframe == "1d" else b.ist for b in bars]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.74, 0.26], vertical_spacing=0.03)
    fig.add_trace(go.Candlestick(
        x=x, open=[b.open for b in bars], high=[b.high for b in bars], low=[b.low for b in bars],
        close=[b.close for b in bars], name=str(symbol), showlegend=False,
    ), row=1, col=1)
    colours = ["#2ca02c" if b.close >= b.open else RED for b in bars]
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


TIMEFRAME_NAMES = {"1m": "1-minute", "5m": "5-minute", "15m": "15-minute", "1d": "daily"}


def shade_gaps(fig, data: ReportData, symbol: Symbol) -> None:
    """Tint the missing minutes of a one-day chart, so a flat stretch is not mistaken for a quiet market."""
    rows = [r for r in data.coverage if r.symbol == symbol] if data.one_day else []
    for text in rows[0].missing_ranges if rows else ():
        x0, x1 = (datetime.combine(data.first, datetime.strptime(t, "%H:%M").time()) for t in text.split("-"))
        fig.add_vrect(x0=x0, x1=x1, fillcolor=RED, opacity=0.1, line_width=0, row=1, col=1,
                      annotation_text="missing", annotation_position="top left")
        fig.add_vrect(x0=x0, x1=x1, fillcolor=RED, opacity=0.1, line_width=0, row=2, col=1)


def session_span(data: ReportData, symbol: Symbol) -> tuple[datetime, datetime] | None:
    """First and last minute of the day's session (IST wall clock) for a one-day chart."""
    minutes = expected_minutes(symbol, data.first) if data.one_day else []
    if not minutes:
        return None
    return tuple(datetime.combine(data.first, time(m // 60, m % 60)) for m in (minutes[0], minutes[-1]))
