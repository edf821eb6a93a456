"""The aggregation on Spark: the same per-symbol-day library function, run on the executors.

A multi-year backfill of thousands of symbols is hundreds of thousands of symbol-days; one machine is not
enough. The Glue job (Glue 5.0, Spark 3.5) hands the run's symbol-days to the executors in batches grouped
by symbol, so one symbol's multi-day raw answers are read once per batch. Each task opens its own S3
client and runs :func:`pricefeed.aggregate.job.aggregate_symbol_day` for its batch on a few threads
(the work is mostly S3 I/O). Reads and writes happen inside the tasks through boto3/pyarrow, so no Hadoop
S3 connector is needed. The driver only collects the small per-symbol-day outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from itertools import groupby
from typing import Any

#: Symbol-days per Spark task: big enough to amortise the task, small enough to spread a day's symbols.
DEFAULT_BATCH = 64
#: Threads per task: each symbol-day is a handful of S3 reads and four small writes.
DEFAULT_THREADS = 8


def spark_context(*, on_glue: bool) -> Any:
    """The job's SparkContext: Glue's own on Glue; elsewhere local Spark on two cores whose Python workers run
    this interpreter (on Glue driver and executors share one image, and the library arrives through
    ``--extra-py-files``; here this interpreter already imports it)."""
    import os
    import sys

    from pyspark import SparkConf, SparkContext

    conf = SparkConf()
    if not on_glue:
        conf.setIfMissing("spark.master", "local[2]").setIfMissing("spark.ui.enabled", "false")
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # read when the workers start
    return SparkContext.getOrCreate(conf)


def batches(work: Iterable[tuple[str, date]], *, batch_size: int = DEFAULT_BATCH) -> list[list[tuple[str, date]]]:
    """``work`` cut into batches of at most ``batch_size``, a symbol's days kept together where they fit."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    out: list[list[tuple[str, date]]] = []
    current: list[tuple[str, date]] = []
    for _, days in groupby(work, key=lambda item: item[0]):
        run = list(days)
        if current and len(current) + len(run) > batch_size:
            out.append(current)
            current = []
        while len(run) > batch_size:
            out.append(run[:batch_size])
            run = run[batch_size:]
        current.extend(run)
    if current:
        out.append(current)
    return out


def run_batch(
    batch: list[tuple[str, date]],
    *,
    raw_bucket: str,
    processed_bucket: str,
    threads: int = DEFAULT_THREADS,
    hours: dict[str, str] | None = None,
) -> list[Any]:
    """Aggregate one batch on this executor (own S3 client, own envelope cache); results (``DayResult``) in order.
    ``hours``: the batch's symbols' sessions (ticker -> ``Hours.encode()``), as the driver read them."""
    import boto3  # on the executor

    from pricefeed.aggregate.job import aggregate_symbol_day
    from pricefeed.aggregate.outcomes import DayResult, keep_worst
    from pricefeed.aggregate.raw_reader import EnvelopeCache
    from pricefeed.lake.storage import Listings
    from pricefeed.market_hours import Hours
    from pricefeed.trading_calendar import DEFAULT_CALENDAR

    s3 = boto3.client("s3")
    cache = EnvelopeCache(s3, raw_bucket, capacity=max(16, 4 * threads))
    listings = (Listings(s3, raw_bucket), Listings(s3, processed_bucket))  # a batch holds whole symbol-months
    calendar = DEFAULT_CALENDAR.with_hours({name: Hours.decode(text) for name, text in (hours or {}).items()})

    def one(item: tuple[str, date]):
        symbol, trading_date = item
        return aggregate_symbol_day(
            s3, raw_bucket, processed_bucket, symbol, trading_date, cache=cache, listings=listings, calendar=calendar
        )

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(batch)))) as pool:
        outcomes = pool.map(one, batch)
        return keep_worst([DayResult.of(o) for o in outcomes])  # what the driver keeps of each day: ~0.4 KB


def aggregate_on_spark(
    spark_context: Any,
    work: list[tuple[str, date]],
    *,
    raw_bucket: str,
    processed_bucket: str,
    batch_size: int = DEFAULT_BATCH,
    threads: int = DEFAULT_THREADS,
    hours: dict[str, str] | None = None,
) -> list[Any]:
    """Every symbol-day of ``work`` aggregated on the cluster; the outcomes, in ``work``'s order. ``hours``: each
    symbol's sessions (``run_batch``); each batch is sent only its own symbols'."""
    if not work:
        return []
    hours = hours or {}
    chunks = [(batch, {str(s): hours[str(s)] for s, _ in batch if str(s) in hours})
              for batch in batches(work, batch_size=batch_size)]
    rdd = spark_context.parallelize(chunks, numSlices=len(chunks))
    return rdd.flatMap(
        lambda chunk: run_batch(chunk[0], raw_bucket=raw_bucket, processed_bucket=processed_bucket, threads=threads,
                                hours=chunk[1])
    ).collect()


def compact_on_spark(spark_context: Any, months: list[tuple[Any, set]], *, processed_bucket: str) -> list[Any]:
    """Each compacted month merged by one task on the cluster (``pricefeed.aggregate.compact.compact_month``, which
    reads the month's per-day files on a few threads); (rows, conflicts) of each, in ``months``' order. The driver
    only sends the months and their symbol-days: a backfill's compaction then spreads like its symbol-days do."""
    if not months:
        return []
    rdd = spark_context.parallelize(months, numSlices=len(months))
    return rdd.map(lambda item: _compact_one(item, processed_bucket)).collect()


def _compact_one(item: tuple[Any, set], processed_bucket: str) -> Any:
    import boto3  # on the executor

    from pricefeed.aggregate.compact import READERS, compact_month

    month, days = item
    return compact_month(boto3.client("s3"), processed_bucket, month, days, readers=READERS)
