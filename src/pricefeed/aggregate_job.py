"""The aggregation job (run by the Glue task): raw answers of symbol-days -> Parquet partitions.

Work list: with ``--ingested_prefix`` (the run's ingest manifests, ``pricefeed.ingest``), exactly the
(symbol, IST date) pairs the manifests name: the dates where the ingest stored at least one ended
candle, and, for a symbol whose manifest names none, the run's dates (``--dates``, else the ``dates``
of the ``--symbols_key`` document), so such a day is still handled as ``empty`` below. Symbols of
``--symbols_key`` without a manifest (their ingest failed) are reported as ``not_ingested``.
Without ``--ingested_prefix``: every symbol x every ``--dates`` date.

For each (symbol, IST date) it lists ``paths.raw_day_prefix``: envelopes, and references to the
envelope of a multi-day answer (``pricefeed.raw``), which are followed; each envelope is read once
per run (``pricefeed.rawstore.EnvelopeCache``) and gives only the candles of the day being built. It
builds the 1m/5m/15m/1d bars (``aggregate.build_bars``: the newest fetch wins per minute) and replaces
each partition's single file (``paths.processed_key``); a symbol's days are kept together in the work
order and symbol-days run in parallel on a thread pool.

Outcomes per symbol-day: ``written``; ``no_raw`` (no raw object: processed data is left alone, raw may
have expired); ``empty`` (answers without a usable session candle: nothing is written and any
processed file of that day is removed, since it can no longer be derived from raw); ``failed`` (a
malformed raw object: that day is left untouched, the rest of the run completes, the result is
written, and then ``InvalidInput`` names the bad object).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import orjson

from pricefeed import lake
from pricefeed.aggregate import build_bars
from pricefeed.candles import EXCLUSION_REASONS
from pricefeed.errors import InvalidInput
from pricefeed.paths import (
    PARTITION_KEYS,
    TIMEFRAMES,
    check_prefix,
    partition_values,
    processed_key,
    processed_prefix,
    split_symbol,
)
from pricefeed.rawstore import EnvelopeCache, day_envelopes, raw_day_keys

log = logging.getLogger(__name__)

# Glue job arguments (without the leading "--"). --dates is required unless --ingested_prefix is given.
REQUIRED_JOB_ARGUMENTS = ("raw_bucket", "processed_bucket", "symbols_key", "result_key")
OPTIONAL_JOB_ARGUMENTS = ("dates", "ingested_prefix")
JOB_ARGUMENTS = REQUIRED_JOB_ARGUMENTS + OPTIONAL_JOB_ARGUMENTS
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class IngestManifest:
    """What one symbol's ingest stored in a run (only what the job needs of it)."""

    symbol: str
    dates: tuple[date, ...]  # IST dates with at least one ended candle


@dataclass
class SymbolDayOutcome:
    """What happened to one symbol-day; ``status`` is written / no_raw / empty / failed."""

    symbol: str
    trading_date: date
    status: str = "written"
    envelopes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, int] = field(default_factory=dict)
    partitions: list[dict] = field(default_factory=list)
    stale_removed: int = 0
    error: str | None = None


def run_aggregation(
    *,
    s3,
    raw_bucket: str,
    processed_bucket: str,
    symbols: list[str],
    dates: list[date] | None = None,
    ingested: list[IngestManifest] | None = None,
    result_key: str | None = None,
    max_workers: int = 8,
) -> dict:
    """Aggregate the run's symbol-days and return the run summary (also written to ``result_key``).

    Without ``ingested``: every symbol x every date. With ``ingested`` (the run's manifests): the pairs
    they name, ``dates`` standing in for a manifest without dates (see the module docstring).
    Keep ``max_workers`` at or below the client's ``max_pool_connections`` (boto3 default: 10).
    """
    symbols = _unique_symbols(symbols)
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidInput(f"max_workers {max_workers!r} must be a positive integer")
    if ingested is None:
        dates = _unique_dates(dates)
        work = [(s, d) for s in symbols for d in dates]
        not_ingested: list[str] = []
    else:
        run_dates = _unique_dates(dates) if dates else []
        work = work_from_manifests(ingested, run_dates)
        named = {m.symbol for m in ingested}
        not_ingested = sorted(s for s in symbols if s not in named)
    cache = EnvelopeCache(s3, raw_bucket, capacity=max(16, 4 * max_workers))

    def one(item: tuple[str, date]) -> SymbolDayOutcome:
        symbol, trading_date = item
        return aggregate_symbol_day(s3, raw_bucket, processed_bucket, symbol, trading_date, cache=cache)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aggregate") as pool:
        outcomes = list(pool.map(one, work))

    result = _summary(symbols, sorted({d for _, d in work}), outcomes)
    result["not_ingested"] = not_ingested
    result["raw_reads"] = cache.reads
    log.info(
        "aggregated %d symbol-days: bars=%s no_raw=%d empty=%d failed=%d not_ingested=%d",
        len(outcomes),
        result["bars"],
        len(result["no_raw_days"]),
        len(result["empty"]),
        len(result["failed"]),
        len(not_ingested),
    )
    if result_key:
        lake.write_json(s3, raw_bucket, result_key, result)
    if result["failed"]:
        first = result["failed"][0]
        raise InvalidInput(
            f"{len(result['failed'])} symbol-day(s) have malformed raw objects and were left untouched; "
            f"first: {first['error']}"
        )
    return result


def work_from_manifests(manifests: list[IngestManifest], run_dates: list[date]) -> list[tuple[str, date]]:
    """(symbol, date) pairs, a symbol's dates together and sorted; ``run_dates`` for a manifest without dates."""
    by_symbol: dict[str, set[date]] = {}
    for m in manifests:
        by_symbol.setdefault(m.symbol, set()).update(m.dates)
    return [(s, d) for s, days in by_symbol.items() for d in sorted(days or run_dates)]


def aggregate_symbol_day(
    s3, raw_bucket: str, processed_bucket: str, symbol: str, trading_date: date, *, cache: EnvelopeCache | None = None
) -> SymbolDayOutcome:
    """Rebuild the four partitions of one symbol-day from its raw answers (see module docstring)."""
    outcome = SymbolDayOutcome(symbol, trading_date)
    keys = raw_day_keys(s3, raw_bucket, symbol, trading_date)
    if not keys:
        outcome.status = "no_raw"
        return outcome
    try:
        envelopes = day_envelopes(cache or EnvelopeCache(s3, raw_bucket), keys, symbol, trading_date)
        day = build_bars(symbol, trading_date, envelopes)
    except InvalidInput as exc:
        outcome.status, outcome.error = "failed", str(exc)
        return outcome

    outcome.envelopes, outcome.rows, outcome.excluded = len(envelopes), day.rows, day.excluded
    exchange, name = split_symbol(symbol)
    if day.rows["1m"] == 0:
        outcome.status = "empty"
        for tf in TIMEFRAMES:
            prefix = processed_prefix(tf, exchange, name, trading_date)
            outcome.stale_removed += len(lake.clear_prefix(s3, processed_bucket, prefix))
        return outcome
    for tf in TIMEFRAMES:
        prefix = processed_prefix(tf, exchange, name, trading_date)
        key = processed_key(tf, exchange, name, trading_date)
        stale = lake.replace_partition(s3, processed_bucket, prefix, key, day.tables[tf])
        outcome.stale_removed += len(stale)
        values = partition_values(tf, exchange, name, trading_date)
        outcome.partitions.append(
            {
                **dict(zip(PARTITION_KEYS, values, strict=True)),
                "location": f"s3://{processed_bucket}/{prefix}",
                "rows": day.rows[tf],
            }
        )
    return outcome


def _summary(symbols: list[str], dates: list[date], outcomes: list[SymbolDayOutcome]) -> dict:
    bars = dict.fromkeys(TIMEFRAMES, 0)
    excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
    for o in outcomes:
        if o.status == "written":
            for tf in TIMEFRAMES:
                bars[tf] += o.rows[tf]
        for reason, count in o.excluded.items():
            excluded[reason] += count

    def days(status: str) -> list[dict]:
        return [
            {
                "symbol": o.symbol,
                "date": o.trading_date.isoformat(),
                **({"error": o.error} if o.error else {}),
            }
            for o in outcomes
            if o.status == status
        ]

    return {
        "dates": [d.isoformat() for d in dates],
        "symbols": len(symbols),
        "partitions": [p for o in outcomes for p in o.partitions],
        "bars": bars,
        "excluded": excluded,
        "no_raw": sorted({o.symbol for o in outcomes if o.status == "no_raw"}),
        "no_raw_days": days("no_raw"),
        "empty": days("empty"),
        "failed": days("failed"),
        "envelopes": sum(o.envelopes for o in outcomes),
        "stale_removed": sum(o.stale_removed for o in outcomes),
    }


# --- job arguments (the Glue entry script stays a thin adapter) --------------------------------
def parse_dates(text: str | None, *, argument: str = "--dates") -> list[date]:
    """``"2025-11-25,2025-11-26"`` -> dates; ``InvalidInput`` naming ``argument`` if malformed."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise InvalidInput(f"{argument} is empty; expected comma-separated YYYY-MM-DD dates")
    dates = []
    for part in parts:
        try:
            if not _ISO_DATE.fullmatch(part):
                raise ValueError(part)
            dates.append(date.fromisoformat(part))
        except ValueError:
            raise InvalidInput(f"{argument} has {part!r}, which is not a YYYY-MM-DD date") from None
    return dates


def load_run(s3, bucket: str, key: str, *, argument: str = "--symbols_key") -> tuple[list[str], list[date] | None]:
    """The symbols, and the run's ``dates`` when the document has them, of ``{"symbols": [...], "dates"?: [...]}``."""
    source = f"{argument} s3://{bucket}/{key}"
    document = _read_json(s3, bucket, key, source)
    symbols = document.get("symbols") if isinstance(document, dict) else None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise InvalidInput(f'{source} must be {{"symbols": ["NSE:SBIN-EQ", ...]}}')
    try:
        symbols = _unique_symbols(symbols)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc}") from None
    dates = document.get("dates")
    if dates is None:
        return symbols, None
    if not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
        raise InvalidInput(f'{source}: "dates" must be a list of YYYY-MM-DD strings')
    return symbols, parse_dates(",".join(dates), argument=f'{source} "dates"') if dates else []


def load_manifests(s3, bucket: str, prefix: str, *, argument: str = "--ingested_prefix") -> list[IngestManifest]:
    """Every ingest manifest (``*.json``) under ``s3://bucket/prefix``; ``InvalidInput`` naming a bad one."""
    check_prefix(prefix, name=argument)
    manifests = []
    for key in lake.list_keys(s3, bucket, prefix):
        if not key.endswith(".json"):
            continue
        source = f"ingest manifest s3://{bucket}/{key}"
        document = _read_json(s3, bucket, key, source)
        symbol = document.get("symbol") if isinstance(document, dict) else None
        dates = document.get("dates") if isinstance(document, dict) else None
        if not isinstance(symbol, str) or not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
            raise InvalidInput(f'{source} must be {{"symbol": "EXCH:SYMBOL", "dates": ["YYYY-MM-DD", ...], ...}}')
        try:
            split_symbol(symbol)
            parsed = parse_dates(",".join(dates), argument=f'{source} "dates"') if dates else []
        except InvalidInput as exc:
            raise InvalidInput(f"{source}: {exc}") from None
        manifests.append(IngestManifest(symbol, tuple(sorted(set(parsed)))))
    return manifests


def _read_json(s3, bucket: str, key: str, source: str) -> object:
    try:
        return orjson.loads(lake.read_bytes(s3, bucket, key))
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"{source} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not JSON ({exc})") from None


def run_from_job_arguments(args: Mapping[str, str | None], *, s3) -> dict:
    """Validate the Glue job arguments (:data:`JOB_ARGUMENTS`) and run :func:`run_aggregation`."""

    def given(name: str) -> str | None:
        value = args.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    for name in REQUIRED_JOB_ARGUMENTS:
        if given(name) is None:
            raise InvalidInput(f"job argument --{name} is missing or empty")
    prefix = given("ingested_prefix")
    if prefix is None and given("dates") is None:
        raise InvalidInput("job argument --dates is missing or empty (it is required without --ingested_prefix)")
    symbols, run_dates = load_run(s3, args["raw_bucket"], args["symbols_key"])
    if given("dates") is not None:
        run_dates = parse_dates(args["dates"])
    return run_aggregation(
        s3=s3,
        raw_bucket=args["raw_bucket"],
        processed_bucket=args["processed_bucket"],
        symbols=symbols,
        dates=run_dates,
        ingested=load_manifests(s3, args["raw_bucket"], prefix) if prefix else None,
        result_key=args["result_key"],
    )


def _unique_symbols(symbols: list[str]) -> list[str]:
    if isinstance(symbols, str) or not symbols:
        raise InvalidInput(f"symbols {symbols!r} must be a non-empty list of EXCHANGE:SYMBOL strings")
    for s in symbols:
        split_symbol(s)
    return list(dict.fromkeys(symbols))


def _unique_dates(dates: list[date]) -> list[date]:
    if not dates or any(type(d) is not date for d in dates):  # a datetime would hide a TZ bug
        raise InvalidInput(f"dates {dates!r} must be a non-empty list of datetime.date")
    return sorted(set(dates))
