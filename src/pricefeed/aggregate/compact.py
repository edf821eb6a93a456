"""The compacted tier: every symbol's bars of one timeframe, exchange and IST month in one Parquet file; every
symbol's coverage-ledger rows of one exchange and month in another.

The per-symbol-per-day layout (``paths.processed_key``, ``paths.coverage_key``) stays the source of truth; it is one
tiny file per symbol-day (and timeframe), fine for one symbol's days and slow for everything else (a year of every
symbol's daily bars is ~650,000 one-row files). A compacted file (``paths.bars_monthly_key``,
``paths.coverage_monthly_key``) holds the same rows plus a ``symbol`` column, sorted by (symbol, ts) or (symbol,
trade_date), zstd-compressed, in row groups whose symbol statistics let a reader skip the symbols it does not want.
Glue tables ``bars_monthly`` (timeframe, exchange, year, month) and ``coverage_monthly`` (exchange, year, month).

How it stays equal to the per-day files: after a job has built its symbol-days, :func:`compact` takes each month
they touch (one Spark task a month on Glue, a thread here), reads its compacted file, drops every row of the
symbol-days just built, adds those symbol-days' rows read back from their per-day files as they are now (a day
emptied has no bars), sorts and writes it back. So a
rebuild of any day of a month (a redrive of a closed month included) replaces that day's rows: no duplicates, no
stale rows, and the same per-day files always give the same bytes. The write is conditional on the file being the
one read (S3 ``If-Match`` / ``If-None-Match``): two jobs compacting one month at once cannot lose each other's
days; the loser reads again and merges again. A job that dies before compacting leaves its pending markers
(``pricefeed.aggregate.job``), so the next job rebuilds those days and compacts them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from botocore.exceptions import ClientError

from pricefeed.aggregate.bars import BAR_SCHEMA
from pricefeed.aggregate.ledger import LEDGER_SCHEMA
from pricefeed.lake import paths
from pricefeed.lake.storage import PARQUET_CONTENT_TYPE
from pricefeed.symbol import Symbol

ROW_GROUP_ROWS = 128 * 1024  # ~20 symbols' month of 1m bars: small enough to skip, large enough to scan fast
#: What S3 answers a conditional write when the object changed since it was read (NoSuchKey: If-Match on an object
#: that is gone; ConditionalRequestConflict: a concurrent conditional write of the same key).
_CHANGED = ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey")
MAX_ATTEMPTS = 8  # conditional writes lost to another job compacting the same month, before giving up


@dataclass(frozen=True)
class Tier:
    """One compacted table: where its files go and how a symbol-day's per-day file feeds it."""

    table: str
    root: str
    keys: tuple[str, ...]
    schema: pa.Schema  # symbol, then the per-day file's columns
    order: str  # the column sorted on after symbol
    timeframes: tuple[str | None, ...]
    per_day_key: Callable[[str | None, Symbol, date], str]


def _ledger_key(_timeframe: str | None, symbol: Symbol, day: date) -> str:
    return paths.coverage_key(symbol, day)


# Module-level functions, not lambdas: a Month (and its Tier) travels to Spark's executors by pickle.
BARS = Tier(
    paths.BARS_MONTHLY_TABLE,
    paths.BARS_MONTHLY_ROOT,
    paths.BARS_MONTHLY_PARTITION_KEYS,
    pa.schema([pa.field("symbol", pa.string()), *BAR_SCHEMA]),
    "ts",
    paths.TIMEFRAMES,
    paths.processed_key,
)
COVERAGE = Tier(
    paths.COVERAGE_MONTHLY_TABLE,
    paths.COVERAGE_MONTHLY_ROOT,
    paths.COVERAGE_MONTHLY_PARTITION_KEYS,
    pa.schema([pa.field("symbol", pa.string()), *LEDGER_SCHEMA]),
    "trade_date",
    (None,),
    _ledger_key,
)
TIERS = (BARS, COVERAGE)


@dataclass(frozen=True)
class Month:
    """One compacted partition: a tier's file of one (timeframe,) exchange and IST month."""

    tier: Tier
    timeframe: str | None
    exchange: str
    year: int
    month: int

    def sort_key(self) -> tuple:
        return (self.tier.table, self.timeframe or "", self.exchange, self.year, self.month)

    @property
    def values(self) -> list[str]:
        values = [self.exchange, f"{self.year:04d}", f"{self.month:02d}"]
        return [self.timeframe, *values] if self.timeframe else values

    @property
    def key(self) -> str:
        return paths.monthly_prefix(self.tier.root, self.tier.keys, self.values) + paths.PART_FILE

    def partition(self, bucket: str, rows: int) -> dict:
        """The catalog's entry for this partition."""
        prefix = paths.monthly_prefix(self.tier.root, self.tier.keys, self.values)
        keys = dict(zip(self.tier.keys, self.values, strict=True))
        return {"table": self.tier.table, **keys, "location": f"s3://{bucket}/{prefix}", "rows": rows}


class CompactionConflict(RuntimeError):
    """Other jobs kept rewriting a month's compacted file while this one tried to merge into it."""


def months_of(symbol_days: Iterable[tuple[Symbol, date]]) -> dict[Month, set[tuple[Symbol, date]]]:
    """The compacted partitions the symbol-days fall in (every tier and timeframe), each with its symbol-days (one
    set an exchange and month, shared by its partitions: a backfill's driver holds each day once, not five times)."""
    by_month: dict[tuple[str, int, int], set[tuple[Symbol, date]]] = {}
    for symbol, day in symbol_days:
        by_month.setdefault((symbol.exchange, day.year, day.month), set()).add((symbol, day))
    return {
        Month(tier, timeframe, exchange, year, month): days
        for (exchange, year, month), days in by_month.items()
        for tier in TIERS
        for timeframe in tier.timeframes
    }


#: Merges every (month, its symbol-days) and returns (rows written, conflicts) of each, in order: a thread pool
#: here, Spark's executors on Glue (``pricefeed.aggregate.spark.compact_on_spark``).
MergeAll = Callable[[list[tuple[Month, set[tuple[Symbol, date]]]]], list[tuple[int, int]]]


def compact(
    s3,
    bucket: str,
    symbol_days: Iterable[tuple[Symbol, date]],
    *,
    max_workers: int = 8,
    merge_all: MergeAll | None = None,
) -> dict:
    """Merge the symbol-days' per-day files into their months' compacted files (see the module docstring).

    Returns ``{"months", "rows", "conflicts", "partitions"}``: ``partitions`` names each written partition for the
    catalog (tables ``bars_monthly`` and ``coverage_monthly``).
    """
    touched = months_of(symbol_days)
    order = sorted(touched, key=Month.sort_key)
    if merge_all is not None:
        done = merge_all([(m, touched[m]) for m in order])
    else:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="compact") as pool:
            done = list(pool.map(lambda m: compact_month(s3, bucket, m, touched[m]), order))
    return {
        "months": len(order),
        "rows": sum(rows for rows, _ in done),
        "conflicts": sum(conflicts for _, conflicts in done),
        "partitions": [m.partition(bucket, rows) for m, (rows, _) in zip(order, done, strict=True)],
    }


def compact_month(
    s3, bucket: str, month: Month, days: set[tuple[Symbol, date]], *, readers: int = 1
) -> tuple[int, int]:
    """(rows written, conditional writes lost) for one month, its per-day files read on ``readers`` threads (one
    S3 client keeps 10 connections: months merged side by side on one client read one file at a time each)."""
    schema = month.tier.schema
    fresh = _fresh_rows(s3, bucket, month, days, readers)  # read once: the per-day files as they are now
    replaced = pa.array(sorted(f"{s.name}|{d.isoformat()}" for s, d in days), pa.string())
    for attempt in range(MAX_ATTEMPTS):
        current, etag = _read(s3, bucket, month.key, schema)
        kept = current.filter(pc.invert(pc.is_in(_symbol_day(current), value_set=replaced)))
        merged = pa.concat_tables([kept, fresh]).sort_by(
            [("symbol", "ascending"), (month.tier.order, "ascending")]
        )
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            body = compacted_bytes(merged, schema)
            s3.put_object(Bucket=bucket, Key=month.key, Body=body, ContentType=PARQUET_CONTENT_TYPE, **condition)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _CHANGED:
                continue  # another job wrote (or removed) the month since it was read: merge into what is there now
            raise
        return merged.num_rows, attempt
    raise CompactionConflict(
        f"compacted file s3://{bucket}/{month.key} changed under each of {MAX_ATTEMPTS} merges; "
        "its days stay pending for the next job"
    )


def _symbol_day(table: pa.Table) -> pa.Array:
    """``SYMBOL|YYYY-MM-DD`` of each row (a join cannot carry the ledger's list columns; a set lookup can)."""
    return pc.binary_join_element_wise(table["symbol"], pc.cast(table["trade_date"], pa.string()), "|")


#: Per-day files a Spark task reads at once for its month (a month of 1m bars for 2,600 symbols is ~55,000 files).
READERS = 8


def _fresh_rows(s3, bucket: str, month: Month, days: set[tuple[Symbol, date]], readers: int) -> pa.Table:
    with ThreadPoolExecutor(max_workers=readers, thread_name_prefix="compact-read") as pool:
        tables = list(pool.map(lambda d: _per_day(s3, bucket, month, *d), sorted(days)))
    return pa.concat_tables([t for t in tables if t is not None] or [month.tier.schema.empty_table()])


def _per_day(s3, bucket: str, month: Month, symbol: Symbol, day: date) -> pa.Table | None:
    try:
        body = s3.get_object(Bucket=bucket, Key=month.tier.per_day_key(month.timeframe, symbol, day))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None  # the day was emptied (or never had bars): its rows go
    own = pa.schema(list(month.tier.schema)[1:])
    table = conform(pq.read_table(io.BytesIO(body)), own)
    return table.add_column(0, "symbol", pa.array([symbol.name] * table.num_rows, pa.string()))


def _read(s3, bucket: str, key: str, schema: pa.Schema) -> tuple[pa.Table, str | None]:
    try:
        got = s3.get_object(Bucket=bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return schema.empty_table(), None
    return conform(pq.read_table(io.BytesIO(got["Body"].read())), schema), got["ETag"]


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order; a column a file written before it existed lacks (``oi``,
    open interest) comes back null."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)


def compacted_bytes(table: pa.Table, schema: pa.Schema = BARS.schema) -> bytes:
    """``table`` as a compacted Parquet file (pinned options: the same rows always give the same bytes)."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table.cast(schema),
        sink,
        compression="zstd",
        compression_level=3,
        version="2.6",
        data_page_version="1.0",
        use_dictionary=["symbol"],
        write_statistics=True,
        store_schema=True,
        write_page_index=True,
        row_group_size=ROW_GROUP_ROWS,
    )
    return sink.getvalue().to_pybytes()
