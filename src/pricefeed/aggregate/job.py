"""The aggregation job (run by the Glue task): raw answers of symbol-days -> Parquet partitions.

Work list: with ``--ingested_prefix`` (the run's ingest manifests, ``pricefeed.ingest.symbol_range``), exactly the
(symbol, IST date) pairs the manifests name: the dates where the ingest stored at least one ended
candle, and, for a symbol whose manifest names none, the run's dates (``--dates``, else the ``dates``
of the ``--symbols_key`` document), so such a day is still handled as ``empty`` below. Symbols of
``--symbols_key`` without a manifest (their ingest failed) are reported as ``not_ingested``.
Without ``--ingested_prefix``: every symbol x every ``--dates`` date. With it, also the symbol-days of every
pending marker (``paths.pending_key``): ingests of earlier runs whose job died before it finished. After
writing a symbol-day the job lists its raw again: when it changed meanwhile (a newer answer, or a job racing
this one), the day is left pending for the next job (``raced`` in the result), so bars are never older than raw.

For each (symbol, IST date) it reads ``paths.raw_day_prefix``: envelopes, and references to the envelope of a
multi-day answer (``pricefeed.lake.envelope``), followed; each envelope is read once per run (``EnvelopeCache``)
and gives only the candles of the day being built. It builds the 1m/5m/15m/1d bars (``aggregate.build_bars``: the
newest fetch wins per minute) and replaces each partition's single file (``paths.processed_key``), deleting any
other; a symbol's days stay together in the work order (a folder is listed once a symbol-month, ``Listings``).

Every symbol-day built from raw (``written`` or ``empty``) also gets its coverage-ledger row
(``pricefeed.aggregate.ledger``: expected minutes of the instrument's own sessions that day, stored, missing
ranges, exclusions),
written as its own partition (``paths.coverage_key``); ``no_raw`` and ``failed`` days get none, since
nothing was derived from raw for them. The partitions written are listed one a line, each naming its Glue table,
in a JSON Lines object per table beside the result (``paths.partitions_key``; the result holds their keys under
``partition_lists`` and the ``partition_counts``); the result's ``coverage`` entry summarizes the ledger rows.

Outcomes per symbol-day: ``written``; ``no_raw`` (no raw object: processed data is left alone, raw may
have expired); ``empty`` (answers without a usable session candle: nothing is written and any
processed file of that day is removed, since it can no longer be derived from raw); ``failed`` (a
malformed raw object: that day is left untouched, the rest of the run completes, the result is
written, and then ``InvalidInput`` names the bad object).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.compact import MergeAll, compact
from pricefeed.aggregate.instrument_sessions import load_hours
from pricefeed.aggregate.ledger import day_coverage
from pricefeed.aggregate.outcomes import (
    BUILT,
    DayResult,
    SymbolDayOutcome,
    partition_count,
    partition_entries,
    summary,
)
from pricefeed.aggregate.raw_reader import EnvelopeCache, day_envelopes, raw_day_keys
from pricefeed.aggregate.work import IngestManifest, unique_dates, unique_symbols, work_from_manifests
from pricefeed.errors import InvalidInput
from pricefeed.istime import ist_today
from pricefeed.lake import storage
from pricefeed.lake.paths import (
    BARS_MONTHLY_TABLE,
    BARS_TABLE,
    COVERAGE_MONTHLY_TABLE,
    COVERAGE_TABLE,
    TIMEFRAMES,
    coverage_key,
    coverage_prefix,
    partitions_key,
    pending_key,
    processed_key,
    processed_prefix,
    quarantine_key,
    quarantine_prefix,
)
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, TradingCalendar

log = logging.getLogger(__name__)

#: Runs every symbol-day of a work list and returns their results in order (a thread pool here, Spark on Glue); the
#: second argument is each symbol's sessions (ticker -> ``Hours.encode()``), for the executors' calendars.
AggregateAll = Callable[[list[tuple[str, date]], dict[str, str]], list[DayResult]]


def run_aggregation(
    *,
    s3,
    raw_bucket: str,
    processed_bucket: str,
    symbols: list[Symbol] | list[str],
    dates: list[date] | None = None,
    ingested: list[IngestManifest] | None = None,
    result_key: str | None = None,
    max_workers: int = 8,
    calendar: TradingCalendar | None = None,
    aggregate_all: AggregateAll | None = None,
    pending: dict[str, IngestManifest] | None = None,
    compact_all: MergeAll | None = None,
) -> dict:
    """Aggregate the run's symbol-days and return the run summary (also written to ``result_key``).

    ``pending`` (key -> marker, ``paths.pending_key``): earlier ingests whose days no finished job has built;
    they are built too, and once the result is written their markers are deleted (only those: markers
    written meanwhile stay for the next job).

    Without ``ingested``: every symbol x every date. With ``ingested`` (the run's manifests): the pairs
    they name, ``dates`` standing in for a manifest without dates (see the module docstring).
    Keep ``max_workers`` at or below the client's ``max_pool_connections`` (boto3 default: 10).
    ``calendar`` gives the exchange sessions (default: ``pricefeed.trading_calendar.DEFAULT_CALENDAR``); each symbol's
    own sessions come from the newest symbol master copy cached in the raw bucket (``aggregate.instrument_sessions``).
    ``aggregate_all`` runs the work list elsewhere (``pricefeed.aggregate.spark`` on Glue); by default a thread
    pool of ``max_workers`` here, sharing one envelope cache; ``compact_all`` likewise merges the compacted months.
    """
    symbols = unique_symbols(symbols)
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidInput(f"max_workers {max_workers!r} must be a positive integer")
    if ingested is None:
        dates = unique_dates(dates)
        manifests = [IngestManifest(s, tuple(dates)) for s in symbols]
        not_ingested: list[Symbol] = []
    else:
        manifests = list(ingested)
        named = {m.symbol for m in ingested}
        not_ingested = sorted(s for s in symbols if s not in named)
    run_dates = unique_dates(dates) if dates else []
    work = work_from_manifests([*manifests, *(pending or {}).values()], run_dates)
    hours, sessions = load_hours(s3, raw_bucket, {Symbol.parse(s) for s, _ in work}, today=ist_today())
    calendar = (calendar or DEFAULT_CALENDAR).with_hours(hours)
    cache = EnvelopeCache(s3, raw_bucket, capacity=max(16, 4 * max_workers))
    listings = (storage.Listings(s3, raw_bucket), storage.Listings(s3, processed_bucket))

    def one(item: tuple[str, date]) -> DayResult:
        symbol, trading_date = item
        return DayResult.of(aggregate_symbol_day(
            s3, raw_bucket, processed_bucket, symbol, trading_date, cache=cache, calendar=calendar, listings=listings
        ))

    if aggregate_all is None:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aggregate") as pool:
            outcomes = list(pool.map(one, work))
    else:
        outcomes = aggregate_all(work, {name: h.encode() for name, h in hours.items()})

    result = summary(symbols, sorted({d for _, d in work}), outcomes)
    result["not_ingested"] = [str(s) for s in not_ingested]
    result["sessions"] = sessions
    result["raw_reads"] = cache.reads if aggregate_all is None else None  # counted on the executors
    log.info(
        "aggregated %d symbol-days: bars=%s no_raw=%d empty=%d failed=%d not_ingested=%d coverage=%s",
        len(outcomes),
        result["bars"],
        len(result["no_raw_days"]),
        len(result["empty"]),
        len(result["failed"]),
        len(not_ingested),
        {k: v for k, v in result["coverage"].items() if k != "worst"},
    )
    result["pending_built"] = len(pending or {})
    raced = [o for o in outcomes if o.raced]
    result["raced"] = [{"symbol": o.symbol, "date": o.trading_date.isoformat()} for o in raced]
    for o in raced:  # before the markers it read go: the day must stay pending
        day = o.trading_date.isoformat()
        marker = {"symbol": o.symbol, "dates": [day], "run_id": f"rebuild-{day}"}
        storage.write_json(s3, raw_bucket, pending_key(Symbol.parse(o.symbol), marker["run_id"], datetime.now(UTC)),
                           marker)
    # The compacted tier follows the per-day files of every day just built (an emptied day's rows go too).
    parsed = {name: Symbol.parse(name) for name in {o.symbol for o in outcomes}}  # one Symbol a symbol
    built = [(parsed[o.symbol], o.trading_date) for o in outcomes if o.status in BUILT]
    compacted = compact(s3, processed_bucket, built, max_workers=max_workers, merge_all=compact_all)
    del built
    result["compacted"] = {k: v for k, v in compacted.items() if k != "partitions"}
    tables = (BARS_TABLE, COVERAGE_TABLE, BARS_MONTHLY_TABLE, COVERAGE_MONTHLY_TABLE)

    def partitions(table: str):  # streamed: the per-day ones are derived from the results again
        if table in (BARS_TABLE, COVERAGE_TABLE):
            return partition_entries(outcomes, processed_bucket, table)
        return (p for p in compacted["partitions"] if p["table"] == table)

    result["partition_counts"] = {
        table: partition_count(outcomes, table) + sum(1 for p in compacted["partitions"] if p["table"] == table)
        for table in tables
    }
    result["partition_lists"] = {}
    if result_key:
        # The partitions go to JSON Lines objects, one per table: the result stays small whatever the run's size.
        for table in tables:
            key = result["partition_lists"][table] = partitions_key(result_key, table)
            storage.write_json_lines(s3, raw_bucket, key, partitions(table))
        storage.write_json(s3, raw_bucket, result_key, result)
    # Last: a job that dies before here leaves every marker it read, so the next job builds those days.
    storage.delete_keys(s3, raw_bucket, sorted(pending or {}))
    if result["failed"]:
        first = result["failed"][0]
        raise InvalidInput(
            f"{len(result['failed'])} symbol-day(s) have malformed raw objects and were left untouched; "
            f"first: {first['error']}"
        )
    return result


def aggregate_symbol_day(
    s3,
    raw_bucket: str,
    processed_bucket: str,
    symbol: Symbol,
    trading_date: date,
    *,
    cache: EnvelopeCache | None = None,
    calendar: TradingCalendar | None = None,
    listings: tuple[storage.Listings, storage.Listings] | None = None,
) -> SymbolDayOutcome:
    """Rebuild one symbol-day's partitions from its raw (module docstring); ``listings``: raw's, processed's."""
    outcome = SymbolDayOutcome(symbol, trading_date)
    raw_listed, done_listed = listings or (None, None)
    keys = raw_day_keys(s3, raw_bucket, symbol, trading_date, listings=raw_listed)
    if not keys:
        outcome.status = "no_raw"
        return outcome
    try:
        envelopes = day_envelopes(cache or EnvelopeCache(s3, raw_bucket), keys, symbol, trading_date, calendar=calendar)
        day = build_bars(symbol, trading_date, envelopes, calendar=calendar)
    except InvalidInput as exc:
        outcome.status, outcome.error = "failed", str(exc)
        return outcome

    outcome.envelopes, outcome.rows, outcome.excluded = len(envelopes), day.rows, day.excluded
    outcome.coverage = day_coverage(day)
    if day.rows["1m"] == 0:
        outcome.status = "empty"
        for tf in TIMEFRAMES:
            prefix = processed_prefix(tf, symbol, trading_date)
            outcome.stale_removed += len(storage.clear_prefix(s3, processed_bucket, prefix, listings=done_listed))
        _write_coverage(s3, processed_bucket, outcome, done_listed)
        _write_quarantine(s3, processed_bucket, outcome, day.quarantine, done_listed)
        outcome.raced = raw_day_keys(s3, raw_bucket, symbol, trading_date) != keys
        return outcome
    for tf in TIMEFRAMES:
        prefix = processed_prefix(tf, symbol, trading_date)
        key = processed_key(tf, symbol, trading_date)
        stale = storage.replace_partition(s3, processed_bucket, prefix, key, day.tables[tf], listings=done_listed)
        outcome.stale_removed += len(stale)
    _write_coverage(s3, processed_bucket, outcome, done_listed)  # after the bars it describes
    _write_quarantine(s3, processed_bucket, outcome, day.quarantine, done_listed)
    # Raw that landed while the day was built (a later ingest, a job racing this one) is not in it: leave it pending.
    outcome.raced = raw_day_keys(s3, raw_bucket, symbol, trading_date) != keys
    return outcome


def _write_quarantine(s3, processed_bucket: str, outcome: SymbolDayOutcome, table, listings=None) -> None:
    """Replace the symbol-day's quarantine partition with ``table`` (remove it when the day has none)."""
    symbol, trading_date = outcome.symbol, outcome.trading_date
    prefix = quarantine_prefix(symbol, trading_date)
    if table is None:
        outcome.stale_removed += len(storage.clear_prefix(s3, processed_bucket, prefix, listings=listings))
        return
    key = quarantine_key(symbol, trading_date)
    outcome.stale_removed += len(storage.replace_partition(s3, processed_bucket, prefix, key, table, listings=listings))


def _write_coverage(s3, processed_bucket: str, outcome: SymbolDayOutcome, listings=None) -> None:
    """Replace the symbol-day's ledger partition with its row."""
    row, symbol, trading_date = outcome.coverage, outcome.symbol, outcome.trading_date
    prefix = coverage_prefix(symbol, trading_date)
    key = coverage_key(symbol, trading_date)
    outcome.stale_removed += len(storage.replace_partition(s3, processed_bucket, prefix, key, row.table(),
                                                           listings=listings))
