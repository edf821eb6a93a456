"""Each instrument's own sessions through the whole pipeline: an MCX contract's day of 09:00-23:55 (23:30 while the US
keeps daylight saving time), a currency future's 09:00-17:00 and an index future's 09:15-15:30 come out complete,
with their real session counts, from the sessions the symbol master gives them; the F&O and MCX bars carry open
interest in every bar."""

from __future__ import annotations

import io
from datetime import date

import pyarrow.parquet as pq
import pytest

from pricefeed.istime import IST
from pricefeed.lake import paths
from pricefeed.local.run import start_execution, wait_for
from pricefeed.simulator import market
from pricefeed.symbol import Symbol

WINTER, SUMMER = date(2026, 11, 25), date(2026, 10, 12)  # after / before the US left daylight saving time
GOLD, CRUDE, RUPEE, NIFTY = "MCX:GOLD27FEBFUT", "MCX:CRUDEOIL26DECFUT", "NSE:USDINR26DECFUT", "NSE:NIFTY26DECFUT"


def table(pipeline, key: str) -> list[dict] | None:
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    try:
        return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()
    except s3.exceptions.NoSuchKey:
        return None


def run(pipeline, day: date, tickers: list[str]) -> None:
    described = wait_for(pipeline.stack, start_execution(pipeline.stack, day, csv="symbol\n" + "\n".join(tickers)),
                         timeout_s=300)
    assert described["status"] == "SUCCEEDED", described.get("error")


@pytest.fixture(scope="module")
def winter(pipeline):
    run(pipeline, WINTER, [GOLD, CRUDE, RUPEE, NIFTY])
    return pipeline


@pytest.mark.parametrize(("ticker", "minutes", "sessions"), [
    (GOLD, 895, ["09:00-23:55"]), (CRUDE, 895, ["09:00-23:55"]), (RUPEE, 480, ["09:00-17:00"]),
    (NIFTY, 375, ["09:15-15:30"]),
])
def test_each_symbol_day_is_complete_with_its_own_session_count(winter, ticker, minutes, sessions):
    symbol = Symbol.parse(ticker)
    [ledger] = table(winter, paths.coverage_key(symbol, WINTER))
    assert (ledger["expected_minutes"], ledger["stored_minutes"], ledger["missing_minutes"]) == (minutes, minutes, 0)
    assert list(ledger["sessions"]) == sessions and ledger["excluded_out_of_session"] == 0 and ledger["complete"]
    assert table(winter, paths.quarantine_key(symbol, WINTER)) is None  # not one candle left out
    served = [c[0] for c in market.minute_candles(winter.sim.config.seed, ticker, WINTER)]
    bars = table(winter, paths.processed_key("1m", symbol, WINTER))
    assert [int(r["ts"].timestamp()) for r in bars] == served and len(served) == minutes
    five = table(winter, paths.processed_key("5m", symbol, WINTER))
    assert five[0]["ts"].astimezone(IST).strftime("%H:%M") == sessions[0][:5] and len(five) == -(-minutes // 5)


@pytest.mark.parametrize("ticker", [GOLD, NIFTY])
def test_futures_and_mcx_bars_carry_open_interest_in_every_bar(winter, ticker):
    symbol = Symbol.parse(ticker)
    for timeframe in ("1m", "5m", "15m", "1d"):
        rows = table(winter, paths.processed_key(timeframe, symbol, WINTER))
        assert rows and all(isinstance(r["oi"], int) and r["oi"] > 0 for r in rows), timeframe


def test_a_summer_mcx_day_closes_at_23_30(pipeline):
    run(pipeline, SUMMER, [GOLD])
    [ledger] = table(pipeline, paths.coverage_key(Symbol.parse(GOLD), SUMMER))
    assert (ledger["expected_minutes"], ledger["missing_minutes"], list(ledger["sessions"])) == (870, 0,
                                                                                             ["09:00-23:30"])
