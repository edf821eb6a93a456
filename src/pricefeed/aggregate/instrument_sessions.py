"""Each ticker's trading sessions, read from the symbol master copies the plan cached in the raw bucket.

The aggregation job measures a symbol-day against its instrument's sessions (``pricefeed.market_hours``): MCX
09:00-23:30, currency 09:00-17:00, NSE cash 09:15-15:30. They come from column 6 of the master row that lists the
ticker (``0915-1530|1815-1915:``), found by content like the ticker column, in the newest copy cached on or
before the job's IST day (``pricefeed.lake.masters``). A ticker no cached copy lists, or whose cell cannot
be read, gets its segment's usual hours: a missing master never stops a job.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, timedelta

from pricefeed.lake.masters import newest_cached, read_rows, ticker_column
from pricefeed.market_hours import Hours, parse_sessions, segments_of
from pricefeed.symbol import Symbol, normalize_symbol

log = logging.getLogger(__name__)

#: The documented position of the session column; preferred when several columns look like sessions.
SESSION_COLUMN = 6
_SAMPLE_ROWS = 2000


def sessions_of(data: bytes | str, *, segment: str, tickers: Iterable[str]) -> dict[str, Hours]:
    """``{ticker: Hours}`` of the wanted ``tickers`` one master file lists (a ticker whose session cell cannot be
    read gets the segment's usual hours, ``source`` "default")."""
    text = (data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data).lstrip("\ufeff")
    wanted = set(tickers)
    sample = [row for i, row in enumerate(read_rows(text)) if i < _SAMPLE_ROWS]
    if not sample or not wanted:
        return {}
    tickers_at, sessions_at = ticker_column(sample), session_column(sample)
    if tickers_at is None:
        return {}
    out: dict[str, Hours] = {}
    for row in read_rows(text):
        if tickers_at >= len(row) or (ticker := normalize_symbol(row[tickers_at])) not in wanted:
            continue
        cell = row[sessions_at] if sessions_at is not None and sessions_at < len(row) else None
        try:
            out[ticker] = Hours.of(Symbol.parse(ticker), segment, cell)
        except ValueError:
            continue
    return out


def session_column(sample: list[list[str]]) -> int | None:
    """The column whose cells read as sessions in at least half the rows (``SESSION_COLUMN`` first), else ``None``."""
    width = max(len(row) for row in sample)
    shares = {c: sum(1 for row in sample if c < len(row) and parse_sessions(row[c])) / len(sample)
              for c in range(width)}
    best = max(shares.values())
    if best < 0.5:
        return None
    return SESSION_COLUMN if shares.get(SESSION_COLUMN) == best else max(shares, key=shares.__getitem__)


def load_hours(s3, raw_bucket: str, symbols: Iterable[Symbol], *, today: date) -> tuple[dict[str, Hours], dict]:
    """The sessions of ``symbols`` from the newest master copies cached on or before ``today`` (IST), and a summary
    ``{"master": n, "default": n, "copies": {segment: key}}`` for the job's log and result."""
    wanted = {str(s): s for s in symbols}
    by_segment: dict[str, set[str]] = {}
    for name, symbol in wanted.items():
        for segment in segments_of(symbol):
            by_segment.setdefault(segment, set()).add(name)
    hours: dict[str, Hours] = {}
    copies: dict[str, str] = {}
    for segment, names in by_segment.items():
        names -= hours.keys()
        found = newest_cached(s3, raw_bucket, segment, before=today + timedelta(days=1)) if names else None
        if found is None:
            continue
        copies[segment] = key = found[1]
        body = s3.get_object(Bucket=raw_bucket, Key=key)["Body"].read()
        found = sessions_of(body, segment=segment, tickers=names)
        hours.update({name: h for name, h in found.items() if h.source == "master"})
    summary = {"master": len(hours), "default": len(wanted) - len(hours), "copies": copies}
    if summary["default"]:
        log.info("%d symbol(s) not found in a cached symbol master: their segments' usual hours apply",
                 summary["default"])
    return hours, summary


__all__ = ["SESSION_COLUMN", "load_hours", "session_column", "sessions_of"]
