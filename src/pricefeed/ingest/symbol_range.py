"""Ingest one symbol's IST date range: ask Fyers for its 1-minute candles in the fewest requests, store each answer raw.

- What to ask (:func:`plan_windows`): an explicit run asks ``from`` 00:00 IST .. the end of ``to``; an
  incremental (scheduled) run asks what the symbol has not settled (:mod:`pricefeed.ingest.settled`):
  every open stretch (a hole a run jumped over, an answer's empty tail awaiting its second ask) and
  everything after its frontier, or from ``from`` 00:00 IST for a symbol never asked. Both stop at the
  last minute that has ended, so a forming candle is never asked for, and nothing before 2017-07-03 is
  asked (:func:`chunking.request_windows`).
- Requests: one ``/data/history`` call per window of at most 100 IST dates, one after the other; ranges
  close together share a request when that saves one (asking settled minutes again costs nothing). A
  scheduled run asks at most ``MAX_CATCH_UP_REQUESTS`` for a symbol, the oldest first; the next asks the rest.
- Storage: each answer is ONE raw envelope (Fyers' body verbatim, ``no_data`` included: it is the
  recorded proof the range was asked) under the IST date of its ``range_from``, plus a reference
  object under every further IST date it covers (``pricefeed.lake.envelope``).
- Then the run's manifest is written, and only then the symbol's settled state changes (a crash or a
  failed write mid-way makes the retry ask again, never skip). Every run settles what its answers
  settle, whatever its kind: a run that asks later dates than the frontier leaves the dates between as
  a hole for the next scheduled run; an answer's empty tail is asked again before it is accepted; minutes
  fetched within ``SETTLE_S`` of their close are asked again (the newest answer wins per minute).
  With the manifest goes a pending marker (``paths.pending_key``) naming the symbol-days to build: the
  aggregation job of any later run builds them too when the job that should have did not finish.
  The run's manifest is written under ``ingested_prefix``:
  ``{"symbol", "requests", "raw_keys", "dates" (IST dates with >= 1 ended candle), "covered_from",
  "covered_to"}`` (epoch seconds of the first and the last asked second, ``null`` when nothing was
  asked). The aggregation job reads it.

Should Fyers still return a candle past ``range_to`` (one that may have been forming when it answered),
the raw keeps it (raw is never rewritten), the aggregation excludes it as ``forming``
(``pricefeed.aggregate.candles``), and the next run asks for that minute again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pricefeed.errors import InvalidInput
from pricefeed.fyers.windows import ist_date_of, request_windows
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.settled import SETTLE_S, Answered, Settled, ranges_to_ask, settle
from pricefeed.ingest.watermark import Watermarks
from pricefeed.istime import (
    IST,
    MINUTE_HISTORY_START,
    ist_day_range,
    ist_midnight_epoch,
    last_closed_minute_epoch,
    utcnow,
)
from pricefeed.lake import envelope, paths
from pricefeed.session_hours import trade_hours_key
from pricefeed.symbol import Symbol

log = logging.getLogger(__name__)

RESOLUTION = "1"
__all__ = ["SETTLE_S", "fewest_windows", "ingest_symbol", "plan_windows", "store_answer"]
#: Threads writing one answer's reference objects (a 100-day answer has 99).
REFERENCE_WRITERS = 8
#: A scheduled run's requests per symbol; what is left (a long lapse, many holes) waits for the next run. The
#: worst wait for a slot is every Map worker's turn: 20 x 100 workers x 0.3025 s = 605 s < the 900-s timeout.
MAX_CATCH_UP_REQUESTS = 20


def plan_windows(request: IngestRequest, now: datetime, state: Settled | None = None) -> list[tuple[int, int]]:
    """The request windows to ask, oldest first (empty when there is nothing to ask).

    Everything ends at the last ended minute (and at the end of IST day ``to``). An explicit run asks
    from 00:00 IST of ``from`` (``InvalidInput`` if no minute of it has ended yet); an incremental one
    asks what ``state`` has not settled (:func:`pricefeed.ingest.settled.ranges_to_ask`).
    """
    start = ist_midnight_epoch(request.from_date)
    end = min(ist_day_range(request.to_date)[1], last_closed_minute_epoch(now))
    if not request.incremental:
        if end < start:
            raise InvalidInput(f"trading date {request.from_date} has not started yet in IST")
        return request_windows(start, end)
    return fewest_windows(ranges_to_ask(state or Settled(), start=start, end=end))


def fewest_windows(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Windows covering ``ranges`` (sorted, disjoint): two neighbours share requests when that saves one."""
    spans: list[tuple[int, int]] = []
    for lo, hi in ranges:
        if spans:
            joined = (spans[-1][0], hi)
            if len(request_windows(*joined)) < len(request_windows(*spans[-1])) + len(request_windows(lo, hi)):
                spans[-1] = joined
                continue
        spans.append((lo, hi))
    return [w for span in spans for w in request_windows(*span)]


@dataclass(frozen=True)
class StoredAnswer:
    """One stored request: the envelope's key, its range, and what it held."""

    key: str
    range_from: int
    range_to: int
    fetched_at: float  # epoch seconds
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
    state = None
    if request.incremental and watermarks is not None:
        state = await asyncio.to_thread(watermarks.load, request.symbol)
    windows = plan_windows(request, now, state)
    left = len(windows) - MAX_CATCH_UP_REQUESTS if request.incremental else 0
    if left > 0:  # oldest first: the frontier moves up to where this run stopped, nothing is skipped
        windows = windows[:MAX_CATCH_UP_REQUESTS]

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
        if dates:  # the days to build, remembered until an aggregation job has finished building them
            pending = paths.pending_key(request.symbol, request.run_id, utcnow())
            marker = json.dumps({"symbol": manifest["symbol"], "dates": manifest["dates"], "run_id": request.run_id})
            await asyncio.to_thread(
                s3.put_object, Bucket=raw_bucket, Key=pending, Body=marker.encode(), ContentType="application/json"
            )
    # Last: a frontier moved before the manifest is written would skip the symbol-days of a failed write for
    # good (the retry would ask nothing, and the aggregation builds only what manifests name).
    if stored and watermarks is not None:
        answered = [Answered(s.range_from, s.range_to, s.fetched_at, s.newest) for s in stored]
        exchange = trade_hours_key(request.symbol)
        state = await asyncio.to_thread(
            watermarks.update, request.symbol, lambda current: settle(current, answered, exchange), stored[-1].key
        )
    summary = {
        "symbol": str(request.symbol),
        "candles": sum(s.candles for s in stored),
        "requests": len(stored),
        "dates": len(dates),
    }
    if state is not None and state.open:
        summary["unsettled"] = state.describe()
    if left > 0:
        summary["requests_left"] = left  # for the next scheduled run
    if not windows:
        summary["note"] = _nothing_asked(request, state)
    return summary


def _nothing_asked(request: IngestRequest, state: Settled | None) -> str:
    if state is not None and state.through is not None:
        through = datetime.fromtimestamp(state.through, IST).isoformat()
        return f"settled through {through} with nothing open: nothing to ask"
    if ist_day_range(request.to_date)[1] < ist_midnight_epoch(MINUTE_HISTORY_START):
        return f"the range ends before {MINUTE_HISTORY_START} (no minute history): nothing to ask"
    return "no minute of the range has ended yet: nothing to ask"


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
    fetched_at = answer.fetched_at.timestamp()
    return StoredAnswer(key, range_from, range_to, fetched_at, len(answer.candles), dates, forming, newest)


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
