"""The simulator's fixed-window rate limiter and its knobs validation (no server)."""

from __future__ import annotations

import datetime as dt
import json
import math

import pytest

from pricefeed.simulator.faults import Faults
from pricefeed.simulator.limits import RateLimiter
from pricefeed.simulator.stats import Stats, max_in_sliding_window
from pricefeed.simulator.timeutil import ist_midnight

T = 1_720_000_020.25  # an arbitrary instant, 20.25 s into a minute


def test_eleventh_request_in_a_second_is_refused_without_consuming():
    lim = RateLimiter(10, 200, 100_000)
    decisions = [lim.admit("A", T + i * 0.01) for i in range(11)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False]
    assert decisions[-1].retry_after == 1 and decisions[-1].limit == "second"
    assert lim.admit("B", T).allowed  # budgets are per app id
    assert lim.admit("A", T + 1).allowed  # next whole second: fresh window
    assert lim.per_second_max == 10 and lim.per_minute_max == 11


def test_minute_limit_retry_after_counts_to_the_window_end():
    lim = RateLimiter(10, 20, 100_000)
    t = T
    for _ in range(20):
        assert lim.admit("A", t).allowed
        t += 0.2
    refused = lim.admit("A", t)
    assert not refused.allowed and refused.limit == "minute"
    minute_end = (T // 60 + 1) * 60
    assert refused.retry_after == math.ceil(minute_end - t)
    assert lim.admit("A", minute_end).allowed


def test_day_limit_resets_at_ist_midnight():
    lim = RateLimiter(10, 200, 3)
    assert all(lim.admit("A", T + i).allowed for i in range(3))
    refused = lim.admit("A", T + 5)
    assert refused.limit == "day"
    midnight = ist_midnight(dt.date(2024, 7, 4))
    assert refused.retry_after == math.ceil(midnight - (T + 5))
    assert lim.admit("A", midnight).allowed



def test_the_third_breached_minute_blocks_the_app_until_ist_midnight():
    midnight = ist_midnight(dt.date(2024, 7, 4))
    lim = RateLimiter(10, 1, 100)
    for m in range(2):
        base = midnight + 60 * m
        assert lim.admit("A", base, 3).allowed
        refused = lim.admit("A", base + 1, 3)
        assert refused.limit == "minute"
        assert not lim.admit("A", base + 2, 3).allowed  # a second 429 in the same minute: still one breach
    assert lim.day_breaches(midnight + 130) == (2, False)
    assert lim.admit("A", midnight + 120, 3).allowed
    third = lim.admit("A", midnight + 121, 3)  # the third breached minute: refused until midnight
    assert third.limit == "day" and third.retry_after == 86_400 - 121
    assert not lim.admit("A", midnight + 3600, 3).allowed
    assert lim.day_breaches(midnight + 3600) == (3, True)
    assert lim.admit("B", midnight + 3600, 3).allowed  # per app id
    assert lim.admit("A", midnight + 86_400, 3).allowed  # the next IST day
    assert lim.day_breaches(midnight + 86_400) == (0, False)


def test_the_day_block_can_be_raised_or_switched_off():
    midnight = ist_midnight(dt.date(2024, 7, 4))
    lim = RateLimiter(10, 1, 100)
    for m in range(3):
        assert lim.admit("A", midnight + 60 * m, None).allowed
        assert lim.admit("A", midnight + 60 * m + 1, None).limit == "minute"
    assert lim.admit("A", midnight + 600, None).allowed  # off
    assert lim.admit("A", midnight + 660, 5).allowed
    assert lim.admit("A", midnight + 661, 5).limit == "minute"  # 4 breached minutes, threshold 5
    assert lim.admit("A", midnight + 720, 5).allowed
    assert lim.admit("A", midnight + 721, 5).limit == "day"  # the 5th: blocked from now on
    assert lim.admit("A", midnight + 780, 5).limit == "day"


def test_a_compressed_minute_window():
    lim = RateLimiter(10, 3, 100, window_s=2.0)
    t = 1_720_000_000.0  # a multiple of 2
    assert [lim.admit("A", t + i * 0.2).allowed for i in range(4)] == [True, True, True, False]
    assert lim.admit("A", t + 2.0).allowed  # the next 2-s window
    assert lim.per_minute_max == 3


def test_reset_gives_a_fresh_budget():
    lim = RateLimiter(1, 200, 100)
    assert lim.admit("A", T).allowed
    assert not lim.admit("A", T).allowed
    lim.reset()
    assert lim.admit("A", T).allowed and lim.per_second_max == 1


def test_knob_validation():
    f = Faults(0)
    assert f.set(error_5xx_rate=0.5)["error_5xx_rate"] == 0.5
    with pytest.raises(TypeError):
        f.set(nonsense=1)
    with pytest.raises(ValueError):
        f.set(reset_rate=2)
    with pytest.raises(ValueError):
        f.set(rate_limit_body="-430")
    assert f.snapshot()["block_after_minute_violations"] == 3  # faithful by default
    assert f.set(block_after_minute_violations=None)["block_after_minute_violations"] is None
    for bad in (0, True, "3"):
        with pytest.raises(ValueError):
            f.set(block_after_minute_violations=bad)


def test_fault_draws_are_reproducible():
    a, b = Faults(7), Faults(7)
    for f in (a, b):
        f.set(error_5xx_rate=0.3, reset_rate=0.2, malformed_rate=0.2)
    assert [a.draw() for _ in range(50)] == [b.draw() for _ in range(50)]
    kinds = {a.draw()[0] for _ in range(200)}
    assert kinds == {None, "reset", "5xx", "malformed"}


def test_stats_report_per_window_counts_the_sliding_maximum_and_arrivals():
    lim = RateLimiter(10, 3, 100, window_s=2.0)
    now = [1_720_000_000.0]
    stats = Stats(lim, clock=lambda: now[0])
    t0 = now[0]
    for t in (0.0, 0.5, 1.9, 2.0, 2.1, 2.2, 2.3, 4.5):  # 3 fit in [0, 2); 2.0-2.2 fill [2, 4); 2.3 is refused
        decision = lim.admit("A", t0 + t)
        path = "/data/history" if t != 0.5 else "/api/v3/validate-authcode"
        stats.record(path, accepted=decision.allowed, symbol="NSE:SBIN-EQ", now=t0 + t)
    snap = stats.snapshot()
    assert snap["window_s"] == 2.0
    assert snap["windows"] == [
        {"window_start": t0, "accepted": 3, "refused": 0},
        {"window_start": t0 + 2, "accepted": 3, "refused": 1},
        {"window_start": t0 + 4, "accepted": 1, "refused": 0},
    ]
    assert snap["per_minute_max"] == 3
    # fixed windows hold at most 3, yet [0.5, 2.5) holds 5 accepted requests: the strict measure sees it
    assert snap["max_in_any_sliding_window"] == 5
    assert snap["history_arrivals"] == [t0 + t for t in (0.0, 1.9, 2.0, 2.1, 2.2, 4.5)]
    assert snap["breached_minutes"] == 1 and snap["blocked"] is False
    json.dumps(snap)
    stats.reset()
    assert stats.snapshot()["windows"] == [] and stats.snapshot()["max_in_any_sliding_window"] == 0


def test_the_sliding_maximum_counts_half_open_intervals():
    assert max_in_sliding_window([], 60) == 0
    assert max_in_sliding_window([0, 59.9, 60, 119.9], 60) == 2
    assert max_in_sliding_window([0, 1, 2, 3, 60.5], 60) == 4
    assert max_in_sliding_window([0, 0.5, 1, 1.5, 2], 1) == 2
