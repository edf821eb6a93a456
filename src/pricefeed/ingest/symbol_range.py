"""Ingest one symbol's IST date range: ask Fyers for its 1-minute candles in the fewest requests, store each answer raw.

- Range (:func:`plan_range`): an explicit run asks ``from`` 00:00 IST .. the end of ``to``; an
  incremental (scheduled) run asks from the symbol's watermark (last stored second + 1) when it has
  one, else from ``from`` 00:00 IST. Both stop at the last minute that has ended, so a forming candle
  is never asked for, and nothing before 2017-07-03 is asked (:func:`chunking.request_windows`).
- Requests: one ``/data/history`` call per window of at most 100 IST dates, one after the other.
- Storage: each answer is ONE raw envelope (Fyers' body verbatim, ``no_data`` included: it is the
  recorded proof the range was asked) under the IST date of its ``range_from``, plus a reference
  object under every further IST date it covers (``pricefeed.lake.envelope``).
- Then the run's manifest is written, and only then the watermark moves to the last window's
  ``range_to`` (a crash or a failed write mid-way makes the retry ask again, never skip) — except when
  the market was live at the end of the range (the newest candle is within ``SETTLE_S`` of
  ``range_to``): then it stops ``SETTLE_S`` earlier, so the next run asks those minutes again in its one
  request and a minute Fyers had not published yet is not skipped for good (the newest answer wins per
  minute). After the close nothing is asked twice.
  The run's manifest is written under ``ingested_prefix``:
  ``{"symbol", "requests", "raw_keys", "dates" (IST dates with >= 1 ended candle), "covered_from",
  "covered_to"}`` (epoch seconds, ``null`` when nothing was asked). The aggregation job reads it.

Should Fyers still return a candle past ``range_to`` (one that may have been forming when it answered),
the raw keeps it (raw is never rewritten), the aggregation excludes it as ``forming``
(``pricefeed.aggregate.candles``), and the next run asks for that minute again (the watermark stops at ``range_to``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pricefeed.errors import InvalidInput, reject_unknown_fields
from pricefeed.fyers.windows import ist_date_of, request_windows
from pricefeed.ingest.watermark import Watermarks
from pricefeed.istime import (
    ISO_DATE,
    IST,
    MINUTE_HISTORY_START,
    ist_day_range,
    ist_midnight_epoch,
    last_closed_minute_epoch,
    parse_date,
    utcnow,
)
from pricefeed.lake import envelope, paths
from pricefeed.symbol import Symbol

log = logging.getLogger(__name__)

RESOLUTION = "1"
#: The newest minutes an incremental run asks again next time (see the module docstring).
SETTLE_S = 120
#: Threads writing one answer's reference objects (a 100-day answer has 99).
REFERENCE_WRITERS = 8


# What the Map's ItemSelector sends (statemachine/ingest_pipeline.asl.json), in that order.
_ITEM_ORDER = ("symbol", "from", "to", "incremental", "ingested_prefix", "run_id", "attempt")


@dataclass(frozen=True)
class IngestRequest:
    """One Map item: a symbol and the IST dates of the run (what the ASL's ItemSelector sends)."""

    symbol: Symbol
    from_date: date
    to_date: date
    incremental: bool = False
    run_id: str = ""
    attempt: int = 0
    ingested_prefix: str | None = None

    def log_keys(self) -> dict[str, str]:
        """What every log line of this item's ingest carries."""
        dates = {"from_date": self.from_date.isoformat(), "to_date": self.to_date.isoformat()}
        return {"symbol": str(self.symbol), **dates, "run_id": self.run_id}

    @property
    def trading_date(self) -> date:
        """The run's last IST date (what logs and dead letters name)."""
        return self.to_date

    @classmethod
    def parse(cls, event: object) -> IngestRequest:
        """``{"symbol", "from", "to", "incremental"?, "run_id"?, "attempt"?, "ingested_prefix"?}``.

        ``InvalidInput`` names the bad field, and any field the state machine does not send.
        """
        if not isinstance(event, dict):
            raise InvalidInput(f"ingest item must be an object, got {type(event).__name__}")
        reject_unknown_fields(event, _ITEM_ORDER, "ingest item")
        if not isinstance(event.get("symbol"), str):
            raise InvalidInput("ingest item has no 'symbol' string")
        symbol = Symbol.parse(event["symbol"])
        first, last = _date_field(event, "from"), _date_field(event, "to")
        if first > last:
            raise InvalidInput(f"ingest item 'from' ({first}) is after 'to' ({last})")
        incremental = _optional(event, "incremental", bool, False)
        run_id = _optional(event, "run_id", str, "")
        attempt = _optional(event, "attempt", int, 0)
        if attempt < 0:
            raise InvalidInput(f"ingest item 'attempt' must be a non-negative integer, got {attempt}")
        prefix = _optional(event, "ingested_prefix", str, "") or None
        if prefix is not None:
            paths.check_prefix(prefix, name="ingest item 'ingested_prefix'")
        return cls(symbol, first, last, incremental, run_id, attempt, prefix)


def _date_field(event: dict, name: str) -> date:
    value = event.get(name)
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise InvalidInput(f"ingest item '{name}' must be a YYYY-MM-DD string, got {value[:40]!r}")
    return parse_date(value, what=f"ingest item '{name}'")


def _optional(event: dict, name: str, kind: type, default):
    value = event.get(name)
    if value is None:
        return default
    if type(value) is not kind:  # type(): a bool is not an attempt number, 0/1 is not a bool
        raise InvalidInput(f"ingest item '{name}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def plan_range(request: IngestRequest, now: datetime, watermark: int | None = None) -> tuple[int, int] | None:
    """The inclusive epoch range to ask for, or ``None`` when an incremental run has nothing new to ask.

    Always ends at the last ended minute (and at the end of IST day ``to``). An explicit run starts at
    00:00 IST of ``from`` (``InvalidInput`` if no minute of it has ended yet); an incremental one at
    ``watermark + 1`` when there is a watermark (catching up any missed days), else 00:00 IST of ``from``.
    """
    start = ist_midnight_epoch(request.from_date)
    end = min(ist_day_range(request.to_date)[1], last_closed_minute_epoch(now))
    if request.incremental:
        if watermark is not None:
            start = int(watermark) + 1
        return (start, end) if start <= end else None
    if end < start:
        raise InvalidInput(f"trading date {request.from_date} has not started yet in IST")
    return start, end


@dataclass(frozen=True)
class StoredAnswer:
    """One stored request: the envelope's key, its range, and what it held."""

    key: str
    range_from: int
    range_to: int
    candles: int
    dates: frozenset[date]  # IST dates (of the range) with at least one ended candle
    forming: int  # candles not ended by min(fetch time, range_to + 1): kept raw, never aggregated
    newest: int | None = None  # start of the newest ended candle


async def ingest_symbol(
    request: IngestRequest,
    *,
    client,
    s3,
    raw_bucket: str,
    watermarks: Watermarks | None = None,
    ingested_prefix: str | None = None,
    now: datetime | None = None,
) -> dict:
    """Ask, store, advance the watermark, write the manifest (see the module docstring).

    ``client`` needs ``async history(symbol, resolution, range_from, range_to)`` (a ``FyersClient``);
    ``ingested_prefix`` defaults to the request's. Returns ``{"symbol", "candles", "requests", "dates"}``
    (+ ``"note"`` when nothing was asked): kept small, a Map's results share a 256 KiB limit.
    """
    now = now or utcnow()
    prefix = ingested_prefix if ingested_prefix is not None else request.ingested_prefix
    watermark = None
    if request.incremental and watermarks is not None:
        watermark = await asyncio.to_thread(watermarks.get, request.symbol)
    planned = plan_range(request, now, watermark)
    windows = request_windows(*planned) if planned else []

    stored: list[StoredAnswer] = []
    for w_from, w_to in windows:
        answer = await client.history(str(request.symbol), RESOLUTION, w_from, w_to)
        stored.append(await asyncio.to_thread(store_answer, s3, raw_bucket, request.symbol, w_from, w_to, answer))

    dates = sorted(set().union(*(s.dates for s in stored)))
    if prefix:
        manifest = {
            "symbol": str(request.symbol),
            "requests": len(stored),
            "raw_keys": [s.key for s in stored],
            "dates": [d.isoformat() for d in dates],
            "covered_from": windows[0][0] if windows else None,
            "covered_to": windows[-1][1] if windows else None,
        }
        key = paths.ingested_manifest_key(prefix, request.symbol)
        body = json.dumps(manifest, indent=2).encode()  # json, not lake: the Lambda layer has no orjson/pyarrow
        await asyncio.to_thread(s3.put_object, Bucket=raw_bucket, Key=key, Body=body, ContentType="application/json")
    # Last: a watermark moved before the manifest is written would skip the symbol-days of a failed write for
    # good (the retry would ask nothing, and the aggregation builds only what manifests name).
    if stored and watermarks is not None:
        last = stored[-1]
        live = last.newest is not None and last.newest + 60 > last.range_to + 1 - SETTLE_S
        covered = last.range_to - SETTLE_S if live else last.range_to
        await asyncio.to_thread(watermarks.advance, request.symbol, covered, last.key)
    summary = {
        "symbol": str(request.symbol),
        "candles": sum(s.candles for s in stored),
        "requests": len(stored),
        "dates": len(dates),
    }
    if not windows:
        summary["note"] = _nothing_asked(planned, watermark)
    return summary


def _nothing_asked(planned: tuple[int, int] | None, watermark: int | None) -> str:
    if planned is None and watermark is not None:
        through = datetime.fromtimestamp(watermark, IST).isoformat()
        return f"already stored through {through}: nothing to ask"
    if planned is None:
        return "no minute of the range has ended yet: nothing to ask"
    return f"the range ends before {MINUTE_HISTORY_START} (no minute history): nothing to ask"


def store_answer(s3, raw_bucket: str, symbol: Symbol, range_from: int, range_to: int, answer) -> StoredAnswer:
    """Write one answer's envelope, then a reference under each further IST date of its range (sync)."""
    first, last = ist_date_of(range_from), ist_date_of(range_to)
    key = paths.raw_key(symbol, first, answer.fetched_at)
    body = envelope.build_envelope(
        symbol=symbol,
        resolution=RESOLUTION,
        range_from=range_from,
        range_to=range_to,
        trading_date=first,
        last_trading_date=last,
        fetched_at=answer.fetched_at,
        http_status=answer.http_status,
        body=answer.body,
    )
    s3.put_object(Bucket=raw_bucket, Key=key, Body=body, ContentType="application/json")

    def put_reference(day: date) -> None:
        ref = envelope.build_reference(
            envelope_key=key,
            symbol=symbol,
            trading_date=day,
            range_from=range_from,
            range_to=range_to,
            fetched_at=answer.fetched_at,
        )
        ref_key = paths.raw_key(symbol, day, answer.fetched_at)
        s3.put_object(Bucket=raw_bucket, Key=ref_key, Body=ref, ContentType="application/json")

    # Written after the envelope, so a reference never points at a missing object.
    further = [first + timedelta(days=i) for i in range(1, (last - first).days + 1)]
    if further:
        with ThreadPoolExecutor(min(REFERENCE_WRITERS, len(further)), thread_name_prefix="raw-ref") as pool:
            list(pool.map(put_reference, further))  # list(): re-raise the first failed write

    ended_by = min(answer.fetched_at.timestamp(), range_to + 1)
    dates, forming, newest = _ended_candle_dates(answer.candles, ended_by, first, last)
    if forming:
        log.warning("%s: Fyers returned %d candle(s) still forming at fetch time; kept raw only", symbol, forming)
    return StoredAnswer(key, range_from, range_to, len(answer.candles), dates, forming, newest)


def _ended_candle_dates(
    candles: list, ended_by: float, first: date, last: date
) -> tuple[frozenset[date], int, int | None]:
    """IST dates in first..last with a candle whose minute had ended by ``ended_by``; how many had not;
    the start of the newest ended candle.

    ``ended_by`` = min(fetch time, range_to + 1): the aggregation's ``forming`` rule (``pricefeed.aggregate.candles``).
    """
    lo, hi = ist_midnight_epoch(first), ist_midnight_epoch(last) + 86_400
    dates: set[date] = set()
    forming = 0
    newest: int | None = None
    for row in candles:
        ts = row[0] if isinstance(row, list) and row else None
        if type(ts) not in (int, float) or not math.isfinite(ts):
            continue  # the aggregation counts malformed rows; here only the day matters
        if ts + 60 > ended_by:
            forming += 1
        elif lo <= ts < hi:
            dates.add(ist_date_of(int(ts)))
            newest = int(ts) if newest is None else max(newest, int(ts))
    return frozenset(dates), forming, newest
