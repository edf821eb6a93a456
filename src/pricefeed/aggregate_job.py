"""The aggregation job (run by the Glue task): raw envelopes of symbol-days -> Parquet partitions.

For each (symbol, IST date) it reads every raw envelope under ``paths.raw_day_prefix``, builds the
1m/5m/15m/1d bars (``aggregate.build_bars``) and replaces each partition's single file
(``paths.processed_key``), symbol-days in parallel on a thread pool.

Outcomes per symbol-day: ``written``; ``no_raw`` (no envelope: processed data is left alone, raw may
have expired); ``empty`` (envelopes without a usable session candle: nothing is written and any
processed file of that day is removed, since it can no longer be derived from raw); ``failed`` (a
malformed envelope: that day is left untouched, the rest of the run completes, the result is
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
from pricefeed.candles import EXCLUSION_REASONS, parse_envelope
from pricefeed.errors import InvalidInput
from pricefeed.paths import (
    PARTITION_KEYS,
    TIMEFRAMES,
    partition_values,
    processed_key,
    processed_prefix,
    raw_day_prefix,
    split_symbol,
)

log = logging.getLogger(__name__)

# Glue job arguments (without the leading "--"); all are required.
JOB_ARGUMENTS = ("raw_bucket", "processed_bucket", "dates", "symbols_key", "result_key")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


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
    dates: list[date],
    result_key: str | None = None,
    max_workers: int = 8,
) -> dict:
    """Aggregate every (symbol, date) and return the run summary (also written to ``result_key``).

    Keep ``max_workers`` at or below the client's ``max_pool_connections`` (boto3 default: 10).
    """
    symbols = _unique_symbols(symbols)
    dates = _unique_dates(dates)
    if not isinstance(max_workers, int) or max_workers < 1:
        raise InvalidInput(f"max_workers {max_workers!r} must be a positive integer")
    work = [(d, s) for d in dates for s in symbols]

    def one(item: tuple[date, str]) -> SymbolDayOutcome:
        trading_date, symbol = item
        return aggregate_symbol_day(s3, raw_bucket, processed_bucket, symbol, trading_date)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="aggregate") as pool:
        outcomes = list(pool.map(one, work))

    result = _summary(symbols, dates, outcomes)
    log.info(
        "aggregated %d symbol-days: bars=%s no_raw=%d empty=%d failed=%d",
        len(outcomes),
        result["bars"],
        len(result["no_raw_days"]),
        len(result["empty"]),
        len(result["failed"]),
    )
    if result_key:
        lake.write_json(s3, raw_bucket, result_key, result)
    if result["failed"]:
        first = result["failed"][0]
        raise InvalidInput(
            f"{len(result['failed'])} symbol-day(s) have malformed raw envelopes and were left untouched; "
            f"first: {first['error']}"
        )
    return result


def aggregate_symbol_day(
    s3, raw_bucket: str, processed_bucket: str, symbol: str, trading_date: date
) -> SymbolDayOutcome:
    """Rebuild the four partitions of one symbol-day from its raw envelopes (see module docstring)."""
    outcome = SymbolDayOutcome(symbol, trading_date)
    keys = [
        k
        for k in lake.list_keys(s3, raw_bucket, raw_day_prefix(symbol, trading_date))
        if k.rsplit("/", 1)[-1].startswith("ingest-") and k.endswith(".json")
    ]
    if not keys:
        outcome.status = "no_raw"
        return outcome
    try:
        envelopes = [parse_envelope(lake.read_bytes(s3, raw_bucket, k), source=f"s3://{raw_bucket}/{k}") for k in keys]
        day = build_bars(symbol, trading_date, envelopes)
    except InvalidInput as exc:
        outcome.status, outcome.error = "failed", str(exc)
        return outcome

    outcome.envelopes, outcome.rows, outcome.excluded = len(keys), day.rows, day.excluded
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


def load_symbols(s3, bucket: str, key: str, *, argument: str = "--symbols_key") -> list[str]:
    """Read ``{"symbols": ["NSE:SBIN-EQ", ...]}`` from ``s3://bucket/key``."""
    source = f"{argument} s3://{bucket}/{key}"
    try:
        document = orjson.loads(lake.read_bytes(s3, bucket, key))
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"{source} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not JSON ({exc})") from None
    symbols = document.get("symbols") if isinstance(document, dict) else None
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise InvalidInput(f'{source} must be {{"symbols": ["NSE:SBIN-EQ", ...]}}')
    try:
        return _unique_symbols(symbols)
    except InvalidInput as exc:
        raise InvalidInput(f"{source}: {exc}") from None


def run_from_job_arguments(args: Mapping[str, str | None], *, s3) -> dict:
    """Validate the Glue job arguments (:data:`JOB_ARGUMENTS`) and run :func:`run_aggregation`."""
    for name in JOB_ARGUMENTS:
        if not isinstance(args.get(name), str) or not args[name].strip():
            raise InvalidInput(f"job argument --{name} is missing or empty")
    return run_aggregation(
        s3=s3,
        raw_bucket=args["raw_bucket"],
        processed_bucket=args["processed_bucket"],
        symbols=load_symbols(s3, args["raw_bucket"], args["symbols_key"]),
        dates=parse_dates(args["dates"]),
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
