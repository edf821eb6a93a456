"""The coverage ledger: per symbol and IST trading date, which session minutes the lake holds and which it lacks.

One row per symbol-day the aggregation job built from raw (pure; the job writes it): the minutes the
exchange calendar expects (``pricefeed.trading_calendar``), the 1m bars stored, the missing minutes as IST
ranges, every excluded candle counted by reason (``candles.EXCLUSION_REASONS``) and the raw envelopes
read. It is its own Parquet table (``paths.coverage_key``, Glue table ``coverage``), so a symbol-day with
missing minutes is one query away::

    SELECT exchange, symbol, trade_date, missing_minutes, missing_ranges FROM coverage
    WHERE NOT complete ORDER BY missing_minutes DESC
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pyarrow as pa

from pricefeed.aggregate.bars import DayBars
from pricefeed.aggregate.candles import EXCLUSION_REASONS
from pricefeed.istime import IST

WORST_LISTED = 20
LEDGER_SCHEMA = pa.schema(
    [
        ("trade_date", pa.date32()),
        ("trading_day", pa.bool_()),
        ("sessions", pa.list_(pa.string())),
        ("expected_minutes", pa.int32()),
        ("stored_minutes", pa.int32()),
        ("missing_minutes", pa.int32()),
        ("missing_ranges", pa.list_(pa.string())),
        *((f"excluded_{reason}", pa.int64()) for reason in EXCLUSION_REASONS),
        ("raw_envelopes", pa.int32()),
        ("complete", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class DayCoverage:
    """Coverage of one symbol-day. Ranges are ``"HH:MM-HH:MM"`` IST, start inclusive, end exclusive."""

    exchange: str
    symbol: str  # bare name, "SBIN-EQ"
    trading_date: date
    sessions: tuple[str, ...]
    expected_minutes: int
    stored_minutes: int
    missing_ranges: tuple[str, ...]
    missing_minutes: int
    excluded: dict[str, int]
    raw_envelopes: int

    @property
    def trading_day(self) -> bool:
        """False on a holiday or weekend (no session): nothing is expected, so nothing can be missing."""
        return self.expected_minutes > 0

    @property
    def complete(self) -> bool:
        return self.missing_minutes == 0

    def table(self) -> pa.Table:
        """This row as a one-row table of :data:`LEDGER_SCHEMA` (deterministic Parquet through ``lake``)."""
        row = {
            "trade_date": self.trading_date,
            "trading_day": self.trading_day,
            "sessions": list(self.sessions),
            "expected_minutes": self.expected_minutes,
            "stored_minutes": self.stored_minutes,
            "missing_minutes": self.missing_minutes,
            "missing_ranges": list(self.missing_ranges),
            **{f"excluded_{r}": self.excluded.get(r, 0) for r in EXCLUSION_REASONS},
            "raw_envelopes": self.raw_envelopes,
            "complete": self.complete,
        }
        return pa.Table.from_pylist([row], schema=LEDGER_SCHEMA)

    def summary(self) -> dict:
        """What the job's result lists for a symbol-day with gaps."""
        return {
            "symbol": f"{self.exchange}:{self.symbol}",
            "date": self.trading_date.isoformat(),
            "expected_minutes": self.expected_minutes,
            "missing_minutes": self.missing_minutes,
            "missing_ranges": list(self.missing_ranges),
        }


def day_coverage(day: DayBars) -> DayCoverage:
    """The ledger row of one built symbol-day (O(session minutes))."""
    exchange, name = day.symbol.exchange, day.symbol.name
    expected = day.expected
    stored = day.tables["1m"].column("ts").cast(pa.int64()).to_numpy() // 1_000_000
    missing = expected[~np.isin(expected, stored, assume_unique=True)]
    return DayCoverage(
        exchange=exchange,
        symbol=name,
        trading_date=day.trading_date,
        sessions=tuple(_ranges(expected)),
        expected_minutes=len(expected),
        stored_minutes=len(stored),
        missing_ranges=tuple(_ranges(missing)),
        missing_minutes=len(missing),
        excluded=dict(day.excluded),
        raw_envelopes=day.envelopes,
    )


def _ranges(minute_starts: np.ndarray) -> list[str]:
    """Ascending minute starts (epoch seconds) -> contiguous runs as ``"HH:MM-HH:MM"`` IST, end exclusive."""
    if not len(minute_starts):
        return []
    breaks = np.flatnonzero(np.diff(minute_starts) != 60) + 1
    starts = minute_starts[np.r_[0, breaks]]
    ends = minute_starts[np.r_[breaks - 1, len(minute_starts) - 1]] + 60
    return [f"{_hhmm(s)}-{_hhmm(e)}" for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


def _hhmm(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, IST).strftime("%H:%M")
