"""What a report is made of (coverage rows, failures, bars) and the figures it counts from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

from pricefeed.istime import IST
from pricefeed.symbol import Symbol

#: Candlestick charts drawn when ``--symbols`` is not given (the worst-covered symbols that have bars).
#: Symbols charted when --symbols names none: all of a small lake's, else the worst-covered this many (the page
#: says how many of how many, and how to chart others).
DEFAULT_CHARTS = 6


#: Cell values of the one-day heat-map.
STORED, MISSING, FAILED = 0, 1, 2


#: Error type of a dead letter the plan writes for a symbol Fyers does not list.
UNKNOWN_SYMBOL_ERROR = "InvalidSymbol"


@dataclass(frozen=True)
class CoverageRow:
    """One ledger row: a symbol-day and its session/missing minutes as IST ``"HH:MM-HH:MM"`` ranges."""

    symbol: Symbol
    trading_date: date
    sessions: tuple[str, ...]
    expected_minutes: int
    missing_minutes: int
    missing_ranges: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return self.missing_minutes == 0


@dataclass(frozen=True)
class FailedDay:
    """The newest dead letter of one symbol-day, how many runs failed on it, and whether bars came later."""

    symbol: Symbol
    trading_date: date
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
    failures: list[FailedDay]  # tickers that failed to ingest (not the unknown symbols)
    unknown: list[FailedDay]  # symbols not in the Fyers symbol master
    timeframe: str
    charts: dict[Symbol, list[Bar]] = field(default_factory=dict)

    @property
    def one_day(self) -> bool:
        return self.first == self.last


def date_span(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start} .. {end}"


def worst_first(rows: Iterable[CoverageRow]) -> list[CoverageRow]:
    return sorted(rows, key=lambda r: (-r.missing_minutes, r.symbol, r.trading_date))


def expected_minutes(symbol: Symbol, day: date) -> list[int]:
    """Session minutes of ``day`` as minutes after 00:00 IST (from the exchange calendar)."""
    from pricefeed.trading_calendar import DEFAULT_CALENDAR

    midnight = int(datetime.combine(day, time(0), tzinfo=IST).timestamp())
    return [(int(s) - midnight) // 60 for s in DEFAULT_CALENDAR.minute_starts(day, symbol)]


def parse_ranges(ranges: Iterable[str]) -> set[int]:
    """``["12:00-15:30"]`` (IST, end exclusive) -> the minutes after 00:00 IST they cover."""
    minutes: set[int] = set()
    for text in ranges:
        start, end = (int(p[:2]) * 60 + int(p[3:5]) for p in text.split("-"))
        minutes.update(range(start, end))
    return minutes


def failed_days(data: ReportData) -> list[FailedDay]:
    """Failures that left the symbol-day without bars (a later successful run clears them)."""
    return [f for f in data.failures if not f.stored_later]


def symbol_missing(data: ReportData) -> dict[Symbol, int]:
    """Minutes missing per symbol over the report's dates; a failed symbol-day misses its whole session."""
    totals: dict[Symbol, int] = {}
    for r in data.coverage:
        totals[r.symbol] = totals.get(r.symbol, 0) + r.missing_minutes
    for f in failed_days(data):
        totals[f.symbol] = totals.get(f.symbol, 0) + len(expected_minutes(f.symbol, f.trading_date))
    return totals


def summary(data: ReportData) -> dict:
    """The header's numbers."""
    failed = failed_days(data)
    failed_minutes = sum(len(expected_minutes(f.symbol, f.trading_date)) for f in failed)
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
