"""Fyers' known data defects through the whole pipeline: detected, kept in quarantine, counted, never in a bar.

The simulator serves a ticker with the defects an EOD validation found in real Fyers history (high below open, a
volume sentinel, a price of 0); the state machine runs its day; the Glue job leaves each defective candle out of the
bars, counts it by rule in the coverage ledger and keeps it, as sent, in the quarantine table with its raw object.
"""

from __future__ import annotations

import io
from datetime import date

import pyarrow.parquet as pq

from pricefeed.lake import paths
from pricefeed.local.run import start_execution, wait_for
from pricefeed.simulator import market
from pricefeed.symbol import Symbol
from stackkit import bars_1m

DAY, TICKER = date(2026, 10, 12), "NSE:SIM2651-EQ"
DEFECTS = ["high_below_open", "volume_sentinel", "non_positive_price"]


def read(pipeline, key: str) -> list[dict]:
    s3, bucket = pipeline.stack.client("s3"), pipeline.stack.outputs["ProcessedBucketName"]
    return pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist()


def test_each_defect_lands_in_quarantine_and_the_ledger_and_in_no_bar(pipeline):
    knobs = pipeline.sim.set_faults()
    pipeline.sim.set_faults(defects={TICKER: DEFECTS})
    try:
        described = wait_for(pipeline.stack, start_execution(pipeline.stack, DAY, csv=f"symbol\n{TICKER}\n"),
                             timeout_s=300)
    finally:
        pipeline.sim.set_faults(**knobs)

    assert described["status"] == "SUCCEEDED", described.get("error")
    symbol = Symbol.parse(TICKER)
    [ledger] = read(pipeline, paths.coverage_key(symbol, DAY))
    assert {d: ledger[f"excluded_{d}"] for d in DEFECTS} == dict.fromkeys(DEFECTS, 1)
    held = read(pipeline, paths.quarantine_key(symbol, DAY))
    assert sorted(r["rule"] for r in held) == sorted(DEFECTS)
    raw = pipeline.stack.outputs["RawBucketName"]
    assert all(r["raw_object"].startswith(f"s3://{raw}/ohlcv/raw/symbol=SIM2651-EQ/") for r in held)
    left_out = {int(r["ts"].timestamp()) for r in held}
    stored = {int(t.timestamp()) for t in bars_1m(pipeline, TICKER, DAY).column("ts").to_pylist()}
    served = {c[0] for c in market.minute_candles(pipeline.sim.config.seed, TICKER, DAY)}
    assert stored == served - left_out and len(left_out) == 3  # every other minute is there, no defect is
