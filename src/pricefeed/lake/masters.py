"""The Fyers symbol master files as the raw bucket keeps them: where each IST day's copy of a segment lives, the
newest copy before a day, and how the headerless CSV is read (rows, and the ticker column found by content: Fyers
has reordered the columns before). Downloading and validating is ``pricefeed.fyers.symbol_master``'s; reading each
instrument's sessions out of a copy is ``pricefeed.aggregate.instrument_sessions``'."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import date

from pricefeed.market_hours import SEGMENTS

MASTER_ROOT = "ohlcv/symbol-master/"
#: The documented position of the ticker column; preferred when several columns look like tickers.
TICKER_COLUMN = 9
#: Share of rows whose cell must look like a ticker for a column to count as the ticker column.
MIN_TICKER_SHARE = 0.9

TICKER = re.compile(r"[A-Z][A-Z0-9_]{1,7}:[^\s:]+", re.IGNORECASE)
_CACHED_KEY = re.compile(rf"^{MASTER_ROOT}date=(\d{{4}}-\d{{2}}-\d{{2}})/([A-Z_]+)\.csv$")


def master_key(segment: str, day: date) -> str:
    """Where the copy of ``segment`` downloaded on IST ``day`` is kept in the raw bucket."""
    return f"{MASTER_ROOT}date={day.isoformat()}/{segment}.csv"


def newest_cached(s3, raw_bucket: str, segment: str, *, before: date) -> tuple[date, str] | None:
    """(IST date, key) of the newest cached copy of ``segment`` from a day before ``before``, if any."""
    best: tuple[date, str] | None = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=raw_bucket, Prefix=MASTER_ROOT):
        for item in page.get("Contents", []):
            match = _CACHED_KEY.match(item["Key"])
            if not match or match.group(2) != segment:
                continue
            try:
                day = date.fromisoformat(match.group(1))
            except ValueError:
                continue
            if day < before and (best is None or day > best[0]):
                best = (day, item["Key"])
    return best


def read_rows(text: str) -> Iterator[list[str]]:
    """The CSV's rows, blank lines skipped (quoted fields, CRLF and ragged rows are read as they are)."""
    return (row for row in csv.reader(io.StringIO(text, newline="")) if "".join(row).strip())


def ticker_column(sample: list[list[str]]) -> int | None:
    """The column holding tickers like ``NSE:SBIN-EQ`` in ``sample`` (:data:`TICKER_COLUMN` when tied), else None."""
    width = max(len(row) for row in sample)
    shares = {
        c: sum(1 for row in sample if c < len(row) and TICKER.fullmatch(row[c].strip())) / len(sample)
        for c in range(width)
    }
    best = max(shares.values())
    if best < MIN_TICKER_SHARE:
        return None
    tied = [c for c, share in shares.items() if share == best]
    return TICKER_COLUMN if TICKER_COLUMN in tied else tied[0]


__all__ = ["MASTER_ROOT", "SEGMENTS", "TICKER", "master_key", "newest_cached", "read_rows", "ticker_column"]
