"""The compacted tier on emulated S3: the aggregation job's days merged into one file per timeframe, exchange and
month, equal to the per-day files after every rebuild (no duplicates, no stale rows), safe against a second job."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import duckdb
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from awskit import mocked_s3
from pricefeed.aggregate import compact as compaction
from pricefeed.aggregate.compact import CompactionConflict, compact
from pricefeed.aggregate.job import run_aggregation
from pricefeed.lake import paths
from pricefeed.lake.envelope import build_envelope
from pricefeed.ops.query import run_query
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
RAW, PROCESSED = "raw", "processed"
DAYS = [date(2025, 11, 24), date(2025, 11, 25), date(2025, 11, 26)]
SYMBOLS = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:M&M-EQ"]


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, RAW, PROCESSED)


def answer(s3, symbol: str, day: date, minutes: int, *, base: float = 100.0, fetched: datetime | None = None) -> None:
    """One raw answer of ``minutes`` session minutes from 09:15 IST (fetched after the close unless told)."""
    start = int(datetime.combine(day, time(9, 15), tzinfo=IST).timestamp())
    rows = [[start + 60 * m, base + m, base + m + 1, base + m - 1, base + m + 0.5, 10 + m] for m in range(minutes)]
    fetched = fetched or datetime.combine(day, time(17, 30), tzinfo=IST).astimezone(UTC)
    body = build_envelope(symbol=symbol, resolution="1", range_from=start, range_to=start + 22499, trading_date=day,
                          fetched_at=fetched, http_status=200, body=orjson.dumps({"s": "ok", "candles": rows}))
    s3.put_object(Bucket=RAW, Key=paths.raw_key(Symbol.parse(symbol), day, fetched), Body=body)


def aggregate(s3, symbols: list[str], days: list[date]) -> dict:
    return run_aggregation(s3=s3, raw_bucket=RAW, processed_bucket=PROCESSED, symbols=symbols, dates=days,
                           max_workers=4)


def month_file(s3, timeframe: str = "1m"):
    key = paths.bars_monthly_key(timeframe, "NSE", 2025, 11)
    got = s3.get_object(Bucket=PROCESSED, Key=key)
    return pq.read_table(io.BytesIO(got["Body"].read())), got["ETag"]


def per_day_rows(s3, timeframe: str) -> list[tuple]:
    """Every per-day file's rows of ``timeframe`` as (symbol, ts, close, volume), sorted as the compacted file."""
    rows = []
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=PROCESSED, Prefix=f"processed/timeframe={timeframe}/")
    for page in pages:
        for obj in page.get("Contents", []):
            name = obj["Key"].split("symbol=")[1].split("/")[0]
            table = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=obj["Key"])["Body"].read()))
            rows += [(name, r["ts"], r["close"], r["volume"]) for r in table.to_pylist()]
    return sorted(rows)


def compacted_rows(s3, timeframe: str) -> list[tuple]:
    table, _ = month_file(s3, timeframe)
    return [(r["symbol"], r["ts"], r["close"], r["volume"]) for r in table.to_pylist()]


def ledger_rows(s3) -> list[dict]:
    body = s3.get_object(Bucket=PROCESSED, Key=paths.coverage_monthly_key("NSE", 2025, 11))["Body"].read()
    return pq.read_table(io.BytesIO(body)).to_pylist()


def per_day_ledger_rows(s3) -> list[dict]:
    rows = []
    for obj in s3.list_objects_v2(Bucket=PROCESSED, Prefix=paths.COVERAGE_ROOT).get("Contents", []):
        name = obj["Key"].split("symbol=")[1].split("/")[0]
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=PROCESSED, Key=obj["Key"])["Body"].read()))
        rows += [{"symbol": name, **r} for r in table.to_pylist()]
    return sorted(rows, key=lambda r: (r["symbol"], r["trade_date"]))


def test_a_jobs_days_land_in_one_sorted_file_per_timeframe_and_month_equal_to_the_per_day_files(s3):
    for symbol in SYMBOLS:
        for day in DAYS:
            answer(s3, symbol, day, 375)

    result = aggregate(s3, SYMBOLS, DAYS)

    assert result["compacted"] == {"months": 4 + 1, "rows": 3 * 3 * (375 + 75 + 25 + 1 + 1), "conflicts": 0}
    assert (result["partition_counts"]["bars_monthly"], result["partition_counts"]["coverage_monthly"]) == (4, 1)
    for timeframe in paths.TIMEFRAMES:
        assert compacted_rows(s3, timeframe) == per_day_rows(s3, timeframe)  # same rows, sorted by (symbol, ts)
    assert ledger_rows(s3) == per_day_ledger_rows(s3) and len(ledger_rows(s3)) == 9
    table, _ = month_file(s3, "1m")
    body = s3.get_object(Bucket=PROCESSED, Key=paths.bars_monthly_key("1m", "NSE", 2025, 11))["Body"].read()
    assert pq.ParquetFile(io.BytesIO(body)).metadata.row_group(0).column(0).compression == "ZSTD"
    assert table.column_names == ["symbol", "ts", "open", "high", "low", "close", "volume", "bars", "trade_date", "oi"]


def test_a_rerun_rewrites_the_same_bytes_and_a_redrive_of_a_closed_month_replaces_its_day(s3):
    for symbol in SYMBOLS:
        for day in DAYS:
            answer(s3, symbol, day, 375)
    aggregate(s3, SYMBOLS, DAYS)
    _, etag = month_file(s3, "5m")

    aggregate(s3, SYMBOLS, DAYS)
    assert month_file(s3, "5m")[1] == etag  # idempotent: byte-identical

    # Weeks later, a newer answer of one closed day (prices revised, the afternoon lost) is ingested and rebuilt.
    later = datetime(2025, 12, 20, 12, tzinfo=UTC)
    answer(s3, "NSE:INFY-EQ", DAYS[1], 200, base=500.0, fetched=later)
    aggregate(s3, ["NSE:INFY-EQ"], [DAYS[1]])

    for timeframe in paths.TIMEFRAMES:
        assert compacted_rows(s3, timeframe) == per_day_rows(s3, timeframe)
    table, _ = month_file(s3, "1m")
    infy = [r for r in table.to_pylist() if r["symbol"] == "INFY-EQ" and r["trade_date"] == DAYS[1]]
    assert len(infy) == 375 and infy[0]["close"] == 500.5  # no duplicate minutes, no stale prices
    assert len(table) == 9 * 375
    ledger = ledger_rows(s3)
    assert ledger == per_day_ledger_rows(s3) and len(ledger) == 9
    assert [r["raw_envelopes"] for r in ledger if r["symbol"] == "INFY-EQ" and r["trade_date"] == DAYS[1]] == [2]


def test_a_day_whose_raw_no_longer_gives_bars_leaves_the_compacted_file_too(s3):
    for symbol in SYMBOLS[:2]:
        answer(s3, symbol, DAYS[0], 375)
    aggregate(s3, SYMBOLS[:2], DAYS[:1])
    later = datetime(2025, 12, 1, 12, tzinfo=UTC)
    s3.put_object(
        Bucket=RAW,
        Key=paths.raw_key(Symbol.parse("NSE:SBIN-EQ"), DAYS[0], later),
        Body=build_envelope(symbol="NSE:SBIN-EQ", resolution="1", range_from=0, range_to=1, trading_date=DAYS[0],
                            fetched_at=later, http_status=200, body=b'{"s": "no_data", "candles": []}'),
    )
    for key in [o["Key"] for o in s3.list_objects_v2(Bucket=RAW, Prefix=paths.raw_day_prefix(
            Symbol.parse("NSE:SBIN-EQ"), DAYS[0]))["Contents"] if not o["Key"].endswith(
            paths.utc_stamp(later) + ".json")]:
        s3.delete_object(Bucket=RAW, Key=key)  # only the no_data answer is left: the day is "empty"

    result = aggregate(s3, ["NSE:SBIN-EQ"], DAYS[:1])

    assert result["empty"] == [{"symbol": "NSE:SBIN-EQ", "date": "2025-11-24"}]
    assert {r[0] for r in compacted_rows(s3, "1m")} == {"INFY-EQ"}
    assert compacted_rows(s3, "1d") == per_day_rows(s3, "1d")


class _Interleaved:
    """An S3 client on which ``meanwhile`` (another job) runs just before the first ``times`` compacted writes."""

    def __init__(self, s3, meanwhile, times: int) -> None:
        self._s3, self._meanwhile, self._left = s3, meanwhile, times

    def __getattr__(self, name):
        return getattr(self._s3, name)

    def put_object(self, **kw):
        if kw["Key"].startswith(paths.BARS_MONTHLY_ROOT) and self._left > 0:
            self._left -= 1
            self._meanwhile(kw["Key"])
        return self._s3.put_object(**kw)


def test_two_jobs_compacting_one_month_at_once_keep_both_jobs_days(s3):
    for symbol in SYMBOLS:
        answer(s3, symbol, DAYS[0], 375)
    aggregate(s3, SYMBOLS[:1], DAYS[:1])  # this job built SBIN; another built INFY and compacts meanwhile
    aggregate(s3, SYMBOLS[1:2], DAYS[:1])
    for timeframe in paths.TIMEFRAMES:
        s3.delete_object(Bucket=PROCESSED, Key=paths.bars_monthly_key(timeframe, "NSE", 2025, 11))
    rival = [(Symbol.parse(SYMBOLS[1]), DAYS[0])]
    racing = _Interleaved(s3, lambda _key: compact(s3, PROCESSED, rival, max_workers=1), times=1)

    outcome = compact(racing, PROCESSED, [(Symbol.parse(SYMBOLS[0]), DAYS[0])], max_workers=1)

    assert outcome["conflicts"] == 1  # its first write found the file written meanwhile, so it merged again
    for timeframe in paths.TIMEFRAMES:
        assert {r[0] for r in compacted_rows(s3, timeframe)} == {"SBIN-EQ", "INFY-EQ"}
        assert compacted_rows(s3, timeframe) == per_day_rows(s3, timeframe)


def test_a_month_that_keeps_changing_under_the_merge_fails_loudly_naming_the_file(s3):
    answer(s3, SYMBOLS[0], DAYS[0], 30)
    aggregate(s3, SYMBOLS[:1], DAYS[:1])
    calls = iter(range(1000))

    def another_job(key: str) -> None:  # rewrites the month with something new each time, or removes it
        n = next(calls)
        if n % 2:
            s3.delete_object(Bucket=PROCESSED, Key=key)
            return
        row = {"symbol": "X-EQ", "ts": datetime(2025, 11, 24, 4, tzinfo=UTC), "open": 1.0, "high": 1.0, "low": 1.0,
               "close": 1.0, "volume": n, "bars": 1, "trade_date": DAYS[0]}
        table = pa.Table.from_pylist([row], schema=compaction.BARS.schema)
        s3.put_object(Bucket=PROCESSED, Key=key, Body=compaction.compacted_bytes(table))

    busy = _Interleaved(s3, another_job, times=100)
    with pytest.raises(CompactionConflict, match=r"bars_monthly/timeframe=1[5d]m?/exchange=NSE/year=2025/month=11/"):
        compact(busy, PROCESSED, [(Symbol.parse(SYMBOLS[0]), DAYS[0])], max_workers=1)


def test_the_compacted_tier_opens_with_a_plain_directory_read_and_answers_as_the_per_day_tables(s3, tmp_path):
    for symbol in SYMBOLS:
        for day in DAYS:
            answer(s3, symbol, day, 60)
    aggregate(s3, SYMBOLS, DAYS)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=PROCESSED):  # an export, as `make demo` leaves
        for obj in page["Contents"]:
            target = tmp_path / "processed" / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=PROCESSED, Key=obj["Key"])["Body"].read())

    table = pq.read_table(tmp_path / "processed" / paths.BARS_MONTHLY_ROOT)
    assert table.num_rows == 9 * (60 + 12 + 4 + 1)
    daily = duckdb.sql(
        f"select symbol, count(*) from read_parquet('{tmp_path}/processed/bars_monthly/**/*.parquet', "
        "hive_partitioning = true) where timeframe = '1d' group by symbol order by symbol"
    ).fetchall()
    assert daily == [("INFY-EQ", 3), ("M&M-EQ", 3), ("SBIN-EQ", 3)]
    five = pl.read_parquet(f"{tmp_path}/processed/bars_monthly/timeframe=5m/**/*.parquet", hive_partitioning=True)
    assert five.height == 9 * 12 and five["symbol"].n_unique() == 3 and set(five["timeframe"]) == {"5m"}
    # The views `pricefeed query` defines: the monthly table answers exactly as the per-day one.
    question = ("select symbol, trade_date, count(*), sum(volume), max(high) from {} where timeframe = '5m' "
                "and exchange = 'NSE' and year = '2025' and month = '11' group by all order by all")
    _, per_day = run_query(question.format("bars"), tmp_path)
    _, monthly = run_query(question.format("bars_monthly"), tmp_path)
    assert monthly == per_day and len(monthly) == 9
    _, typed = run_query("select distinct data_type from information_schema.columns where table_name = "
                         "'bars_monthly' and column_name in ('timeframe', 'exchange', 'year', 'month')", tmp_path)
    assert typed == [("VARCHAR",)]
    ledger = "select symbol, trade_date, stored_minutes, missing_ranges from {} where year = '2025' order by all"
    _, monthly_ledger = run_query(ledger.format("coverage_monthly"), tmp_path)
    assert monthly_ledger == run_query(ledger.format("coverage"), tmp_path)[1] and len(monthly_ledger) == 9
