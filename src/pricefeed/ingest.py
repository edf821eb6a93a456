"""Ingest one symbol's IST trading day: ask Fyers for its 1-minute candles, store the answer raw in S3."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pricefeed import paths, raw
from pricefeed.errors import InvalidInput
from pricefeed.fyers import FyersClient
from pricefeed.istime import ist_day_range, last_closed_minute_epoch, parse_date, utcnow

RESOLUTION = "1"


@dataclass(frozen=True)
class IngestRequest:
    symbol: str
    trading_date: date
    run_id: str = ""

    @classmethod
    def parse(cls, item: object) -> IngestRequest:
        """A Map item ``{"symbol": "NSE:SBIN-EQ", "date": "YYYY-MM-DD", "run_id": ...}``."""
        if not isinstance(item, dict):
            raise InvalidInput(f"ingest item must be an object, got {type(item).__name__}")
        symbol = item.get("symbol")
        if not isinstance(symbol, str):
            raise InvalidInput("ingest item has no 'symbol' string")
        paths.split_symbol(symbol)  # validates the shape, naming the symbol
        return cls(symbol, parse_date(item.get("date"), what="ingest item 'date'"), str(item.get("run_id", "")))


def request_range(trading_date: date, now: datetime) -> tuple[int, int]:
    """The whole IST day, cut at the last minute that has ended: a forming candle is never asked for."""
    start, end = ist_day_range(trading_date)
    end = min(end, last_closed_minute_epoch(now))
    if end < start:
        raise InvalidInput(f"trading date {trading_date} has not started yet in IST")
    return start, end


async def ingest_symbol(
    request: IngestRequest, *, client: FyersClient, s3, raw_bucket: str, now: datetime | None = None
) -> dict:
    """Fetch and store; returns a small summary (kept small: a Map's results share a 256 KiB limit)."""
    range_from, range_to = request_range(request.trading_date, now or utcnow())
    answer = await client.history(request.symbol, RESOLUTION, range_from, range_to)
    body = raw.build_envelope(
        symbol=request.symbol,
        resolution=RESOLUTION,
        range_from=range_from,
        range_to=range_to,
        trading_date=request.trading_date,
        fetched_at=answer.fetched_at,
        http_status=answer.http_status,
        body=answer.body,
    )
    key = paths.raw_key(request.symbol, request.trading_date, answer.fetched_at)
    s3.put_object(Bucket=raw_bucket, Key=key, Body=body, ContentType="application/json")
    return {"symbol": request.symbol, "candles": len(answer.candles)}
