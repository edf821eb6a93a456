"""S3 key conventions of the lake: raw envelopes, dead letters, ingest manifests and processed Parquet partitions.

Pure functions, no I/O. Dates in keys are IST trading dates; the timestamps inside file names are
UTC, basic ISO-8601 with microseconds, so the keys of one day sort by time. Symbols are kept
verbatim (``M&M-EQ`` stays ``M&M-EQ``: S3 keys allow ``&``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from pricefeed.errors import InvalidInput
from pricefeed.symbol import Symbol

TIMEFRAMES = ("1m", "5m", "15m", "1d")
PARTITION_KEYS = ("timeframe", "exchange", "symbol", "year", "month", "day")
COVERAGE_PARTITION_KEYS = ("exchange", "symbol", "year", "month", "day")
BARS_MONTHLY_PARTITION_KEYS = ("timeframe", "exchange", "year", "month")
COVERAGE_MONTHLY_PARTITION_KEYS = ("exchange", "year", "month")
# The tables a job result's partitions belong to (the catalog step maps them to the deployed Glue names).
BARS_TABLE, COVERAGE_TABLE = "bars", "coverage"
BARS_MONTHLY_TABLE, COVERAGE_MONTHLY_TABLE = "bars_monthly", "coverage_monthly"

RAW_ROOT = "ohlcv/raw/"
DEAD_LETTER_ROOT = "ohlcv/errors/"
PROCESSED_ROOT = "processed/"
#: The coverage ledger sits beside the bars, not under their table's location ``processed/`` (it was
#: ``processed/coverage/``): a crawler or MSCK REPAIR over ``processed/`` would mix the two schemas.
COVERAGE_ROOT = "coverage/"
#: The candles the bars left out, per symbol-day (``pricefeed.aggregate.quarantine``), partitioned like the ledger.
QUARANTINE_ROOT = "quarantine/"
#: The compacted tier (``pricefeed.aggregate.compact``): every symbol's bars in one file per timeframe, exchange and
#: IST month; every symbol's ledger rows in one file per exchange and month.
BARS_MONTHLY_ROOT = "bars_monthly/"
COVERAGE_MONTHLY_ROOT = "coverage_monthly/"
PART_FILE = "part-00000.parquet"

def raw_symbol_prefix(symbol: Symbol) -> str:
    """Prefix holding every raw object of one symbol, all dates (ends with ``/``)."""
    return f"{RAW_ROOT}symbol={symbol.name}/exchange={symbol.exchange}/"


def raw_day_prefix(symbol: Symbol, trading_date: date) -> str:
    """Prefix holding every raw object (envelopes and references) of one symbol and IST date (ends with ``/``)."""
    return raw_symbol_prefix(symbol) + _date_path(trading_date)


def raw_key(symbol: Symbol, trading_date: date, fetched_at: datetime) -> str:
    """Key of one raw envelope; ``fetched_at`` must be tz-aware (rendered in UTC)."""
    return f"{raw_day_prefix(symbol, trading_date)}ingest-{utc_stamp(fetched_at, name='fetched_at')}.json"


def ingested_manifest_key(ingested_prefix: str, symbol: Symbol) -> str:
    """``<ingested_prefix><EXCH>/<SYMBOL>.json``: what one run's ingest of ``symbol`` stored.

    ``ingested_prefix`` must be a non-empty relative prefix ending with ``/`` (``ohlcv/runs/<run_id>/ingested/``).
    """
    check_prefix(ingested_prefix, name="ingested_prefix")
    return f"{ingested_prefix}{symbol.exchange}/{symbol.name}.json"


RUNS_ROOT = "ohlcv/runs/"
#: Ingests whose symbol-days no finished aggregation has built yet (see :func:`pending_key`).
PENDING_ROOT = "ohlcv/pending/"


def pending_key(symbol: Symbol, run_id: str, stored_at: datetime) -> str:
    """``ohlcv/pending/symbol=<SYM>/exchange=<EXCH>/<UTC stamp>-<run_id>.json``: one ingest's promise that its
    symbol-days get built. The ingest writes it next to its manifest; an aggregation job that finishes deletes
    the ones it listed before it started, so a job that dies leaves them for the next one. Never overwritten."""
    stamp = utc_stamp(stored_at, name="stored_at")
    return f"{PENDING_ROOT}symbol={symbol.name}/exchange={symbol.exchange}/{stamp}-{run_id or 'no-run'}.json"


@dataclass(frozen=True)
class RunKeys:
    """The keys of one run's artefacts in the raw bucket, all under ``ohlcv/runs/<run_id>/``: the plan's Map
    items and symbols document, the ingest manifests, the failure notes and the aggregation job's result."""

    run_id: str

    def __post_init__(self) -> None:
        run_id = self.run_id
        if not isinstance(run_id, str) or not run_id or "/" in run_id or run_id.strip() != run_id:
            raise InvalidInput(f"run id {run_id!r} must be a non-empty name without '/'")

    @property
    def prefix(self) -> str:
        return f"{RUNS_ROOT}{self.run_id}/"

    @property
    def items(self) -> str:
        return self.prefix + "items.json"

    @property
    def symbols(self) -> str:
        return self.prefix + "symbols.json"

    @property
    def result(self) -> str:
        return self.prefix + "aggregate-result.json"

    @property
    def ingested_prefix(self) -> str:
        return self.prefix + "ingested/"

    @property
    def map_results_prefix(self) -> str:
        """Where the Distributed Map's ResultWriter puts every child's result (not in the state: 256 KiB)."""
        return self.prefix + "map-results"

    @property
    def paused_prefix(self) -> str:
        return self.prefix + "paused/"

    def paused_marker(self, symbol: Symbol) -> str:
        """``…/paused/<EXCH>/<SYMBOL>.json``: the symbol stopped for want of a Fyers login (a token that died
        mid-run); the run ingests it again after the next login (``pricefeed.ingest.paused``)."""
        return f"{self.paused_prefix}{symbol.exchange}/{symbol.name}.json"

    def resume_items(self, login_round: int) -> str:
        """The Map items of the paused symbols, after the run's ``login_round``-th wait for a login."""
        return f"{self.prefix}items-after-login-{int(login_round)}.json"

    @property
    def failed_prefix(self) -> str:
        return self.prefix + "failed/"

    def failed_marker(self, symbol: Symbol) -> str:
        """``…/failed/<EXCH>/<SYMBOL>.json``: the run's note that ``symbol`` was dead-lettered (its dead letter
        lives under ``ohlcv/errors/``); lets a run's progress and redrive find failures by run."""
        return f"{self.failed_prefix}{symbol.exchange}/{symbol.name}.json"


def partitions_key(result_key: str, table: str) -> str:
    """Where the aggregation job lists the partitions it wrote of one table, one JSON object a line, next to its
    result (``…/aggregate-result.json`` -> ``…/aggregate-result.bars.jsonl``): a backfill writes millions, which
    no single JSON document should hold, and the catalog step reads only the lists of tables it registers."""
    if not isinstance(result_key, str) or not result_key or result_key.endswith("/"):
        raise InvalidInput(f"result key {result_key!r} must name an object")
    return f"{result_key.removesuffix('.json')}.{table}.jsonl"


def check_prefix(prefix: str, *, name: str = "prefix") -> str:
    """``prefix`` if it is a non-empty S3 key prefix ending with ``/`` and not starting with one."""
    if not isinstance(prefix, str) or not prefix.endswith("/") or prefix.startswith("/") or prefix.strip() != prefix:
        raise InvalidInput(f"{name} {prefix!r} must be a non-empty S3 key prefix ending with '/'")
    return prefix


def dead_letter_key(symbol: Symbol, trading_date: date, failed_at: datetime) -> str:
    """Key of the dead-letter object for a symbol-day that failed at ``failed_at`` (tz-aware)."""
    stamp = utc_stamp(failed_at, name="failed_at")
    return f"{DEAD_LETTER_ROOT}symbol={symbol.name}/{_date_path(trading_date)}failed-{stamp}.json"


def processed_prefix(timeframe: str, symbol: Symbol, trading_date: date) -> str:
    """Prefix of one processed partition (ends with ``/``)."""
    values = partition_values(timeframe, symbol, trading_date)
    return PROCESSED_ROOT + "".join(f"{k}={v}/" for k, v in zip(PARTITION_KEYS, values, strict=True))


def processed_key(timeframe: str, symbol: Symbol, trading_date: date) -> str:
    """The single Parquet file of a partition. Its name is fixed, so a rerun overwrites it."""
    return processed_prefix(timeframe, symbol, trading_date) + PART_FILE


def partition_values(timeframe: str, symbol: Symbol, trading_date: date) -> list[str]:
    """Partition values in the order of :data:`PARTITION_KEYS` (the Glue table's partition keys)."""
    if timeframe not in TIMEFRAMES:
        raise InvalidInput(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    d = _check_date(trading_date)
    return [timeframe, symbol.exchange, symbol.name, f"{d.year:04d}", f"{d.month:02d}", f"{d.day:02d}"]


def coverage_prefix(symbol: Symbol, trading_date: date) -> str:
    """Prefix of one coverage-ledger partition (``pricefeed.aggregate.ledger``)."""
    values = coverage_partition_values(symbol, trading_date)
    return COVERAGE_ROOT + "".join(f"{k}={v}/" for k, v in zip(COVERAGE_PARTITION_KEYS, values, strict=True))


def coverage_key(symbol: Symbol, trading_date: date) -> str:
    """The single Parquet file of a coverage-ledger partition (fixed name: a rerun overwrites it)."""
    return coverage_prefix(symbol, trading_date) + PART_FILE


def quarantine_prefix(symbol: Symbol, trading_date: date) -> str:
    """Prefix of one quarantine partition (keys as the ledger's)."""
    values = coverage_partition_values(symbol, trading_date)
    return QUARANTINE_ROOT + "".join(f"{k}={v}/" for k, v in zip(COVERAGE_PARTITION_KEYS, values, strict=True))


def quarantine_key(symbol: Symbol, trading_date: date) -> str:
    return quarantine_prefix(symbol, trading_date) + PART_FILE


def coverage_partition_values(symbol: Symbol, trading_date: date) -> list[str]:
    """Partition values in the order of :data:`COVERAGE_PARTITION_KEYS` (the coverage table's keys)."""
    return partition_values("1d", symbol, trading_date)[1:]


def monthly_prefix(root: str, keys: tuple[str, ...], values: list[str]) -> str:
    """Prefix of one compacted partition under ``root`` (:data:`BARS_MONTHLY_ROOT` or :data:`COVERAGE_MONTHLY_ROOT`)."""
    return root + "".join(f"{k}={v}/" for k, v in zip(keys, values, strict=True))


def bars_monthly_values(timeframe: str, exchange: str, year: int, month: int) -> list[str]:
    """Partition values in the order of :data:`BARS_MONTHLY_PARTITION_KEYS` (the ``bars_monthly`` table's keys)."""
    if timeframe not in TIMEFRAMES:
        raise InvalidInput(f"timeframe {timeframe!r} is not one of {', '.join(TIMEFRAMES)}")
    return [timeframe, exchange, f"{year:04d}", f"{month:02d}"]


def bars_monthly_key(timeframe: str, exchange: str, year: int, month: int) -> str:
    """The single Parquet file of every symbol's ``timeframe`` bars on ``exchange`` in an IST month."""
    values = bars_monthly_values(timeframe, exchange, year, month)
    return monthly_prefix(BARS_MONTHLY_ROOT, BARS_MONTHLY_PARTITION_KEYS, values) + PART_FILE


def coverage_monthly_key(exchange: str, year: int, month: int) -> str:
    """The single Parquet file of every symbol's ledger rows on ``exchange`` in an IST month."""
    values = [exchange, f"{year:04d}", f"{month:02d}"]
    return monthly_prefix(COVERAGE_MONTHLY_ROOT, COVERAGE_MONTHLY_PARTITION_KEYS, values) + PART_FILE


def utc_stamp(moment: datetime, *, name: str = "timestamp") -> str:
    """``2026-11-25 10:00:00.123456+00:00`` -> ``20261125T100000123456Z``; naive -> ``InvalidInput``."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise InvalidInput(f"{name} {moment!r} must be a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _check_date(trading_date: date) -> date:
    # datetime is a date subclass; accepting one would hide a UTC-vs-IST date mistake.
    if not isinstance(trading_date, date) or isinstance(trading_date, datetime):
        raise InvalidInput(f"trading_date {trading_date!r} must be a datetime.date")
    return trading_date


def _date_path(trading_date: date) -> str:
    d = _check_date(trading_date)
    return f"year={d.year:04d}/month={d.month:02d}/day={d.day:02d}/"
