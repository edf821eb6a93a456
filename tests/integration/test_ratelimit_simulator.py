"""The account-wide limiter under concurrency, measured by the Fyers simulator; and the simulator's own
faithful limits (the 3-breach day block, the unmetered symbol master).

The limiter tests run in real time with a compressed "minute" (``window_s`` = 3 s, 10 requests per
window), whose slots are ~0.3 s apart as at Fyers' real 200/min: a shorter slot interval would also
shorten the lateness a worker may have before it forfeits its slot, and the test would measure the
box's scheduling jitter instead of the limiter. Several workers, each with its own
``AccountRateLimiter`` like separate Lambdas, share one budget item in moto's DynamoDB and call the
simulator on loopback (aiohttp is not intercepted by moto).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import boto3
import pytest

from awskit import Serialized, create_state_table
from pricefeed.auth.fyers_oauth import exchange_auth_code, login_url, parse_callback
from pricefeed.errors import RateLimited
from pricefeed.fyers.client import FyersClient
from pricefeed.fyers.ratelimit import AccountRateLimiter
from pricefeed.istime import ist_midnight_epoch
from pricefeed.simulator import SimulatorConfig, SimulatorServer

TABLE = "pricefeed-state"
WINDOW_S, PER_MINUTE = 3.0, 10
MARGIN_S = 0.2  # slots (3 + 0.2)/10 = 0.32 s apart; >= half of that, as the limiter needs; 94 % of the limit
DAY = date(2025, 3, 4)



@pytest.fixture
def state_table(mocked_aws):
    client = boto3.client("dynamodb", region_name=mocked_aws)
    create_state_table(client, TABLE)
    return mocked_aws


def worker_limiter(region: str, app_id: str, **kw) -> AccountRateLimiter:
    """One worker's own limiter and DynamoDB client, as a separate Lambda would have."""
    kw = {"per_second": 10, "per_minute": PER_MINUTE, "window_s": WINDOW_S, "margin_s": MARGIN_S, **kw}
    return AccountRateLimiter(Serialized(boto3.client("dynamodb", region_name=region)), TABLE, app_id, **kw)


async def access_token(session: aiohttp.ClientSession, sim: SimulatorServer) -> str:
    cfg = sim.config
    async with session.get(login_url(sim.url, cfg.app_id, cfg.redirect_uri, "s"), allow_redirects=False) as resp:
        code = parse_callback(dict(parse_qsl(urlsplit(resp.headers["Location"]).query)), expected_state="s")
    tokens = await exchange_auth_code(session, sim.url, cfg.app_id, cfg.secret_key, code)
    return tokens.access_token


def day_range(day: date) -> tuple[int, int]:
    start = ist_midnight_epoch(day)
    return start, start + 86_399


async def history(client: FyersClient) -> None:
    await client.history("NSE:SBIN-EQ", "D", *day_range(DAY))


# --- the limiter, measured ---------------------------------------------------------------------
def test_eight_workers_share_the_budget_without_a_single_429(state_table):
    calls, workers = 30, 8
    with SimulatorServer(SimulatorConfig(window_s=WINDOW_S, per_minute=PER_MINUTE, per_second=10), port=0) as sim:

        async def run() -> list[BaseException]:
            async with aiohttp.ClientSession() as session:
                token = await access_token(session, sim)
                sim.reset_stats()  # the login's requests are not the workers'
                jobs = iter(range(calls))
                errors: list[BaseException] = []

                async def worker(limiter: AccountRateLimiter) -> None:
                    async with FyersClient(sim.url, sim.config.app_id, token, session=session, max_attempts=1) as c:
                        for _ in jobs:
                            await limiter.acquire()
                            try:
                                await history(c)
                            except RateLimited as e:
                                errors.append(e)

                await asyncio.gather(*(worker(worker_limiter(state_table, sim.config.app_id)) for _ in range(workers)))
                return errors

        errors = asyncio.run(run())
        stats = sim.stats()
    assert errors == [] and stats["rate_limited"] == 0
    assert stats["accepted"] == calls and stats["history_requests_by_symbol"] == {"NSE:SBIN-EQ": calls}
    assert stats["max_in_any_sliding_window"] <= PER_MINUTE
    arrivals = stats["history_arrivals"]
    sustained = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    # 94 % when every worker reaches its slot in time; a worker held up by the box forfeits its slot (a
    # safety rule), so the floor leaves room for about three of them and still catches a limiter that
    # paces at half the budget or leaves a window unused
    assert sustained >= 0.85 * PER_MINUTE / WINDOW_S


def test_a_429_pauses_every_worker_until_the_window_resets(state_table):
    with SimulatorServer(SimulatorConfig(window_s=WINDOW_S, per_minute=4, per_second=10), port=0) as sim:
        app_id = sim.config.app_id
        workers = [worker_limiter(state_table, app_id, per_minute=4) for _ in range(4)]

        async def run() -> tuple[float, dict]:
            async with aiohttp.ClientSession() as session:
                token = await access_token(session, sim)
                sim.reset_stats()
                async with FyersClient(sim.url, app_id, token, session=session, max_attempts=1) as client:
                    try:  # someone outside the limiter spends the window's budget
                        for _ in range(10):
                            await history(client)
                    except RateLimited as e:
                        refused_at = time.time()
                        await workers[0].record_rate_limited(e.retry_after)
                    status = workers[0].status()

                    async def worker(limiter: AccountRateLimiter) -> None:
                        await limiter.acquire()
                        await history(client)

                    await asyncio.gather(*(worker(w) for w in workers))
                    return refused_at, status

        refused_at, status = asyncio.run(run())
        stats = sim.stats()
    assert stats["rate_limited"] == 1 and status["breaches_today"] == 1
    assert stats["breached_minutes"] == 1 and not stats["blocked"]
    paused_until = status["paused_until"]
    assert paused_until >= refused_at + 1  # the simulator's Retry-After: the rest of its window, >= 1 s
    after = [t for t in stats["history_arrivals"] if t > refused_at]
    assert len(after) == len(workers)
    assert min(after) >= paused_until  # no worker's request reached Fyers during the pause
    assert min(after) < paused_until + 0.5  # and the first one went as soon as it ended


# --- the simulator's faithful limits -----------------------------------------------------------
class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_simulator_blocks_an_app_for_the_ist_day_after_its_third_breached_minute():
    clock = Clock(datetime(2025, 3, 7, 6, 0, tzinfo=UTC).timestamp())  # Friday 11:30 IST
    with SimulatorServer(SimulatorConfig(clock=clock, per_minute=2), port=0) as sim:

        async def run() -> list[tuple[int, str | None]]:
            async with aiohttp.ClientSession() as session:
                token = await access_token(session, sim)  # 2 requests: a full minute, no breach
                header = {"Authorization": f"{sim.config.app_id}:{token}"}
                params = {"symbol": "NSE:SBIN-EQ", "resolution": "D", "date_format": "1", "cont_flag": "1"}
                params |= {"range_from": "2025-03-04", "range_to": "2025-03-04"}
                seen = []
                for _minute in range(5):
                    clock.t += 60
                    for _ in range(3):  # the third request of each minute breaches it
                        async with session.get(f"{sim.url}/data/history", params=params, headers=header) as r:
                            seen.append((r.status, r.headers.get("Retry-After")))
                return seen

        seen = asyncio.run(run())
        stats = sim.stats()
    midnight = ist_midnight_epoch(date(2025, 3, 8))
    assert [s for s, _ in seen] == [200, 200, 429] * 3 + [429] * 6
    assert int(seen[2][1]) <= 60  # an ordinary breach: wait for the next minute
    assert int(seen[8][1]) == pytest.approx(midnight - (clock.t - 120), abs=1)  # the 3rd: blocked till midnight
    assert stats["breached_minutes"] == 3 and stats["blocked"]
    clock.t = midnight
    assert sim.stats()["blocked"] is False  # a new IST day


def test_the_symbol_master_is_neither_rate_limited_nor_counted():
    with SimulatorServer(SimulatorConfig(per_second=1), port=0) as sim:

        async def run() -> set[int]:
            async with aiohttp.ClientSession() as session:
                statuses = set()
                for _ in range(5):
                    async with session.get(f"{sim.url}/sym_details/NSE_CM.csv") as r:
                        statuses.add(r.status)
                return statuses

        statuses = asyncio.run(run())
        assert 429 not in statuses and sim.stats()["total"] == 0


def test_compressed_windows_show_in_the_stats():
    clock = Clock(1_740_000_000.0)  # a multiple of 3
    with SimulatorServer(SimulatorConfig(clock=clock, window_s=3.0, per_minute=2), port=0) as sim:

        async def run() -> None:
            async with aiohttp.ClientSession() as session:
                await access_token(session, sim)  # 2 requests: the window is full
                async with session.get(f"{sim.url}/api/v3/generate-authcode", params={"client_id": "x"}) as r:
                    assert r.status != 429  # another app id has its own budget
                clock.t += 3
                await access_token(session, sim)

        asyncio.run(run())
        stats = sim.stats()
    assert stats["window_s"] == 3.0
    starts = [w["window_start"] for w in stats["windows"]]
    assert starts == [1_740_000_000.0, 1_740_000_003.0]
    assert [w["accepted"] for w in stats["windows"]] == [3, 2]
    assert stats["max_in_any_sliding_window"] == 3 and stats["per_minute_max"] == 2
    assert stats["history_arrivals"] == []
