"""The account-wide rate budget (``pricefeed.fyers.ratelimit``) on moto DynamoDB, with a fake clock.

The fake ``sleep`` records every wait; with ``advance`` it also moves the clock (one worker waiting
for its slot), without it time stands still (many workers reserving slots at the same instant).
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from awskit import Serialized, create_state_table
from pricefeed.errors import RateBudgetExhausted, RateLimited
from pricefeed.fyers.ratelimit import MAX_FORFEITS, AccountRateLimiter, BudgetUse, read_budget_use

TABLE = "pricefeed-state"
T0 = datetime(2026, 3, 4, 6, 0, 10, tzinfo=UTC).timestamp()  # 11:30:10 IST, 10 s into a UTC minute
IST_MIDNIGHT = datetime(2026, 3, 4, 18, 30, tzinfo=UTC).timestamp()  # 00:00 IST on 5 March


class Clock:
    def __init__(self, t: float = T0, *, advance: bool = True):
        self.t = t
        self.advance = advance
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.t += seconds



@pytest.fixture
def ddb(mocked_aws):
    client = boto3.client("dynamodb", region_name=mocked_aws)
    create_state_table(client, TABLE)
    return client


def limiter(ddb, clock: Clock, account: str = "APP-100", **kw) -> AccountRateLimiter:
    return AccountRateLimiter(ddb, TABLE, account, clock=clock, sleep=clock.sleep, **kw)


def run(coro):
    return asyncio.run(coro)


async def acquire_n(lim: AccountRateLimiter, n: int, **kw) -> list[float]:
    return [await lim.acquire(**kw) for _ in range(n)]


# --- pacing and the daily cap ------------------------------------------------------------------
def test_requests_are_paced_by_the_minute_limit_with_its_margin(ddb):
    clock = Clock()
    lim = limiter(ddb, clock)  # 200/min over 60 s + 0.5 s margin
    assert lim.interval_s == pytest.approx(60.5 / 200)
    waits = run(acquire_n(lim, 5))
    assert waits[0] == 0 and waits[1:] == pytest.approx([0.3025] * 4)
    assert clock.t - T0 == pytest.approx(4 * 0.3025)  # relative to T0: approx at epoch size would pass anything
    clock.t += 100  # idle for a while: no burst is saved up, the next slot is simply now
    assert run(acquire_n(lim, 2)) == pytest.approx([0, 0.3025])


def test_the_per_second_limit_binds_when_it_is_the_tighter_one(ddb):
    clock = Clock()
    lim = limiter(ddb, clock, per_second=2, per_minute=1_000)
    assert run(acquire_n(lim, 3)) == pytest.approx([0, 0.5, 0.5])


def test_the_daily_cap_raises_budget_exhausted(ddb):
    clock = Clock()
    lim = limiter(ddb, clock, per_day=3)
    run(acquire_n(lim, 3))
    with pytest.raises(RateBudgetExhausted, match="daily cap of 3"):
        run(lim.acquire())
    status = lim.status()
    assert status["used_today"] == 3 and status["day"] == "2026-03-04"


def test_the_daily_count_resets_at_ist_midnight_not_utc_midnight(ddb):
    clock = Clock(IST_MIDNIGHT - 5)
    lim = limiter(ddb, clock, per_day=2)
    run(acquire_n(lim, 2))
    with pytest.raises(RateBudgetExhausted):
        run(lim.acquire())
    clock.t = IST_MIDNIGHT  # 18:30 UTC
    assert run(lim.acquire()) == 0
    assert lim.status()["day"] == "2026-03-05" and lim.status()["used_today"] == 1


def test_an_onlooker_reads_todays_use_with_the_limits_and_a_new_ist_day_starts_at_zero(ddb):
    clock = Clock(IST_MIDNIGHT - 5)
    assert read_budget_use(ddb, table=TABLE, account="APP-100", now=clock.t) is None  # no request yet
    run(acquire_n(limiter(ddb, clock, per_minute=120, per_day=500), 3))

    today = read_budget_use(ddb, table=TABLE, account="APP-100", now=clock.t)
    tomorrow = read_budget_use(ddb, table=TABLE, account="APP-100", now=IST_MIDNIGHT)

    assert today == BudgetUse("2026-03-04", 3, 500, 120, paused=False, breaches_today=0)
    assert (tomorrow.day, tomorrow.used_today) == ("2026-03-05", 0)


def test_a_slot_further_than_max_wait_is_refused_and_nothing_is_reserved(ddb):
    clock = Clock(advance=False)
    lim = limiter(ddb, clock)
    run(lim.acquire())
    before = lim.status()
    with pytest.raises(RateLimited) as caught:
        run(lim.acquire(max_wait_s=0.1))
    assert caught.value.retry_after == pytest.approx(0.3025)
    assert lim.status() == before  # not counted, slot not taken
    clock.t += caught.value.retry_after
    assert run(lim.acquire(max_wait_s=0.1)) == 0  # exactly the slot it was told to come back for


# --- the breaker -------------------------------------------------------------------------------
def test_a_429_pauses_every_worker_until_retry_after(ddb):
    clock = Clock(advance=False)
    worker_a, worker_b = limiter(ddb, clock), limiter(ddb, clock)
    run(worker_a.record_rate_limited(7.0))
    assert run(worker_b.acquire()) == pytest.approx(7.0)  # another worker of the same account waits too
    assert run(worker_a.acquire()) == pytest.approx(7.0 + 0.3025)
    assert worker_a.status()["paused"] and worker_a.status()["breaches_today"] == 1


def test_a_429_without_retry_after_pauses_a_whole_window(ddb):
    clock = Clock(advance=False)
    lim = limiter(ddb, clock, window_s=3.0, max_breaches=5)
    run(lim.record_rate_limited(None))
    assert run(lim.acquire()) == pytest.approx(3.0)
    clock.t += 100
    run(lim.record_rate_limited(0.5))
    run(lim.record_rate_limited(0.1))  # a shorter pause never shortens the current one
    assert run(lim.acquire()) == pytest.approx(0.5)


def test_two_breached_minutes_stop_the_account_before_a_third_would_block_it(ddb):
    clock = Clock()
    lim = limiter(ddb, clock)
    run(lim.record_rate_limited(1.0))
    clock.t += 20
    run(lim.record_rate_limited(1.0))  # the same minute: still one breach
    run(lim.acquire())
    assert lim.status()["breaches_today"] == 1
    clock.t += 60
    run(lim.record_rate_limited(1.0))  # a second minute
    with pytest.raises(RateBudgetExhausted, match="2 per-minute breaches"):  # permanent, not "wait 1 s"
        run(lim.acquire(max_wait_s=0.1))
    clock.t = IST_MIDNIGHT  # a new IST day: a fresh budget
    assert run(lim.acquire()) == 0 and lim.status()["breaches_today"] == 0


# --- concurrent writers ------------------------------------------------------------------------
def test_a_lost_conditional_write_is_retried_and_never_shares_a_slot(ddb):
    clock = Clock(advance=False)
    rival = limiter(ddb, clock)
    interleaved = []

    class RivalWritesFirst:
        """Before A's first write lands, another worker reserves a slot (so A's write must fail)."""

        exceptions = ddb.exceptions

        def __getattr__(self, name):
            return getattr(ddb, name)

        def put_item(self, **kw):
            if not interleaved:
                interleaved.append(asyncio.run(rival.acquire()))  # we are in A's worker thread
            return ddb.put_item(**kw)

    lim = AccountRateLimiter(RivalWritesFirst(), TABLE, "APP-100", clock=clock, sleep=clock.sleep)
    wait = run(lim.acquire())  # the account is idle: A's first slot is a put, and the rival's put lands first
    assert interleaved == [0]  # the rival got the first slot
    assert wait == pytest.approx(0.3025)  # A lost its put, backed off, and took the second
    # A: the busy-slot update declined (no item yet), its put lost; the rival: the update declined, its put won
    assert lim.failed_writes == 2 and rival.failed_writes == 1
    assert lim.status()["used_today"] == 2


def test_workers_taking_slots_of_a_busy_budget_never_lose_a_write(ddb):
    # Given a busy budget (its next slot is ahead), 50 workers at the same instant, each taking two slots
    clock = Clock(advance=False)
    first = limiter(Serialized(ddb), clock)
    run(first.acquire())
    workers = [limiter(Serialized(ddb), clock) for _ in range(50)]

    async def go():
        return await asyncio.gather(*(w.acquire(max_wait_s=1_000) for w in workers for _ in range(2)))

    waits = sorted(run(go()))
    # Then each got its own slot, evenly spaced, by one atomic update each: no write was lost
    assert waits == pytest.approx([i * 0.3025 for i in range(1, 101)])
    assert sum(w.failed_writes for w in workers) == 0
    assert first.status()["used_today"] == 101


def test_many_workers_at_once_get_distinct_evenly_spaced_slots(ddb):
    clock = Clock(advance=False)
    workers = [limiter(Serialized(ddb), clock) for _ in range(8)]

    async def go():
        waits = await asyncio.gather(*(w.acquire(max_wait_s=1_000) for w in workers for _ in range(5)))
        return sorted(waits)

    waits = run(go())
    assert waits == pytest.approx([i * 0.3025 for i in range(40)])


def test_a_worker_asleep_for_its_slot_when_the_breaker_trips_sends_after_the_pause(ddb):
    clock = Clock()
    other = limiter(ddb, clock)
    run(other.acquire())  # the slot at T0 went out
    tripped: list[float] = []

    async def sleep_while_a_429_lands(seconds: float) -> None:
        if not tripped:  # while this worker sleeps towards its slot, the other one gets a 429
            tripped.append(clock.t)
            await other.record_rate_limited(20)
        clock.t += seconds

    worker = AccountRateLimiter(ddb, TABLE, "APP-100", clock=clock, sleep=sleep_while_a_429_lands)
    run(worker.acquire())

    assert tripped == [T0] and clock.t - T0 == pytest.approx(20)  # not at its slot T0 + 0.3025, inside the pause
    assert worker.status()["used_today"] == 2  # the slot inside the pause is not counted


def test_workers_held_up_past_their_slots_reserve_again_instead_of_sending_together(ddb):
    """Three workers reserve at once; the process stalls for 2 s before the second and third reach their
    slots. Sent late, both would go at the same instant; they reserve again and stay a slot apart."""
    clock = Clock(advance=False)
    asleep: list[float] = []
    both_asleep, released = asyncio.Event(), asyncio.Event()

    async def held_up(seconds: float) -> None:
        due = clock.t + seconds
        asleep.append(seconds)
        if len(asleep) == 2:
            both_asleep.set()
        await released.wait()
        clock.t = max(clock.t, due)

    workers = [AccountRateLimiter(Serialized(ddb), TABLE, "APP-100", clock=clock, sleep=held_up) for _ in range(3)]
    sent: list[float] = []

    async def send(worker: AccountRateLimiter) -> None:
        await worker.acquire()
        sent.append(clock.t)

    async def go():
        tasks = [asyncio.create_task(send(w)) for w in workers]
        await asyncio.wait_for(both_asleep.wait(), timeout=30)  # two wait for their slots; one has sent
        clock.t = T0 + 2.0  # ... and the process was held up for 2 s
        released.set()
        await asyncio.gather(*tasks)

    run(go())
    assert [t - T0 for t in sent] == pytest.approx([0, 2.0, 2.0 + 0.3025])
    assert workers[0].status()["used_today"] == 3  # the two missed slots are not counted


def test_a_worker_late_for_every_slot_stops_forfeiting_and_sends(ddb):
    """Reservations that come back a second late every time (a throttled table) must not loop for ever."""
    clock = Clock()
    writes = []

    class SlowWrites:
        exceptions = ddb.exceptions

        def get_item(self, **kw):
            return ddb.get_item(**kw)

        def update_item(self, **kw):
            answer = ddb.update_item(**kw)  # raises when the budget is not busy (the slot is in the past)
            writes.append(answer["Attributes"]["tat"]["N"])
            clock.t += 1.0
            return answer

        def put_item(self, **kw):
            writes.append(kw["Item"]["tat"]["N"])
            clock.t += 1.0  # the answer comes back a second after the slot it granted
            return ddb.put_item(**kw)

    lim = AccountRateLimiter(SlowWrites(), TABLE, "APP-100", clock=clock, sleep=clock.sleep)

    assert run(acquire_n(lim, 2)) == [0, 0]  # every slot is in the past by the time it is granted

    assert len(writes) == 2 * (1 + MAX_FORFEITS)  # each request: its slot, MAX_FORFEITS more, then it sends
    assert lim.status()["used_today"] == 2  # the missed slots are not counted


# --- the property: no window ever holds more than the limit ------------------------------------
ops = st.lists(
    st.tuples(
        st.floats(0, 3, allow_nan=False),  # time since the previous call
        st.integers(0, 2),  # which worker
        st.none() | st.floats(0, 10, allow_nan=False),  # a 429 with this Retry-After (None: acquire)
        st.booleans(),  # the 429 carried no Retry-After
    ),
    max_size=30,
)
accounts = itertools.count()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    per_second=st.integers(1, 10),
    per_minute=st.integers(1, 40),
    window_s=st.floats(1, 10),
    margin_s=st.floats(0, 1),
    calls=ops,
)
def test_no_window_ever_holds_more_than_the_limits(ddb, per_second, per_minute, window_s, margin_s, calls):
    clock = Clock(advance=False)  # callers arrive at random times and reserve ahead, as concurrent workers do
    account = f"APP-{next(accounts)}"
    kw = dict(per_second=per_second, per_minute=per_minute, window_s=window_s, margin_s=margin_s, max_breaches=10**6)
    workers = [limiter(ddb, clock, account, **kw) for _ in range(3)]
    slots = []

    async def go():
        for gap, who, retry_after, bare in calls:
            clock.t += gap
            if retry_after is None:
                slots.append(clock.t + await workers[who].acquire(max_wait_s=float("inf")))
            else:
                await workers[who].record_rate_limited(None if bare else retry_after)

    run(go())
    assert slots == sorted(slots)
    eps = 1e-6  # this test's own float sums at epoch magnitude (1 ulp = 2.4e-7 s); the limiter's are exact
    for i, start in enumerate(slots):
        assert sum(1 for s in slots[i:] if s < start + window_s - eps) <= per_minute
        assert sum(1 for s in slots[i:] if s < start + 1.0 - eps) <= per_second
