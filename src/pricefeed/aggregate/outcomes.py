"""What the aggregation job keeps of each symbol-day it handled, and the run summary made from it.

A worker builds a :class:`SymbolDayOutcome` (the day's ledger row, rows per timeframe, what it removed) and hands
the job a :class:`DayResult`: a tuple of plain values, ~0.4 KB against the outcome's ~3.6 KB with its partition
entries and ledger row. A universe backfill is ~6M symbol-days on one Glue driver (16 GB on G.1X): the outcomes
alone would not fit, the results take a few GB. Partition entries are derived again from the results when the job
writes its lists (:func:`partition_entries`, streamed), and a day's coverage is kept in brief: the full summary
only for a day with gaps, and on Spark only for the batch's worst (:func:`keep_worst`), since the run summary
lists the :data:`~pricefeed.aggregate.ledger.WORST_LISTED` worst days of the run.
"""

from __future__ import annotations

import heapq
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

from pricefeed.aggregate.candles import EXCLUSION_REASONS
from pricefeed.aggregate.ledger import WORST_LISTED, DayCoverage
from pricefeed.lake.paths import (
    BARS_TABLE,
    COVERAGE_PARTITION_KEYS,
    COVERAGE_TABLE,
    PARTITION_KEYS,
    TIMEFRAMES,
    coverage_partition_values,
    coverage_prefix,
    partition_values,
    processed_prefix,
)
from pricefeed.symbol import Symbol

BUILT = ("written", "empty")  # outcomes whose per-day files were (re)written from raw


@dataclass
class SymbolDayOutcome:
    """What happened to one symbol-day; ``status`` is written / no_raw / empty / failed."""

    symbol: Symbol
    trading_date: date
    status: str = "written"
    envelopes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    stale_removed: int = 0
    error: str | None = None
    coverage: DayCoverage | None = None
    raced: bool = False  # raw of the day changed while it was built: a later job builds it again


class CoverageBrief(NamedTuple):
    trading_day: bool
    missing_minutes: int
    gap: dict | None  # DayCoverage.summary() of a day with gaps (None once it cannot be among the worst)


class DayResult(NamedTuple):
    """One symbol-day as the job keeps it (see the module docstring)."""

    symbol: str  # "NSE:SBIN-EQ", interned: one string a symbol however many days
    ordinal: int  # the IST trading date's proleptic ordinal
    status: str
    envelopes: int
    rows: tuple[int, ...]  # per TIMEFRAMES, when written
    excluded: tuple[int, ...]  # per EXCLUSION_REASONS
    stale_removed: int
    error: str | None
    raced: bool
    coverage: CoverageBrief | None

    @property
    def trading_date(self) -> date:
        return date.fromordinal(self.ordinal)

    @classmethod
    def of(cls, o: SymbolDayOutcome) -> DayResult:
        c = o.coverage
        gap = None if c is None or c.complete else c.summary()
        brief = None if c is None else CoverageBrief(c.trading_day, c.missing_minutes, gap)
        return cls(
            sys.intern(str(o.symbol)), o.trading_date.toordinal(), sys.intern(o.status), o.envelopes,
            tuple(o.rows.get(tf, 0) for tf in TIMEFRAMES) if o.status == "written" else (),
            tuple(o.excluded.get(r, 0) for r in EXCLUSION_REASONS), o.stale_removed, o.error, o.raced, brief,
        )


def _gap_key(gap: dict) -> tuple:
    exchange, _, name = gap["symbol"].partition(":")
    return (-gap["missing_minutes"], exchange, name, gap["date"])


def keep_worst(results: list[DayResult], worst: int = WORST_LISTED) -> list[DayResult]:
    """``results`` with the gap summary kept only on the ``worst`` days with gaps (the rest cannot be listed)."""
    gaps = [r.coverage.gap for r in results if r.coverage is not None and r.coverage.gap is not None]
    if len(gaps) <= worst:
        return results
    kept = {id(g) for g in heapq.nsmallest(worst, gaps, key=_gap_key)}
    return [
        r._replace(coverage=r.coverage._replace(gap=None))
        if r.coverage is not None and r.coverage.gap is not None and id(r.coverage.gap) not in kept
        else r
        for r in results
    ]


def summary(symbols: list[Symbol], dates: list[date], results: list[DayResult], *, worst: int = WORST_LISTED) -> dict:
    """The run's summary (the job's result document, before its partition lists and compaction)."""
    bars = dict.fromkeys(TIMEFRAMES, 0)
    excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
    for r in results:
        for tf, n in zip(TIMEFRAMES, r.rows, strict=False):
            bars[tf] += n
        for reason, n in zip(EXCLUSION_REASONS, r.excluded, strict=True):
            excluded[reason] += n

    def days(status: str) -> list[dict]:
        return [{"symbol": r.symbol, "date": r.trading_date.isoformat(), **({"error": r.error} if r.error else {})}
                for r in results if r.status == status]

    briefs = [r.coverage for r in results if r.coverage is not None]
    gaps = [b.gap for b in briefs if b.gap is not None]
    return {
        "dates": [d.isoformat() for d in dates],
        "symbols": len(symbols),
        "bars": bars,
        "excluded": excluded,
        "no_raw": sorted({r.symbol for r in results if r.status == "no_raw"}),
        "no_raw_days": days("no_raw"),
        "empty": days("empty"),
        "failed": days("failed"),
        "envelopes": sum(r.envelopes for r in results),
        "stale_removed": sum(r.stale_removed for r in results),
        "coverage": {
            "symbol_days": len(briefs),
            "complete": sum(1 for b in briefs if b.trading_day and b.missing_minutes == 0),
            "with_gaps": sum(1 for b in briefs if b.missing_minutes > 0),
            "holidays": sum(1 for b in briefs if not b.trading_day),
            "missing_minutes": sum(b.missing_minutes for b in briefs),
            "worst": heapq.nsmallest(worst, gaps, key=_gap_key),
        },
    }


def partition_entries(results: Iterable[DayResult], processed_bucket: str, table: str) -> Iterator[dict]:
    """The partitions of the per-day ``table`` (``bars``: each written day's timeframes; ``coverage``: every built
    day's ledger row) the results wrote, as the job lists them, one at a time."""
    for r in results:
        if r.status not in BUILT:
            continue
        symbol, day = Symbol.parse(r.symbol), r.trading_date
        if table == BARS_TABLE:
            for tf, n in zip(TIMEFRAMES, r.rows, strict=False):
                values = partition_values(tf, symbol, day)
                yield {"table": BARS_TABLE, **dict(zip(PARTITION_KEYS, values, strict=True)),
                       "location": f"s3://{processed_bucket}/{processed_prefix(tf, symbol, day)}", "rows": n}
        elif table == COVERAGE_TABLE:
            values = coverage_partition_values(symbol, day)
            yield {"table": COVERAGE_TABLE, **dict(zip(COVERAGE_PARTITION_KEYS, values, strict=True)),
                   "location": f"s3://{processed_bucket}/{coverage_prefix(symbol, day)}", "rows": 1}


def partition_count(results: Iterable[DayResult], table: str) -> int:
    """How many partitions of the per-day ``table`` the results wrote (what ``partition_entries`` would list)."""
    built = [r for r in results if r.status in BUILT]
    return sum(len(r.rows) for r in built) if table == BARS_TABLE else len(built) if table == COVERAGE_TABLE else 0
