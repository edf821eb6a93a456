"""call_with_retries: only transient errors are retried, a bounded number of times, with the right waits."""

import asyncio

import pytest

from pricefeed.errors import (
    BadRequest,
    FyersPermissionDenied,
    InvalidSymbol,
    RateLimited,
    TokenExpired,
    TransientFyersError,
)
from pricefeed.fyers.client import call_with_retries


class Script:
    """An attempt that raises the scripted errors in turn, then returns "done"; records calls."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


class Sleeps:
    def __init__(self):
        self.waits = []

    async def __call__(self, seconds):
        self.waits.append(seconds)


def run(script, sleeps, **kw):
    return asyncio.run(call_with_retries(script, sleep=sleeps, **kw))


def test_transient_errors_are_retried_until_success():
    script, sleeps = Script(TransientFyersError("5xx"), TransientFyersError("reset")), Sleeps()
    assert run(script, sleeps, max_attempts=3) == "done"
    assert script.calls == 3
    assert len(sleeps.waits) == 2


def test_gives_up_after_max_attempts_with_the_last_error_and_its_attempt_count():
    last = TransientFyersError("third")
    script, sleeps = Script(TransientFyersError("first"), TransientFyersError("second"), last), Sleeps()
    with pytest.raises(TransientFyersError) as caught:
        run(script, sleeps, max_attempts=3)
    assert caught.value is last
    assert caught.value.attempts == 3
    assert script.calls == 3


@pytest.mark.parametrize("error", [InvalidSymbol, BadRequest, TokenExpired, FyersPermissionDenied])
def test_permanent_errors_are_never_retried(error):
    script, sleeps = Script(error("no")), Sleeps()
    with pytest.raises(error):
        run(script, sleeps, max_attempts=5)
    assert script.calls == 1
    assert sleeps.waits == []


def test_rate_limited_waits_exactly_retry_after():
    script = Script(RateLimited("429", retry_after=1.25), RateLimited("429", retry_after=0.5))
    sleeps = Sleeps()
    assert run(script, sleeps, max_attempts=3) == "done"
    assert sleeps.waits == [1.25, 0.5]


def test_rate_limited_without_retry_after_backs_off_exponentially_with_jitter():
    script, sleeps = Script(*[RateLimited("429") for _ in range(4)]), Sleeps()
    assert run(script, sleeps, max_attempts=5, backoff_initial_s=1.0, backoff_max_s=100.0) == "done"
    # base 1, 2, 4, 8 seconds plus up to 1 s of jitter each
    for base, waited in zip([1, 2, 4, 8], sleeps.waits, strict=True):
        assert base <= waited <= base + 1.0


def test_backoff_is_capped():
    script, sleeps = Script(*[TransientFyersError("x") for _ in range(6)]), Sleeps()
    run(script, sleeps, max_attempts=7, backoff_initial_s=1.0, backoff_max_s=3.0)
    assert max(sleeps.waits) <= 3.0


def test_a_retry_after_too_long_to_wait_inline_propagates_at_once():
    script, sleeps = Script(RateLimited("blocked for the day", retry_after=3600)), Sleeps()
    with pytest.raises(RateLimited):
        run(script, sleeps, max_attempts=3, max_inline_wait_s=60)
    assert script.calls == 1 and sleeps.waits == []


def test_a_single_attempt_means_no_retry():
    script, sleeps = Script(TransientFyersError("x")), Sleeps()
    with pytest.raises(TransientFyersError):
        run(script, sleeps, max_attempts=1)
    assert script.calls == 1
