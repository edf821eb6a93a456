"""Plan a run: read the ticker list from S3, write the Map's item list, name the run's artefacts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from pricefeed.errors import InvalidInput
from pricefeed.istime import ist_today, parse_date
from pricefeed.tickers import parse_ticker_csv


@dataclass(frozen=True)
class PlanRequest:
    run_id: str
    trading_date: date
    tickers_key: str | None = None

    @classmethod
    def parse(cls, event: object, *, now: datetime | None = None) -> PlanRequest:
        """``{"run_id": ..., "input": {"date": "YYYY-MM-DD"?, "tickers_key": ...?}}``; no date = IST today."""
        if not isinstance(event, dict):
            raise InvalidInput("plan event must be an object")
        run_id = event.get("run_id")
        if not isinstance(run_id, str) or not run_id or "/" in run_id:
            raise InvalidInput("plan event needs a 'run_id' string without '/'")
        given = event.get("input") or {}
        if not isinstance(given, dict):
            raise InvalidInput("execution input must be a JSON object")
        unknown = set(given) - {"date", "tickers_key"}
        if unknown:
            raise InvalidInput(f"execution input has unknown field(s): {', '.join(sorted(unknown))}")
        day = parse_date(given["date"], what="execution input 'date'") if given.get("date") else ist_today(now)
        tickers_key = given.get("tickers_key")
        if tickers_key is not None and (not isinstance(tickers_key, str) or not tickers_key):
            raise InvalidInput("execution input 'tickers_key' must be a non-empty string")
        return cls(run_id, day, tickers_key)


def run_prefix(run_id: str) -> str:
    return f"ohlcv/runs/{run_id}/"


def plan_run(request: PlanRequest, *, s3, raw_bucket: str, ticker_list_key: str, map_concurrency: int) -> dict:
    key = request.tickers_key or ticker_list_key
    try:
        body = s3.get_object(Bucket=raw_bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"ticker list s3://{raw_bucket}/{key} does not exist: upload it first") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"ticker list s3://{raw_bucket}/{key} is not UTF-8 text") from None
    tickers = parse_ticker_csv(text, source=f"ticker list s3://{raw_bucket}/{key}")
    prefix = run_prefix(request.run_id)
    items_key, symbols_key = prefix + "items.json", prefix + "symbols.json"
    s3.put_object(
        Bucket=raw_bucket,
        Key=items_key,
        Body=json.dumps([{"symbol": s} for s in tickers.symbols]).encode(),
        ContentType="application/json",
    )
    s3.put_object(
        Bucket=raw_bucket,
        Key=symbols_key,
        Body=json.dumps({"date": request.trading_date.isoformat(), "symbols": tickers.symbols}).encode(),
        ContentType="application/json",
    )
    return {
        "run_id": request.run_id,
        "date": request.trading_date.isoformat(),
        "tickers_key": key,
        "items_key": items_key,
        "symbols_key": symbols_key,
        "result_key": prefix + "aggregate-result.json",
        "count": len(tickers.symbols),
        "duplicates": tickers.duplicates,
        "rejected": tickers.rejected[:100],
        "rejected_count": len(tickers.rejected),
        "max_concurrency": map_concurrency,
        # Failed symbols are dead-lettered; they must not fail the whole Map.
        "tolerated_failure_percentage": 100,
    }
