"""make bench-aggregate: raw JSON envelopes -> 1m/5m/15m/1d Parquet, ours vs an in-process DuckDB reference.

Not a test: it prints figures; the last line is exactly ``aggregate: <ratio>x DuckDB reference`` (our time /
the reference's time on the larger case). Goal: <= 1.5x.

Two cases of synthetic raw in the seed layout (``paths.raw_key``, envelopes built by ``raw.build_envelope``
from the simulator's ``minute_candles``; session 09:15-15:29 IST):

- ``daily``: 2,000 symbols x 1 day, as incremental runs leave it: per symbol a mid-session answer
  (09:15-11:58, fetched 12:00 IST) and an after-close answer that asks the newest 2 minutes again
  (11:57-15:29), so 377 raw candles per symbol-day, 2 of them superseded.
- ``backfill``: 200 symbols x 20 NSE trading days (holidays skipped), as a backfill leaves it: one
  20-day envelope per symbol under its first date plus a reference object under each further date
  (375 candles per symbol-day).

``daily`` is 2,000 symbol-days and 754,000 raw candles, ``backfill`` 4,000 symbol-days and 1,500,000
raw candles; the last line is the case with more raw candles (``backfill`` at full size; the script
picks it by count, so a scaled-down run reports whichever is larger).

Fairness. Both sides read the same raw bytes from the same local directory (written just before, so the
page cache is warm for both) and write one Parquet file per symbol-day-timeframe into the same partition
layout under a fresh temporary directory; no S3 emulator is in the loop, because moto's per-request cost
(milliseconds) would dominate both sides and hide the engines. Ours is the real ``run_aggregation`` (its
thread pool, envelope cache, validation, newest-wins merge, writer) given a small S3 client that maps
buckets to directories (list/get/put/delete). The reference is one DuckDB connection doing the same
logical work with its own multi-threaded I/O: ``read_json`` over every raw object (references are read
too and skipped, since the envelope they point at is in the same glob), the same validity rules
(6/7 numbers, minute-aligned ts, OHLC consistency, integral non-negative volume, 09:15-15:29 IST of one of
the envelope's dates, not forming at fetch time or past ``range_to``), newest envelope wins per minute and
the later duplicate wins within one answer (``arg_max`` on (fetched_at, file, position)), buckets by
epoch arithmetic in IST (5m/15m from 09:15; 1d at 00:00 IST), open/close by ``arg_min``/``arg_max`` on ts,
and one partitioned ``COPY`` writing ``part-00000.parquet`` files with the same columns (it also keeps
year/month/day columns, and unlike ours it does not promise sorted rows under threads: both favour it).
If our run writes objects besides the four timeframes (the coverage ledger, the compacted tier), the reference
also writes a coverage file per symbol-day (expected/stored/missing minutes and the missing ranges, by a
gaps-and-islands query) and the bars compacted per timeframe, exchange and month (sorted by symbol, zstd).
One-time start-up costs (imports, loading the exchange calendar, DuckDB's first connection) are paid before the
timings on both sides. After timing, the two outputs are compared (rows per timeframe, total volume, and a
sample of 5m bars) so a fast wrong reference cannot pass.

Environment: BENCH_SCALE (default 1.0; e.g. 0.05 for a quick check) scales the symbol counts;
BENCH_REPEAT (default 1) times each side that many times and keeps the best; BENCH_WORKERS (default 8)
is our ``max_workers``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import orjson

from pricefeed.aggregate.job import run_aggregation
from pricefeed.istime import IST, ist_midnight_epoch
from pricefeed.lake import paths
from pricefeed.lake.envelope import build_envelope, build_reference
from pricefeed.simulator.market import minute_candles
from pricefeed.symbol import Symbol

try:  # the exchange calendar, when the library has it: synthetic days must be trading days for both sides
    from pricefeed.trading_calendar import is_trading_day
except ImportError:  # pragma: no cover - before the calendar existed

    def is_trading_day(day: date, exchange: str = "NSE") -> bool:
        return day.weekday() < 5


RAW_BUCKET, OURS_BUCKET, REFERENCE_BUCKET = "raw", "processed", "reference"
SEED = 7
DAILY_DATE = date(2026, 11, 25)
BACKFILL_FIRST = date(2026, 10, 30)


class DirectoryS3:
    """The few S3 calls the job makes, on a local directory (one sub-directory per bucket)."""

    class exceptions:
        class NoSuchKey(Exception):
            pass

    def __init__(self, root: Path):
        self.root = root

    def _path(self, bucket: str, key: str) -> Path:
        return self.root / bucket / key

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: object) -> dict:
        path = self._path(Bucket, Key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Body)
        return {}

    def get_object(self, *, Bucket: str, Key: str, **_: object) -> dict:
        try:
            body = self._path(Bucket, Key).read_bytes()
        except FileNotFoundError:
            raise self.exceptions.NoSuchKey(Key) from None
        return {"Body": io.BytesIO(body), "ETag": f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"'}

    def head_object(self, *, Bucket: str, Key: str, **_: object) -> dict:
        path = self._path(Bucket, Key)
        if not path.is_file():
            raise self.exceptions.NoSuchKey(Key)
        return {"ContentLength": path.stat().st_size}

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        base = self.root / bucket
        directory = base / prefix if prefix.endswith("/") else (base / prefix).parent
        keys = []
        for folder, _, files in os.walk(directory):
            for name in files:
                key = str(Path(folder, name).relative_to(base))
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def list_objects_v2(self, *, Bucket: str, Prefix: str = "", **_: object) -> dict:
        keys = self.list_keys(Bucket, Prefix)
        return {"Contents": [{"Key": k} for k in keys], "KeyCount": len(keys), "IsTruncated": False}

    def get_paginator(self, operation: str):
        if operation != "list_objects_v2":
            raise NotImplementedError(operation)
        client = self

        class _Paginator:
            def paginate(self, *, Bucket: str, Prefix: str = "", **_: object):
                yield client.list_objects_v2(Bucket=Bucket, Prefix=Prefix)

        return _Paginator()

    def delete_objects(self, *, Bucket: str, Delete: dict, **_: object) -> dict:
        for item in Delete["Objects"]:
            self._path(Bucket, item["Key"]).unlink(missing_ok=True)
        return {}


# --- synthetic raw -------------------------------------------------------------------------------
def _body(candles: list) -> bytes:
    rows = [[ts, o / 100, h / 100, lo / 100, c / 100, v] for ts, o, h, lo, c, v in candles]
    return orjson.dumps({"s": "ok", "code": 200, "message": "", "candles": rows})


def _ist(day: date, hour: int, minute: int, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST).astimezone(UTC)


def _put(root: Path, key: str, body: bytes) -> None:
    path = root / RAW_BUCKET / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)


def write_daily(root: Path, symbols: list[str]) -> tuple[list[date], int, int]:
    """Two incremental answers per symbol on DAILY_DATE; returns (dates, raw candles, raw objects)."""
    day = DAILY_DATE
    midnight = ist_midnight_epoch(day)
    cut = int(_ist(day, 11, 59).timestamp())  # the morning run's last ended minute starts at 11:58
    candles = objects = 0
    for symbol in symbols:
        session = minute_candles(SEED, symbol, day)
        answers = [
            (midnight, cut - 1, _ist(day, 12, 0, 5), [c for c in session if c[0] < cut]),
            (cut - 120, midnight + 86_399, _ist(day, 16, 15, 3), [c for c in session if c[0] >= cut - 120]),
        ]
        for range_from, range_to, fetched_at, rows in answers:
            envelope = build_envelope(
                symbol=symbol,
                resolution="1",
                range_from=range_from,
                range_to=range_to,
                trading_date=day,
                fetched_at=fetched_at,
                http_status=200,
                body=_body(rows),
            )
            _put(root, paths.raw_key(Symbol.parse(symbol), day, fetched_at), envelope)
            candles, objects = candles + len(rows), objects + 1
    return [day], candles, objects


def write_backfill(root: Path, symbols: list[str], days: int = 20) -> tuple[list[date], int, int]:
    """One multi-day answer per symbol plus a reference under each further date."""
    dates = []
    day = BACKFILL_FIRST
    while len(dates) < days:
        if is_trading_day(day):
            dates.append(day)
        day += timedelta(days=1)
    first, last = dates[0], dates[-1]
    range_from, range_to = ist_midnight_epoch(first), ist_midnight_epoch(last) + 86_399
    fetched_at = _ist(last, 17, 0, 9)
    candles = objects = 0
    for symbol in symbols:
        rows = [c for d in dates for c in minute_candles(SEED, symbol, d)]
        envelope = build_envelope(
            symbol=symbol,
            resolution="1",
            range_from=range_from,
            range_to=range_to,
            trading_date=first,
            fetched_at=fetched_at,
            http_status=200,
            body=_body(rows),
            last_trading_date=last,
        )
        key = paths.raw_key(Symbol.parse(symbol), first, fetched_at)
        _put(root, key, envelope)
        for d in dates[1:]:
            reference = build_reference(
                envelope_key=key,
                symbol=symbol,
                trading_date=d,
                range_from=range_from,
                range_to=range_to,
                fetched_at=fetched_at,
            )
            _put(root, paths.raw_key(Symbol.parse(symbol), d, fetched_at), reference)
        candles, objects = candles + len(rows), objects + len(dates)
    return dates, candles, objects


# --- the DuckDB reference ------------------------------------------------------------------------
_RAW_COLUMNS = {
    "symbol": "VARCHAR",
    "range_to": "BIGINT",
    "trading_date": "DATE",
    "last_trading_date": "DATE",
    "fetched_at": "TIMESTAMPTZ",
    "http_status": "INTEGER",
    "response": "STRUCT(s VARCHAR, candles DOUBLE[][])",
    "ref": "VARCHAR",
}
_SESSION_FIRST_S, _SESSION_LAST_S, _IST_OFFSET_S = 9 * 3600 + 15 * 60, 15 * 3600 + 29 * 60, 19_800

_REFERENCE_SQL = (
    f"""
CREATE OR REPLACE TEMP TABLE candles AS
WITH envelopes AS (
    SELECT filename, symbol, range_to, trading_date, last_trading_date,
           epoch_us(fetched_at) AS fetched_us, response.candles AS rows
    -- the raw keys look hive-partitioned (symbol=SBIN-EQ/...): without hive_partitioning = false DuckDB
    -- silently replaces the envelope's "NSE:SBIN-EQ" with the path's "SBIN-EQ"
    FROM read_json('{{raw_glob}}', columns = {{columns}}, filename = true, format = 'auto', hive_partitioning = false)
    WHERE ref IS NULL AND http_status = 200 AND response.s IN ('ok', 'no_data')
), unnested AS (
    SELECT filename, symbol, range_to, trading_date, last_trading_date, fetched_us,
           unnest(rows) AS c, generate_subscripts(rows, 1) AS position
    FROM envelopes
), typed AS (
    SELECT *, c[1] AS t, c[2] AS o, c[3] AS h, c[4] AS l, c[5] AS cl, c[6] AS v
    FROM unnested
    WHERE len(c) IN (6, 7) AND list_bool_and(list_transform(c[1:6], lambda x: isfinite(x)))
), valid AS (
    SELECT *, t::BIGINT AS ts, (t::BIGINT + {_IST_OFFSET_S}) // 86400 AS ist_day
    FROM typed
    WHERE t = floor(t) AND t > 0 AND t % 60 = 0
      AND h >= greatest(o, cl) AND l <= least(o, cl) AND l <= h
      AND v >= 0 AND v = floor(v)
      AND (t::BIGINT + {_IST_OFFSET_S}) % 86400 BETWEEN {_SESSION_FIRST_S} AND {_SESSION_LAST_S}
      AND (DATE '1970-01-01' + ((t::BIGINT + {_IST_OFFSET_S}) // 86400)::INTEGER)
          BETWEEN trading_date AND last_trading_date
      AND (t::BIGINT + 60) * 1000000 <= least(fetched_us, (range_to + 1) * 1000000)
)
SELECT symbol AS fyers_symbol, ts, ist_day,
       arg_max([o, h, l, cl, v], (fetched_us, filename, position)) AS row
FROM valid
GROUP BY fyers_symbol, ts, ist_day
""",
    f"""
CREATE OR REPLACE TEMP TABLE bars AS
WITH minute AS (
    SELECT fyers_symbol, ts, ist_day, row[1] AS o, row[2] AS h, row[3] AS l, row[4] AS cl, row[5]::BIGINT AS v,
           (ts + {_IST_OFFSET_S}) % 86400 AS second_of_ist_day
    FROM candles
), bucketed AS (
    SELECT '1m' AS timeframe, ts AS bucket, * FROM minute
    UNION ALL SELECT '5m', ts - second_of_ist_day % 300, * FROM minute
    UNION ALL SELECT '15m', ts - second_of_ist_day % 900, * FROM minute
    UNION ALL SELECT '1d', ts - second_of_ist_day, * FROM minute
)
SELECT to_timestamp(bucket) AS ts,
       arg_min(o, ts) AS open, max(h) AS high, min(l) AS low, arg_max(cl, ts) AS close,
       sum(v)::BIGINT AS volume, count(*)::INTEGER AS bars,
       (DATE '1970-01-01' + ist_day::INTEGER) AS trade_date,
       split_part(fyers_symbol, ':', 2) AS symbol, split_part(fyers_symbol, ':', 1) AS exchange, timeframe,
       strftime((DATE '1970-01-01' + ist_day::INTEGER), '%Y') AS year,
       strftime((DATE '1970-01-01' + ist_day::INTEGER), '%m') AS month,
       strftime((DATE '1970-01-01' + ist_day::INTEGER), '%d') AS day
FROM bucketed
GROUP BY fyers_symbol, ist_day, timeframe, bucket
""",
)


def run_reference(root: Path, *, with_coverage: bool) -> tuple[int, float]:
    """The reference over every raw object under ``root/raw``: (files written, seconds before the writes)."""
    started = time.perf_counter()
    out = root / REFERENCE_BUCKET / paths.PROCESSED_ROOT
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    columns = "{" + ", ".join(f"'{k}': '{v}'" for k, v in _RAW_COLUMNS.items()) + "}"
    raw_glob = f"{root / RAW_BUCKET / paths.RAW_ROOT}/**/*.json"
    for statement in _REFERENCE_SQL:
        con.execute(statement.replace("{raw_glob}", raw_glob).replace("{columns}", columns))
    computed_s = time.perf_counter() - started
    con.execute(
        f"""COPY (SELECT * FROM bars ORDER BY timeframe, exchange, symbol, ts) TO '{out}'
            (FORMAT parquet, COMPRESSION snappy, PARTITION_BY (timeframe, exchange, symbol, year, month, day),
             FILENAME_PATTERN 'part-0000{{i}}', WRITE_PARTITION_COLUMNS false, OVERWRITE_OR_IGNORE true)"""
    )
    files = con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT timeframe, exchange, symbol, trade_date FROM bars)"
    ).fetchone()[0]
    if with_coverage:  # one ledger file per symbol-day, like ours: expected/stored/missing minutes and gaps
        coverage = root / REFERENCE_BUCKET / paths.COVERAGE_ROOT
        coverage.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""COPY (
                WITH days AS (SELECT DISTINCT fyers_symbol, ist_day FROM candles),
                grid AS (
                    SELECT fyers_symbol, ist_day, ist_day * 86400 - {_IST_OFFSET_S} + {_SESSION_FIRST_S} + 60 * m AS ts
                    FROM days, range(375) AS r(m)),
                missing AS (
                    SELECT g.fyers_symbol, g.ist_day, g.ts,
                           g.ts - 60 * row_number() OVER (
                               PARTITION BY g.fyers_symbol, g.ist_day ORDER BY g.ts) AS island
                    FROM grid g ANTI JOIN candles c USING (fyers_symbol, ist_day, ts)),
                gaps AS (
                    SELECT fyers_symbol, ist_day, count(*) AS minutes,
                           list(strftime(to_timestamp(min_ts + {_IST_OFFSET_S}), '%H:%M') || '-'
                                || strftime(to_timestamp(max_ts + 60 + {_IST_OFFSET_S}), '%H:%M')
                                ORDER BY min_ts) AS ranges
                    FROM (SELECT fyers_symbol, ist_day, island, min(ts) AS min_ts, max(ts) AS max_ts, count(*) AS n
                          FROM missing GROUP BY ALL) GROUP BY ALL)
                SELECT split_part(d.fyers_symbol, ':', 1) AS exchange, split_part(d.fyers_symbol, ':', 2) AS symbol,
                       (DATE '1970-01-01' + d.ist_day::INTEGER) AS trade_date, 375 AS expected_minutes,
                       375 - coalesce(g.minutes, 0) AS stored_minutes, coalesce(g.minutes, 0) AS missing_minutes,
                       coalesce(g.ranges, []) AS missing_ranges, g.minutes IS NULL AS complete,
                       strftime(trade_date, '%Y') AS year, strftime(trade_date, '%m') AS month,
                       strftime(trade_date, '%d') AS day
                FROM days d LEFT JOIN gaps g USING (fyers_symbol, ist_day))
                TO '{coverage}' (FORMAT parquet, COMPRESSION snappy,
                                 PARTITION_BY (exchange, symbol, year, month, day), FILENAME_PATTERN 'part-0000{{i}}',
                                 WRITE_PARTITION_COLUMNS false, OVERWRITE_OR_IGNORE true)"""
        )
        files += con.execute("SELECT count(*) FROM (SELECT DISTINCT fyers_symbol, ist_day FROM candles)").fetchone()[0]
        # and the compacted tier, like ours: every symbol's bars per timeframe, exchange and month, sorted by symbol
        # (ours also compacts the ledger by month: that part is not mirrored here, so the reference is kinder)
        monthly = root / REFERENCE_BUCKET / paths.BARS_MONTHLY_ROOT
        monthly.mkdir(parents=True, exist_ok=True)
        con.execute(
            f"""COPY (SELECT symbol, ts, open, high, low, close, volume, bars, trade_date,
                             timeframe, exchange, year, month
                      FROM bars ORDER BY timeframe, exchange, year, month, symbol, ts)
                TO '{monthly}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (timeframe, exchange, year, month),
                                FILENAME_PATTERN 'part-0000{{i}}', WRITE_PARTITION_COLUMNS false,
                                OVERWRITE_OR_IGNORE true)"""
        )
        files += con.execute("SELECT count(*) FROM (SELECT DISTINCT timeframe, exchange, year, month FROM bars)"
                             ).fetchone()[0]
    con.close()
    return files, computed_s


# --- running one case ----------------------------------------------------------------------------
def _clear_outputs(root: Path) -> None:
    for bucket in (OURS_BUCKET, REFERENCE_BUCKET):
        shutil.rmtree(root / bucket, ignore_errors=True)


def _check_same_bars(root: Path) -> None:
    """The two outputs must agree, or the timing means nothing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ours, ref = (
        str(root / b / paths.PROCESSED_ROOT) + "/timeframe=*/**/*.parquet" for b in (OURS_BUCKET, REFERENCE_BUCKET)
    )
    query = """SELECT timeframe, count(*), sum(volume), sum(bars), round(sum(open + high + low + close), 4)
               FROM read_parquet(?, hive_partitioning = true, union_by_name = true) GROUP BY 1 ORDER BY 1"""
    a, b = con.execute(query, [ours]).fetchall(), con.execute(query, [ref]).fetchall()
    if a != b:
        raise SystemExit(f"ours and the reference disagree:\n ours {a}\n ref  {b}")
    sample = """SELECT symbol, epoch_us(ts) AS us, open, high, low, close, volume, bars, trade_date
                FROM read_parquet(?, hive_partitioning = true, union_by_name = true)
                WHERE timeframe = '5m' ORDER BY symbol, us LIMIT 500"""
    if con.execute(sample, [ours]).fetchall() != con.execute(sample, [ref]).fetchall():
        raise SystemExit("ours and the reference disagree on the first 5m bars")
    con.close()


def _ours_wrote(root: Path) -> tuple[int, int, bool]:
    """(Parquet bar files, all files, whether anything besides the 4 timeframes was written)."""
    base = root / OURS_BUCKET
    bars = total = 0
    for folder, _, files in os.walk(base):
        for name in files:
            total += 1
            bars += str(Path(folder, name).relative_to(base)).startswith(paths.PROCESSED_ROOT + "timeframe=")
    return bars, total, total > bars


def run_case(name: str, root: Path, symbols: list[str], dates: list[date], candles: int, objects: int) -> dict:
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    workers = int(os.environ.get("BENCH_WORKERS", "8"))
    s3 = DirectoryS3(root)
    ours_s = ref_s = float("inf")
    for _ in range(repeat):
        _clear_outputs(root)
        started = time.perf_counter()
        result = run_aggregation(
            s3=s3,
            raw_bucket=RAW_BUCKET,
            processed_bucket=OURS_BUCKET,
            symbols=symbols,
            dates=dates,
            max_workers=workers,
        )
        ours_s = min(ours_s, time.perf_counter() - started)
        _, our_files, extra = _ours_wrote(root)
        started = time.perf_counter()
        ref_files, computed_s = run_reference(root, with_coverage=extra)
        if time.perf_counter() - started < ref_s:
            ref_s, ref_computed_s = time.perf_counter() - started, computed_s
    _check_same_bars(root)
    rows_out = sum(result["bars"].values())
    figures = {
        "case": name,
        "symbol_days": len(symbols) * len(dates),
        "raw_objects": objects,
        "rows_in": candles,
        "rows_out": rows_out,
        "files": our_files,
        "ref_files": ref_files,
        "ours_s": ours_s,
        "ref_s": ref_s,
    }
    print(
        f"{name:>9}: {figures['symbol_days']:,} symbol-days, {objects:,} raw objects, rows in {candles:,} / out "
        f"{rows_out:,}, files {our_files:,} (reference {ref_files:,}) | ours {ours_s:.2f} s "
        f"({candles / ours_s:,.0f} rows/s, {our_files / ours_s:,.0f} files/s) | reference {ref_s:.2f} s "
        f"(read+parse+bucket {ref_computed_s:.2f} s, write {ref_s - ref_computed_s:.2f} s) "
        f"({candles / ref_s:,.0f} rows/s, {ref_files / ref_s:,.0f} files/s) | ratio {ours_s / ref_s:.2f}x",
        flush=True,
    )
    return figures


def main() -> int:
    scale = float(os.environ.get("BENCH_SCALE", "1.0"))
    is_trading_day(DAILY_DATE)  # loads the calendar once, as a long-running job would have
    duckdb.connect().execute("SELECT 1").fetchall()
    cases = []
    with tempfile.TemporaryDirectory(prefix="pricefeed-bench-aggregate-") as tmp:
        for name, count, writer in (("daily", 2000, write_daily), ("backfill", 200, write_backfill)):
            root = Path(tmp, name)
            symbols = [f"NSE:SIM{i:04d}-EQ" for i in range(1, max(1, round(count * scale)) + 1)]
            started = time.perf_counter()
            dates, candles, objects = writer(root, symbols)
            print(f"{name:>9}: generated {objects:,} raw objects in {time.perf_counter() - started:.1f} s", flush=True)
            cases.append(run_case(name, root, symbols, dates, candles, objects))
            shutil.rmtree(root)
    larger = max(cases, key=lambda c: c["rows_in"])
    print(f"larger case (more raw candles): {larger['case']} ({larger['rows_in']:,} candles)")
    print(f"aggregate: {larger['ours_s'] / larger['ref_s']:.2f}x DuckDB reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
