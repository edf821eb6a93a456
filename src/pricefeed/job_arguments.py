"""The aggregation job's arguments: what the Glue task passes, checked, turned into one ``run_aggregation``.

Arguments (without the leading ``--``): ``raw_bucket``, ``processed_bucket``, ``symbols_key`` (JSON
``{"symbols": [...], "dates"?: [...]}`` in the raw bucket), ``result_key``; ``ingested_prefix`` (the run's
ingest manifests: exactly the symbol-days they name) and the run's IST dates: ``dates``
(``YYYY-MM-DD,...``), or ``from``/``to`` (inclusive, for a backfill), else the ``dates`` of the
``symbols_key`` document, else IST today. Every error names the argument or object at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson

from pricefeed import lake
from pricefeed.aggregate_job import IngestManifest, run_aggregation, unique_symbols
from pricefeed.errors import InvalidInput
from pricefeed.istime import days, ist_today
from pricefeed.paths import check_prefix, split_symbol

REQUIRED_JOB_ARGUMENTS = ("raw_bucket", "processed_bucket", "symbols_key", "result_key")
OPTIONAL_JOB_ARGUMENTS = ("dates", "from", "to", "ingested_prefix")
JOB_ARGUMENTS = REQUIRED_JOB_ARGUMENTS + OPTIONAL_JOB_ARGUMENTS
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


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
        symbols = unique_symbols(symbols)
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


def run_from_job_arguments(args: Mapping[str, str | None], *, s3, spark_context: Any = None) -> dict:
    """Validate the Glue job arguments (:data:`JOB_ARGUMENTS`) and run :func:`run_aggregation`: on the
    executors of ``spark_context`` when given (``pricefeed.spark_runner``), else on threads here."""

    def given(name: str) -> str | None:
        value = args.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    for name in REQUIRED_JOB_ARGUMENTS:
        if given(name) is None:
            raise InvalidInput(f"job argument --{name} is missing or empty")
    prefix = given("ingested_prefix")
    symbols, run_dates = load_run(s3, args["raw_bucket"], args["symbols_key"])
    if given("dates") is not None and (given("from") or given("to")):
        raise InvalidInput("job arguments --dates and --from/--to exclude each other")
    if given("dates") is not None:
        run_dates = parse_dates(args["dates"])
    elif given("from") or given("to"):
        if not (given("from") and given("to")):
            raise InvalidInput("job arguments --from and --to go together")
        first = parse_dates(given("from"), argument="--from")
        last = parse_dates(given("to"), argument="--to")
        if len(first) != 1 or len(last) != 1:
            raise InvalidInput("job arguments --from and --to each take one YYYY-MM-DD date")
        run_dates = days(first[0], last[0])  # InvalidInput when --to is before --from
    elif prefix is None and not run_dates:
        run_dates = [ist_today()]
    aggregate_all = None
    if spark_context is not None:
        from pricefeed.spark_runner import aggregate_on_spark

        def aggregate_all(work: list[tuple[str, date]]) -> list:
            return aggregate_on_spark(
                spark_context, work, raw_bucket=args["raw_bucket"], processed_bucket=args["processed_bucket"]
            )

    return run_aggregation(
        s3=s3,
        raw_bucket=args["raw_bucket"],
        processed_bucket=args["processed_bucket"],
        symbols=symbols,
        dates=run_dates,
        ingested=load_manifests(s3, args["raw_bucket"], prefix) if prefix else None,
        result_key=args["result_key"],
        aggregate_all=aggregate_all,
    )


