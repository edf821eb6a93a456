"""The simulator's fixed-window rate limiter and its knobs validation (no server)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from pricefeed.simulator.faults import Faults
from pricefeed.simulator.limits import RateLimiter
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


def test_day_limit_resets_at_ist_midnight_and_block_after_violations():
    lim = RateLimiter(10, 200, 3)
    assert all(lim.admit("A", T + i).allowed for i in range(3))
    refused = lim.admit("A", T + 5)
    assert refused.limit == "day"
    midnight = ist_midnight(dt.date(2024, 7, 4))
    assert refused.retry_after == math.ceil(midnight - (T + 5))
    assert lim.admit("A", midnight).allowed

    lim = RateLimiter(10, 1, 100)
    for m in range(3):
        base = midnight + 60 * m
        assert lim.admit("A", base, 2).allowed
        assert not lim.admit("A", base + 1, 2).allowed  # one violated minute each
    assert lim.admit("A", midnight + 600, 5).allowed  # 3 violations, threshold 5: not blocked
    blocked = lim.admit("A", midnight + 660, 2)  # 3 violated minutes > 2: blocked for the IST day
    assert not blocked.allowed and blocked.limit == "day"


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


def test_fault_draws_are_reproducible():
    a, b = Faults(7), Faults(7)
    for f in (a, b):
        f.set(error_5xx_rate=0.3, reset_rate=0.2, malformed_rate=0.2)
    assert [a.draw() for _ in range(50)] == [b.draw() for _ in range(50)]
    kinds = {a.draw()[0] for _ in range(200)}
    assert kinds == {None, "reset", "5xx", "malformed"}
