"""The account-wide Fyers rate budget, shared by every worker through one DynamoDB item.

Fyers counts 10 requests/s, 200/min and 100,000/day per app across every caller, and blocks the
account for the rest of the IST day after its third per-minute breach. Many Lambda workers call Fyers
at once (a Step Functions Map), so a per-process limiter cannot protect the account: the budget lives
in the state table as ``budget#<account>`` (``pricefeed.fyers.budget_item``). While the budget is busy
(its next slot is at or after now), a worker takes that slot with one atomic update; otherwise (an idle
account, a new IST day, the breaker) it reads, computes and puts on the same ``version``, and a lost race
backs off a random, growing while before it tries again. With read-compute-put alone, 100 workers
starting together had ~80 conditional writes refused per slot granted; now ~0.25 (moto, Fyers' limits).

The shape is GCRA, a token bucket of capacity 1, i.e. strict pacing: request slots are at least
``T = max(1/per_second, (window_s + margin_s)/per_minute)`` apart.

- Capacity 1, because any burst capacity B would let B requests through at once on top of the paced
  ones, costing B requests of every 60-s window in which the burst lands.
- The margin, because Fyers' window may be sliding and requests reach it with network jitter: with
  slots ``(window_s + margin_s)/per_minute`` apart, any ``window_s``-long window holds fewer than
  ``per_minute`` requests even when arrivals shift by up to ~``margin_s``. Sustained use is
  ``window_s/(window_s + margin_s)`` of the limit (0.99 at the defaults).

A slot is used at its time or not at all. A worker held up between reserving a slot and reaching it (a
stalled process, a slow start) would otherwise send late, on top of the slots after its own: several late
workers make a burst. So a worker that wakes more than ``T/2`` past its slot forfeits it and reserves
again (the forfeited slot is not counted against the day), at most ``MAX_FORFEITS`` times a request.
Likewise a worker that slept towards its slot reads the item once more before sending: when the breaker
tripped meanwhile (a 429 elsewhere), its slot lies inside the pause and it reserves again, after it.
Sends then lie within ``T/2`` after their slots, which the margin absorbs when ``margin_s >= T/2`` (0.5 s
against 0.15 s at Fyers' limits, where a second then holds at most 4 requests of its 10).

Times are exact decimals (DynamoDB numbers are decimals) and the interval is rounded up to whole
microseconds, so float rounding at epoch magnitudes never packs slots closer than the interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import ROUND_CEILING, Decimal
from typing import Any, NoReturn

from tenacity import AsyncRetrying, RetryCallState, retry_if_result, stop_after_attempt, wait_random_exponential

from pricefeed.errors import RateBudgetExhausted, RateLimited, TransientFyersError
from pricefeed.fyers.budget_item import Budget, BudgetItem, BudgetUse, budget_key, dec, ist_day, read_budget_use

__all__ = ["AccountRateLimiter", "BudgetUse", "read_budget_use"]

log = logging.getLogger(__name__)

#: Lost optimistic races before giving up; each lost race means another worker made progress.
MAX_CONFLICTS = 60
#: After a lost race: a random wait in [0, min(CONFLICT_BACKOFF_MAX_S, CONFLICT_BACKOFF_S * 2**n)] ("full
#: jitter"). Well under the slot interval at Fyers' limits (0.3 s): a worker backing off only takes a later slot.
CONFLICT_BACKOFF_S = 0.01
CONFLICT_BACKOFF_MAX_S = 0.5
#: Slots one request may miss and reserve again. A stall is a one-off; a worker late again is held up by
#: slow reservation round trips, and reserving once more would only waste the account's slots.
MAX_FORFEITS = 2


class AccountRateLimiter:
    """Pace one Fyers account's requests across every process that shares ``table_name``.

    Call ``await acquire()`` before each request and ``await record_rate_limited(retry_after)`` when
    Fyers answers 429 anyway. ``clock`` (epoch seconds) and ``sleep`` are injectable for tests;
    ``window_s`` exists so tests can compress time (production: 60).
    """

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        account: str,
        *,
        per_second: int = 10,
        per_minute: int = 200,
        per_day: int = 100_000,
        window_s: float = 60.0,
        margin_s: float = 0.5,
        max_breaches: int = 2,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ):
        if min(per_second, per_minute, per_day) < 1 or window_s <= 0 or margin_s < 0:
            raise ValueError("rate limits must be >= 1, window_s > 0 and margin_s >= 0")
        self.table_name = table_name
        self.account = account
        self.key = budget_key(account)
        self._item = BudgetItem(dynamodb_client, table_name, account, per_minute=per_minute, per_day=per_day)
        self.per_day = per_day
        self.per_minute = per_minute
        self.window_s = window_s
        self.max_breaches = max_breaches
        interval = Decimal(max(1.0 / per_second, (window_s + margin_s) / per_minute))
        self._interval = (interval * 1_000_000).to_integral_value(ROUND_CEILING) / 1_000_000  # whole µs, up
        self.interval_s = float(self._interval)  # T: the least time between two of the account's slots
        self.late_tolerance_s = self.interval_s / 2  # a slot missed by more is not used (module docstring)
        self._clock = clock
        self._sleep = sleep
        self.failed_writes = 0  # conditional writes refused: puts another worker won, busy-slot updates declined

    def __repr__(self) -> str:
        return f"AccountRateLimiter(table={self.table_name!r}, key={self.key!r}, interval_s={self.interval_s:g})"

    # --- the public API --------------------------------------------------------------------------
    async def acquire(self, *, max_wait_s: float = 60.0) -> float:
        """Reserve the account's next request slot and sleep until it; returns seconds waited.

        Raises ``RateLimited(retry_after=...)`` when the slot is further than ``max_wait_s`` away
        (nothing is reserved), and ``RateBudgetExhausted`` when today's (IST) daily cap is reached or
        ``max_breaches`` per-minute breaches were recorded today (one more would block the account).
        """

        forfeited_on = ""  # the IST day of a slot this call missed (it is not counted)

        def reserve(b: Budget, now: Decimal) -> Budget:
            slot = max(now, b.tat, b.paused_until)
            b = b.on_day(ist_day(slot))  # the request counts on the IST day it is sent
            if forfeited_on == b.day:
                b = replace(b, used=b.used - 1)
            # the permanent refusals first: waiting would not help
            if b.used >= self.per_day:
                raise RateBudgetExhausted(
                    f"account {self.account}: the daily cap of {self.per_day} requests is spent for IST {b.day}"
                )
            if len(b.breaches) >= self.max_breaches:
                raise RateBudgetExhausted(
                    f"account {self.account}: {len(b.breaches)} per-minute breaches on IST {b.day}; "
                    "one more would block the account until midnight IST"
                )
            if float(slot - now) > max_wait_s:
                raise RateLimited(
                    f"account {self.account}: next request slot is {float(slot - now):.1f}s away "
                    f"(more than the {max_wait_s:g}s this caller waits)",
                    retry_after=float(slot - now),
                )
            return replace(b, tat=slot + self._interval, used=b.used + 1)

        def take_busy_slot(now: Decimal) -> tuple[Budget | None, Budget | None]:
            counted = forfeited_on != ist_day(now)
            latest = now + dec(max_wait_s)
            return self._item.take_busy_slot(
                interval=self._interval, now=now, latest=latest, counted=counted, max_breaches=self.max_breaches
            )

        waited, late_forfeits = 0.0, 0
        while True:
            granted = await self._change(reserve, busy=take_busy_slot)
            slot = granted.tat - self._interval
            # measured after the write: the DynamoDB round trips are already part of the wait
            wait = max(0.0, float(slot - dec(self._clock())))
            if wait > 0:
                await self._sleep(wait)
                waited += wait
                if (await asyncio.to_thread(self._item.read)).paused_until > slot:
                    # a 429 came in while this worker waited: the breaker holds slots already given out too
                    log.info("account %s: the breaker tripped while waiting for a slot; waiting it out", self.account)
                    forfeited_on = granted.day
                    continue
            late = float(dec(self._clock()) - slot)
            if late <= self.late_tolerance_s or late_forfeits == MAX_FORFEITS:
                return waited
            log.info("account %s: woke %.2fs past its request slot; reserving a new one", self.account, late)
            forfeited_on, late_forfeits = granted.day, late_forfeits + 1

    async def record_rate_limited(self, retry_after: float | None) -> None:
        """The breaker: a 429 was received. Every worker pauses until the window resets (``retry_after``
        seconds when Fyers said so and it is positive, else a whole ``window_s``), and the breach is
        counted once per distinct window (minute) of the IST day."""
        pause = dec(retry_after if retry_after is not None and retry_after > 0 else self.window_s)

        def trip(b: Budget, now: Decimal) -> Budget:
            b = b.on_day(ist_day(now))
            until = max(b.paused_until, now + pause)
            breaches = b.breaches | {math.floor(float(now) / self.window_s)}
            return replace(b, paused_until=until, breaches=breaches, tat=max(b.tat, until))

        b = await self._change(trip)
        log.warning(
            "Fyers rate limit hit: every worker of account %s pauses for %.1fs (%d breached minute(s) today)",
            self.account,
            float(pause),
            len(b.breaches),
        )

    def status(self) -> dict[str, Any]:
        """JSON-ready view of the budget: next slot, pause, IST day, requests used and breaches today."""
        now = dec(self._clock())
        b = self._item.read().on_day(ist_day(now))
        return {
            "account": self.account,
            "interval_s": self.interval_s,
            "next_slot": float(max(now, b.tat, b.paused_until)),
            "paused_until": float(b.paused_until),
            "paused": b.paused_until > now,
            "day": b.day,
            "used_today": b.used,
            "per_day": self.per_day,
            "breaches_today": len(b.breaches),
            "max_breaches": self.max_breaches,
        }

    # --- the item ------------------------------------------------------------------------------
    async def _change(
        self,
        compute: Callable[[Budget, Decimal], Budget],
        busy: Callable[[Decimal], tuple[Budget | None, Budget | None]] | None = None,
    ) -> Budget:
        """Apply ``compute(current, now)`` with an optimistic conditional put; returns what was written. ``busy``
        first tries the atomic way (``BudgetItem.take_busy_slot``), which also reads the item when it declines.
        An exception from ``compute`` propagates with nothing written; a lost put backs off, then tries again."""

        def too_contended(_: RetryCallState) -> NoReturn:
            raise TransientFyersError(
                f"account {self.account}: rate budget too contended ({MAX_CONFLICTS} lost writes)"
            )

        retrying = AsyncRetrying(
            retry=retry_if_result(lambda written: written is None),  # compute's own errors propagate at once
            wait=wait_random_exponential(multiplier=CONFLICT_BACKOFF_S, max=CONFLICT_BACKOFF_MAX_S),
            stop=stop_after_attempt(MAX_CONFLICTS),
            sleep=self._sleep,
            retry_error_callback=too_contended,
        )
        async for attempt in retrying:
            with attempt:
                now = dec(self._clock())
                written, current = await asyncio.to_thread(busy, now) if busy else (None, None)
                self.failed_writes += busy is not None and written is None
                if written is None:
                    current = current or await asyncio.to_thread(self._item.read)
                    new = replace(compute(current, now), version=current.version + 1)
                    written = new if await asyncio.to_thread(self._item.put, new, current.version, now) else None
                    self.failed_writes += written is None
            if not attempt.retry_state.outcome or not attempt.retry_state.outcome.failed:
                attempt.retry_state.set_result(written)
        return written
