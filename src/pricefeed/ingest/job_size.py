"""How big the aggregation job's run should be: G.1X workers and a timeout for the run's symbol-days.

The template declares the job at 2 G.1X workers and 60 minutes, right for a daily run of thousands of symbols.
A backfill of years is millions of symbol-days: the plan sizes each run (``glue:startJobRun`` takes
``NumberOfWorkers`` and ``Timeout`` per run) so that its expected time is at most 60% of its timeout.

Capacity: ``make bench-scale`` models ~170,000 symbol-days an executor-hour (one G.1X executor: 4 vCPU, 8 threads
a task, ~18 S3 calls a symbol-day at tens of ms each); :data:`SYMBOL_DAYS_PER_EXECUTOR_HOUR` takes 100,000, a
margin for slower S3 days. One of the workers is Spark's driver. Pure; no AWS calls.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

from pricefeed.errors import InvalidInput

SYMBOL_DAYS_PER_EXECUTOR_HOUR = 100_000
MIN_WORKERS = 2  # G.1X takes at least 2
DEFAULT_TIMEOUT_MIN, MAX_TIMEOUT_MIN = 60, 2880  # the template's, and Glue's default ceiling (48 h)
HEADROOM = 0.6  # the expected time's share of the timeout


def weekdays(first: date, last: date) -> int:
    """Monday-Friday dates in ``first .. last`` (an upper bound of the trading days: no calendar in Lambda)."""
    if last < first:
        return 0
    full_weeks, extra = divmod((last - first).days + 1, 7)
    return full_weeks * 5 + sum(1 for i in range(extra) if (first + timedelta(days=i)).weekday() < 5)


def size_job(symbol_days: int, *, max_workers: int) -> dict:
    """``{"workers", "timeout_min", "symbol_days"}`` for a run of ``symbol_days``: the fewest workers (at least 2)
    whose expected time fits 60% of 60 minutes; past ``max_workers``, that many workers and a longer timeout."""
    if not isinstance(symbol_days, int) or symbol_days < 0:
        raise InvalidInput(f"symbol_days {symbol_days!r} must be a non-negative integer")
    if not isinstance(max_workers, int) or max_workers < MIN_WORKERS:
        raise InvalidInput(f"max Glue workers {max_workers!r} must be an integer of at least {MIN_WORKERS}")
    executor_hours = symbol_days / SYMBOL_DAYS_PER_EXECUTOR_HOUR
    executors = max(1, math.ceil(executor_hours / (HEADROOM * DEFAULT_TIMEOUT_MIN / 60)))
    workers = min(max_workers, 1 + executors)
    minutes = executor_hours / (workers - 1) * 60 / HEADROOM
    timeout = min(MAX_TIMEOUT_MIN, max(DEFAULT_TIMEOUT_MIN, math.ceil(minutes)))
    return {"workers": workers, "timeout_min": timeout, "symbol_days": symbol_days}
