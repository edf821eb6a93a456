"""The aggregation job's arguments: what the Glue task passes, checked, turned into one ``run_aggregation``.

Arguments (without the leading ``--``): ``raw_bucket``, ``processed_bucket``, ``symbols_key`` (JSON
``{"symbols": [...], "dates"?: [...]}`` in the raw bucket), ``result_key``; ``ingested_prefix`` (the run's
ingest manifests: exactly the symbol-days they name) and the run's IST dates: ``dates``
(``YYYY-MM-DD,...``), or ``from``/``to`` (inclusive, for a backfill), else the ``dates`` of the
``symbols_key`` document, else IST today. With ``ingested_prefix``, the pending markers of earlier runs too
(``run_aggregation``). Every error names the argument or object at fault.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

import orjson
from botocore.exceptions import ClientError

from pricefeed.aggregate.job import run_aggregation
from pricefeed.aggregate.work import IngestManifest, unique_symbols
from pricefeed.errors import InvalidInput
from pricefeed.istime import ISO_DATE, MINUTE_HISTORY_START, days, ist_today
from pricefeed.lake import storage
from pricefeed.lake.paths import PENDING_ROOT, check_prefix
from pricefeed.symbol import Symbol

REQUIRED_JOB_ARGUMENTS = ("raw_bucket", "processed_bucket", "symbols_key", "result_key")
OPTIONAL_JOB_ARGUMENTS = ("dates", "from", "to", "ingested_prefix")
JOB_ARGUMENTS = REQUIRED_JOB_ARGUMENTS + OPTIONAL_JOB_ARGUMENTS

log = logging.getLogger(__name__)
#: What botocore accepts as a bucket name (it refuses anything else before sending the request).
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,255}")


def parse_dates(text: str | None, *, argument: str = "--dates") -> list[date]:
    """``"2025-11-25,2025-11-26"`` -> dates; ``InvalidInput`` naming ``argument`` if malformed."""
    if text is not None and not isinstance(text, str):
        raise InvalidInput(f"{argument} must be text of comma-separated YYYY-MM-DD dates")
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    if not parts:
        raise InvalidInput(f"{argument} is empty; expected comma-separated YYYY-MM-DD dates")
    dates = []
    for part in parts:
        try:
            if not ISO_DATE.fullmatch(part):
                raise ValueError(part)
            dates.append(date.fromisoformat(part))
        except ValueError:
            raise InvalidInput(f"{argument} has {part!r}, which is not a YYYY-MM-DD date") from None
    today = ist_today()
    for day in dates:  # a typo'd year would otherwise aggregate decades of empty days
        if not MINUTE_HISTORY_START <= day <= today:
            raise InvalidInput(
                f"{argument} has {day}, outside the minute history there is "
                f"({MINUTE_HISTORY_START} .. IST today, {today})"
            )
    return dates


def load_run(s3, bucket: str, key: str, *, argument: str = "--symbols_key") -> tuple[list[Symbol], list[date] | None]:
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
    try:
        keys = storage.list_keys(s3, bucket, prefix)
    except ClientError as exc:
        _no_such_bucket(exc, f"{argument} s3://{bucket}/{prefix}")
        raise
    for key in keys:
        if not key.endswith(".json"):
            continue
        source = f"ingest manifest s3://{bucket}/{key} (from {argument})"
        document = _read_json(s3, bucket, key, source)
        symbol = document.get("symbol") if isinstance(document, dict) else None
        dates = document.get("dates") if isinstance(document, dict) else None
        if not isinstance(symbol, str) or not isinstance(dates, list) or not all(isinstance(d, str) for d in dates):
            raise InvalidInput(f'{source} must be {{"symbol": "EXCH:SYMBOL", "dates": ["YYYY-MM-DD", ...], ...}}')
        try:
            parsed = parse_dates(",".join(dates), argument='"dates"') if dates else []
            manifests.append(IngestManifest(Symbol.parse(symbol), tuple(sorted(set(parsed)))))
        except InvalidInput as exc:
            raise InvalidInput(f"{source}: {exc}") from None
    return manifests


def load_pending(s3, bucket: str) -> dict[str, IngestManifest]:
    """Every pending marker (``paths.PENDING_ROOT``) by key. A marker that cannot be read as one is left in
    place and logged: it must not fail every run after it."""
    found: dict[str, IngestManifest] = {}
    for key in storage.list_keys(s3, bucket, PENDING_ROOT):
        source = f"pending marker s3://{bucket}/{key}"
        try:
            document = _read_json(s3, bucket, key, source)
            symbol, dates = document["symbol"], document["dates"]
            parsed = parse_dates(",".join(dates), argument='"dates"') if dates else []
            found[key] = IngestManifest(Symbol.parse(symbol), tuple(sorted(set(parsed))))
        except (InvalidInput, KeyError, TypeError) as exc:
            log.warning("%s is not a pending marker (%s); left alone", source, exc)
    return found


def _read_json(s3, bucket: str, key: str, source: str) -> object:
    try:
        return orjson.loads(storage.read_bytes(s3, bucket, key))
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"{source} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"{source} is not JSON ({exc})") from None
    except ClientError as exc:
        _no_such_bucket(exc, source)
        raise


def _no_such_bucket(exc: ClientError, source: str) -> None:
    """``InvalidInput`` naming ``source`` when S3 said its bucket does not exist (else return: re-raise it)."""
    if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
        raise InvalidInput(f"{source}: the bucket does not exist") from None


def _check_bucket(name: str, value: str) -> str:
    if not _BUCKET.fullmatch(value):
        raise InvalidInput(f"job argument --{name} {value[:80]!r} is not an S3 bucket name")
    return value


def _check_key(name: str, value: str) -> str:
    # isprintable() also refuses lone surrogates (from undecodable argv bytes), which S3 cannot take.
    if not value.isprintable() or len(value.encode("utf-8")) > 1024:
        raise InvalidInput(f"job argument --{name} {value[:80]!r} is not an S3 key (printable, at most 1024 bytes)")
    return value


def run_from_job_arguments(args: Mapping[str, str | None], *, s3, spark_context: Any = None) -> dict:
    """Validate the Glue job arguments (:data:`JOB_ARGUMENTS`) and run :func:`run_aggregation`: on the
    executors of ``spark_context`` when given (``pricefeed.aggregate.spark``), else on threads here."""

    if not isinstance(args, Mapping):
        raise InvalidInput("job arguments must be a mapping of --name to value")

    def given(name: str) -> str | None:
        value = args.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else None

    # Every argument is checked before anything is read or written, so a bad one touches nothing.
    for name in REQUIRED_JOB_ARGUMENTS:
        if given(name) is None:
            raise InvalidInput(f"job argument --{name} is missing or empty")
    raw_bucket = _check_bucket("raw_bucket", given("raw_bucket"))
    processed_bucket = _check_bucket("processed_bucket", given("processed_bucket"))
    symbols_key = _check_key("symbols_key", given("symbols_key"))
    result_key = _check_key("result_key", given("result_key"))
    prefix = given("ingested_prefix")
    if prefix is not None:
        check_prefix(_check_key("ingested_prefix", prefix), name="job argument --ingested_prefix")
    run_dates: list[date] | None = None
    if given("dates") is not None and (given("from") or given("to")):
        raise InvalidInput("job arguments --dates and --from/--to exclude each other")
    if given("dates") is not None:
        run_dates = parse_dates(given("dates"))
    elif given("from") or given("to"):
        if not (given("from") and given("to")):
            raise InvalidInput("job arguments --from and --to go together")
        first = parse_dates(given("from"), argument="--from")
        last = parse_dates(given("to"), argument="--to")
        if len(first) != 1 or len(last) != 1:
            raise InvalidInput("job arguments --from and --to each take one YYYY-MM-DD date")
        if last[0] < first[0]:
            raise InvalidInput(f"job argument --to ({last[0]}) is before --from ({first[0]})")
        run_dates = days(first[0], last[0])
    symbols, document_dates = load_run(s3, raw_bucket, symbols_key)
    if run_dates is None:
        run_dates = document_dates
        if prefix is None and not run_dates:
            run_dates = [ist_today()]
    aggregate_all = compact_all = None
    if spark_context is not None:
        from pricefeed.aggregate.spark import aggregate_on_spark, compact_on_spark

        def aggregate_all(work: list[tuple[str, date]], hours: dict[str, str]) -> list:
            return aggregate_on_spark(
                spark_context, work, raw_bucket=raw_bucket, processed_bucket=processed_bucket, hours=hours
            )

        def compact_all(months: list) -> list:
            return compact_on_spark(spark_context, months, processed_bucket=processed_bucket)

    return run_aggregation(
        s3=s3,
        raw_bucket=raw_bucket,
        processed_bucket=processed_bucket,
        symbols=symbols,
        dates=run_dates,
        ingested=load_manifests(s3, raw_bucket, prefix) if prefix else None,
        result_key=result_key,
        aggregate_all=aggregate_all,
        pending=load_pending(s3, raw_bucket) if prefix else None,
        compact_all=compact_all,
    )


EXECUTORS = ("spark", "threads")


def job_arguments(argv: list[str]) -> tuple[dict, bool]:
    """The job's arguments and whether this runs on Glue."""
    names = [*JOB_ARGUMENTS, "executor"]
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:  # running locally: no awsglue, same "--key value" pairs
        parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
        for name in names:
            parser.add_argument(f"--{name}")
        try:
            known, _glue_extras = parser.parse_known_args(argv[1:])
        except argparse.ArgumentError as exc:
            raise InvalidInput(f"job argument {exc.argument_name}: {exc.message}") from None
        return vars(known), False
    # getResolvedOptions fails on any name it is given that is absent: ask for optional ones only when passed.
    optional = [*OPTIONAL_JOB_ARGUMENTS, "executor"]
    present = [n for n in optional if any(a == f"--{n}" or a.startswith(f"--{n}=") for a in argv)]
    return getResolvedOptions(argv, [*REQUIRED_JOB_ARGUMENTS, *present]), True


def spark_context(args: dict, on_glue: bool):
    """A SparkContext when the symbol-days run on Spark, else None."""
    executor = args.get("executor") or ("spark" if on_glue else "threads")
    if executor not in EXECUTORS:
        raise InvalidInput(f"job argument --executor is {executor!r}, not one of {', '.join(EXECUTORS)}")
    if executor == "threads":
        return None
    from pricefeed.aggregate.spark import spark_context as context

    return context(on_glue=on_glue)
