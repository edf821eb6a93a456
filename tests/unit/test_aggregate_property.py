"""The aggregation job, raw objects in S3 -> Parquet partitions, against a plain-Python reference.

Random sets of raw answers for one symbol over two IST trading dates (one-day envelopes and a two-day
envelope with its reference object; duplicates, gaps, out-of-order rows, pre-open/after-close and
other-day minutes, forming minutes, broken rows) go through the real job path
(``aggregate_job.aggregate_symbol_day``: listing, reference following, parsing, validation, merge,
writer). The Parquet files read back must equal what the rules in the module docstrings give when
written as plainly as possible (dicts and loops), the exclusion counts must match reason by reason,
and running the job again must give byte-identical files.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import boto3
import orjson
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pricefeed.aggregate.bars import build_bars
from pricefeed.aggregate.candles import EXCLUSION_REASONS, parse_envelope
from pricefeed.aggregate.job import aggregate_symbol_day
from pricefeed.lake import paths
from pricefeed.lake import storage as lake
from pricefeed.lake.envelope import build_envelope, build_reference
from pricefeed.symbol import Symbol

IST = ZoneInfo("Asia/Kolkata")
D1, D2 = date(2025, 11, 25), date(2025, 11, 26)  # a Tuesday and a Wednesday, both NSE trading days
SYMBOL, EXCHANGE, NAME = "NSE:M&M-EQ", "NSE", "M&M-EQ"
RAW, PROCESSED = "raw-bucket", "processed-bucket"
OPEN = {d: int(datetime.combine(d, time(9, 15), tzinfo=IST).timestamp()) for d in (D1, D2)}
MIDNIGHT = {d: int(datetime.combine(d, time(0), tzinfo=IST).timestamp()) for d in (D1, D2)}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# --- the reference: the documented rules, as plainly as possible -------------------------------------
def is_number(x: object) -> bool:
    return type(x) in (int, float) and math.isfinite(x)


def well_formed(row: object) -> bool:
    return isinstance(row, list) and len(row) in (6, 7) and all(is_number(x) for x in row[:6])


def day_of_row(row: object, first: date, last: date) -> date:
    """Which of the envelope's dates a row is accounted on: its minute's IST date, else the first date."""
    if not well_formed(row) or first == last:
        return first
    offset = math.floor((row[0] - MIDNIGHT[first]) / 86_400)
    return first + timedelta(days=offset) if 0 <= offset <= (last - first).days else first


def why_excluded(row: object, day: date, ended_by_us: int) -> str | None:
    if not well_formed(row):
        return "malformed_row"
    ts, o, h, low, c, v = row[:6]
    if ts != math.floor(ts) or not 0 < ts < 2**62 or ts % 60:
        return "bad_ts"
    if min(o, h, low, c) <= 0:
        return "non_positive_price"
    if h < o:
        return "high_below_open"
    if h < max(o, c) or low > min(o, c) or low > h:
        return "invalid_ohlc"
    if v >= 2**32 - 1:
        return "volume_sentinel"
    if v < 0 or v != math.floor(v) or v >= 2**63:
        return "bad_volume"
    wall = datetime.fromtimestamp(ts, IST)
    if wall.date() != day or not time(9, 15) <= wall.time() <= time(15, 29):
        return "out_of_session"
    if (int(ts) + 60) * 1_000_000 > ended_by_us:
        return "forming"
    return None


def open_interest(row: list) -> int | None:
    """A kept row's open interest: its 7th value when that is a whole number >= 0 (else none; the row stays)."""
    oi = row[6] if len(row) == 7 else None
    if type(oi) not in (int, float) or not math.isfinite(oi) or oi < 0 or oi != math.floor(oi) or oi >= 2**62:
        return None
    return int(oi)


def reference(answers: list[dict], day: date) -> tuple[dict[str, list[dict]], Counter]:
    """The bars of ``day`` per timeframe and the exclusion counts, from the answers covering it."""
    excluded: Counter = Counter()
    minutes: dict[int, list] = {}
    for answer in sorted(answers, key=lambda a: a["fetched_at"]):  # oldest first: newer ones overwrite
        if not answer["first"] <= day <= answer["last"]:
            continue
        fetched_us = (answer["fetched_at"] - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        ended_by_us = min(fetched_us, (answer["range_to"] + 1) * 1_000_000)
        latest: dict[int, list] = {}
        for row in answer["rows"]:
            if day_of_row(row, answer["first"], answer["last"]) != day:
                continue
            reason = why_excluded(row, day, ended_by_us)
            if reason:
                excluded[reason] += 1
                continue
            if int(row[0]) in latest:
                excluded["duplicate"] += 1
            latest[int(row[0])] = row
        for ts, row in latest.items():
            if ts in minutes:
                excluded["superseded"] += 1
            minutes[ts] = row

    def bucket_start(ts: int, timeframe: str) -> datetime:
        wall = datetime.fromtimestamp(ts, IST)
        if timeframe == "1d":
            return datetime.combine(wall.date(), time(0), tzinfo=IST)
        width = {"1m": 1, "5m": 5, "15m": 15}[timeframe]
        of_day = wall.hour * 60 + wall.minute
        floored = of_day - of_day % width
        return datetime.combine(wall.date(), time(floored // 60, floored % 60), tzinfo=IST)

    bars = {}
    for timeframe in paths.TIMEFRAMES:
        groups: dict[datetime, list] = {}
        for ts in sorted(minutes):
            groups.setdefault(bucket_start(ts, timeframe), []).append(minutes[ts])
        bars[timeframe] = [
            {
                "ts": start.astimezone(UTC),
                "open": float(rows[0][1]),
                "high": float(max(r[2] for r in rows)),
                "low": float(min(r[3] for r in rows)),
                "close": float(rows[-1][4]),
                "volume": int(sum(r[5] for r in rows)),
                "bars": len(rows),
                "trade_date": day,
                "oi": next((oi for oi in map(open_interest, reversed(rows)) if oi is not None), None),
            }
            for start, rows in groups.items()
        ]
    return bars, excluded


# --- random answers -------------------------------------------------------------------------------
prices = st.integers(90, 110).map(float)
# minutes after 09:15 IST of D1: the session, just before/after it, the next day's session, far away
minute_offsets = st.one_of(
    st.integers(-3, 12),
    st.integers(365, 378),
    st.integers(1440 - 2, 1440 + 376),
    st.integers(-3000, 3000),
)


@st.composite
def candles(draw) -> list:
    ts = OPEN[D1] + 60 * draw(minute_offsets)
    o, c = draw(prices), draw(prices)
    h = max(o, c) + draw(st.integers(0, 2))
    low = min(o, c) - draw(st.integers(0, 2))
    volume = draw(st.integers(0, 10**9))
    kinds = ["ok"] * 10 + ["oi", "oi", "odd_oi", "ohlc", "volume", "fraction", "ts", "string", "short", "null",
                           "non_positive", "sentinel"]
    kind = draw(st.sampled_from(kinds))
    row: list = [ts, o, h, low, c, volume]
    if kind == "oi":
        row.append(draw(st.integers(0, 10**7)))
    elif kind == "odd_oi":  # an open interest that is no count: the candle stays, without OI
        row.append(draw(st.sampled_from([-5, 2.5, None, "7", float("nan")])))
    elif kind == "non_positive":  # Fyers' defect: a price of 0 or below
        row[draw(st.integers(1, 4))] = draw(st.sampled_from([0, 0.0, -1.5]))
    elif kind == "sentinel":  # Fyers' defect: a 32-bit sentinel for the volume
        row[5] = draw(st.sampled_from([429_496_726_000, 2**32 - 1]))
    elif kind == "ohlc":
        row = [ts, o, draw(prices), draw(prices), c, volume]
    elif kind == "volume":
        row[5] = -1 - volume
    elif kind == "fraction":
        row[5] = volume + 0.5
    elif kind == "ts":
        row[0] = ts + draw(st.sampled_from([1, 30, 59, 0.5]))
    elif kind == "string":
        row[draw(st.integers(0, 5))] = "1"
    elif kind == "short":
        row = row[: draw(st.integers(0, 5))]
    elif kind == "null":
        row[draw(st.integers(0, 5))] = None
    return row


SESSION_START = datetime.fromtimestamp(OPEN[D1], UTC)


@st.composite
def answers(draw) -> list[dict]:
    count = draw(st.integers(1, 4))
    # distinct fetch times (equal ones would share a raw key); some during D1's session, some after D2's close
    # distinct fetch times (equal ones would share a raw key), in minutes after 09:15 IST of D1: during either
    # session (often exactly at the end of a minute, where "forming" flips), or after D2's close (1815)
    fetch_us = draw(
        st.lists(
            st.one_of(
                st.integers(0, 400 * 60_000_000),
                st.sampled_from([0, 1440]).flatmap(lambda d: st.integers(d, d + 15)).map(lambda m: m * 60_000_000),
                st.integers(1815 * 60_000_000, 1900 * 60_000_000),
                st.integers(1815 * 60_000_000, 1900 * 60_000_000),
            ),
            min_size=count,
            max_size=count,
            unique=True,
        )
    )
    out = []
    for us in fetch_us:
        fetched_at = SESSION_START + timedelta(microseconds=us)
        first, last = draw(st.sampled_from([(D1, D1), (D2, D2), (D1, D2)]))
        range_from = MIDNIGHT[first]
        end_of_last = MIDNIGHT[last] + 86_399
        range_to = draw(
            st.one_of(
                st.just(end_of_last),
                st.integers(range_from, end_of_last),
                # just before or at the end of an early session minute of either date
                st.tuples(st.sampled_from(sorted({first, last})), st.integers(1, 12), st.sampled_from([-1, 0])).map(
                    lambda t: OPEN[t[0]] + 60 * t[1] + t[2]
                ),
            )
        )
        rows = draw(st.lists(candles(), max_size=30))
        if draw(st.booleans()):  # a run of consecutive session minutes that other answers often repeat
            day = draw(st.sampled_from(sorted({first, last})))
            start = draw(st.sampled_from([0, 3, 180, 367]))
            close = draw(prices)
            rows += [[OPEN[day] + 60 * m, 100.0, 110.0, 90.0, close, m] for m in range(start, start + 8)]
        out.append({"rows": rows, "fetched_at": fetched_at, "first": first, "last": last, "range_to": range_to})
    return out


# --- the job path ---------------------------------------------------------------------------------
def store(s3, answer: dict) -> None:
    body = build_envelope(
        symbol=SYMBOL,
        resolution="1",
        range_from=MIDNIGHT[answer["first"]],
        range_to=answer["range_to"],
        trading_date=answer["first"],
        fetched_at=answer["fetched_at"],
        http_status=200,
        body=orjson.dumps({"s": "ok", "code": 200, "message": "", "candles": answer["rows"]}),
        last_trading_date=answer["last"],
    )
    key = paths.raw_key(Symbol.parse(SYMBOL), answer["first"], answer["fetched_at"])
    s3.put_object(Bucket=RAW, Key=key, Body=body)
    if answer["last"] != answer["first"]:
        reference_body = build_reference(
            envelope_key=key,
            symbol=SYMBOL,
            trading_date=answer["last"],
            range_from=MIDNIGHT[answer["first"]],
            range_to=answer["range_to"],
            fetched_at=answer["fetched_at"],
        )
        key = paths.raw_key(Symbol.parse(SYMBOL), answer["last"], answer["fetched_at"])
        s3.put_object(Bucket=RAW, Key=key, Body=reference_body)


def processed_files(s3) -> dict[str, bytes]:
    return {key: lake.read_bytes(s3, PROCESSED, key) for key in lake.list_keys(s3, PROCESSED, "")}


def empty_buckets(s3) -> None:
    for bucket in (RAW, PROCESSED):
        lake.delete_keys(s3, bucket, lake.list_keys(s3, bucket, ""))


def s3_with_buckets():
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
    return s3


def test_the_job_matches_the_reference_and_reruns_byte_for_byte():
    with mock_aws():
        s3 = s3_with_buckets()

        @SETTINGS
        @given(answers())
        def check(generated: list[dict]) -> None:
            empty_buckets(s3)
            for answer in generated:
                store(s3, answer)
            received = sum(len(a["rows"]) for a in generated)
            accounted = 0
            for day in (D1, D2):
                outcome = aggregate_symbol_day(s3, RAW, PROCESSED, Symbol.parse(SYMBOL), day)
                expected, excluded = reference(generated, day)
                covering = any(a["first"] <= day <= a["last"] for a in generated)
                assert outcome.status == ("no_raw" if not covering else "written" if expected["1m"] else "empty")
                if covering:
                    assert outcome.excluded == {reason: excluded[reason] for reason in EXCLUSION_REASONS}, day
                for timeframe, rows in expected.items():
                    key = paths.processed_key(timeframe, Symbol(EXCHANGE, NAME), day)
                    if not rows:
                        prefix = paths.processed_prefix(timeframe, Symbol(EXCHANGE, NAME), day)
                        assert not lake.list_keys(s3, PROCESSED, prefix)
                        continue
                    table = pq.read_table(io.BytesIO(lake.read_bytes(s3, PROCESSED, key)))
                    assert table.to_pylist() == rows, (day, timeframe)
                check_coverage(s3, day, len(expected["1m"]))
                accounted += len(expected["1m"]) + sum(excluded.values())
            assert accounted == received  # every candle is a stored minute or counted once, across both days

            first_run = processed_files(s3)
            for day in (D1, D2):  # a fresh run (no shared cache) rewrites the same files with the same bytes
                aggregate_symbol_day(s3, RAW, PROCESSED, Symbol.parse(SYMBOL), day)
            assert processed_files(s3) == first_run

        check()


def check_coverage(s3, day: date, stored: int) -> None:
    """The coverage ledger's row, where the job writes one (only the generic column names are relied on)."""
    if not hasattr(paths, "coverage_key"):
        return
    key = paths.coverage_key(Symbol(EXCHANGE, NAME), day)
    if stored == 0:
        return  # an empty day's ledger row is the ledger's own business (tested with it)
    [row] = pq.read_table(io.BytesIO(lake.read_bytes(s3, PROCESSED, key))).to_pylist()
    assert f"/exchange={EXCHANGE}/symbol={NAME}/" in f"/{key}" and row["trade_date"] == day
    assert (row["expected_minutes"], row["stored_minutes"]) == (375, stored)
    assert row["missing_minutes"] == 375 - stored and row["complete"] == (stored == 375)


@SETTINGS
@given(answers())
def test_the_same_envelopes_give_the_same_parquet_bytes(generated):
    """build_bars + the lake writer are deterministic, whatever order the envelopes arrive in."""

    def day_bytes(order: list[dict]) -> dict[str, bytes]:
        parsed = []
        for answer in order:
            if answer["first"] != D1:
                continue
            body = build_envelope(
                symbol=SYMBOL,
                resolution="1",
                range_from=MIDNIGHT[D1],
                range_to=answer["range_to"],
                trading_date=D1,
                fetched_at=answer["fetched_at"],
                http_status=200,
                body=orjson.dumps({"s": "ok", "candles": answer["rows"]}),
                last_trading_date=answer["last"],
            )
            source = f"s3://raw/{paths.raw_key(Symbol.parse(SYMBOL), D1, answer['fetched_at'])}"
            parsed.append(parse_envelope(body, source=source, trading_date=D1))
        day = build_bars(Symbol.parse(SYMBOL), D1, parsed)
        return {tf: lake.parquet_bytes(day.tables[tf]) for tf in paths.TIMEFRAMES}

    assert day_bytes(generated) == day_bytes(list(reversed(generated)))


def test_a_candle_with_an_out_of_range_number_is_one_malformed_row():
    good = [[OPEN[D1] + 60 * m, 100.0, 101.0, 99.0, 100.5, 10] for m in range(5)]
    rows = orjson.dumps(good)[:-1] + b",[" + str(OPEN[D1] + 300).encode() + b",100.0,101.0,99.0,100.5,1e400]]"
    body = build_envelope(
        symbol=SYMBOL,
        resolution="1",
        range_from=MIDNIGHT[D1],
        range_to=MIDNIGHT[D1] + 86_399,
        trading_date=D1,
        fetched_at=datetime(2025, 11, 25, 12, tzinfo=UTC),
        http_status=200,
        body=b'{"s":"ok","candles":' + rows + b"}",
    )
    assert json.loads(body)["response"]["candles"][-1][5] == math.inf  # the standard library reads it
    parsed = parse_envelope(body, source="s3://raw/big-number.json")
    assert len(parsed.ts) == 5 and parsed.excluded["malformed_row"] == 1
