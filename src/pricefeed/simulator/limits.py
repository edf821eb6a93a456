"""Fyers' account-wide rate budget: per second, per minute, per IST day, per app id.

Windows are FIXED and aligned to the clock: a second is ``[floor(t), floor(t)+1)``, a minute is
``[W*floor(t/W), +W)`` with ``W = window_s`` (60: whole UTC minutes; tests compress it), a day is the
IST calendar day (resets at 00:00 IST). A refused request consumes nothing. ``Retry-After`` is the
whole seconds (≥ 1) until the latest of the exceeded windows resets.

The day block (``block_after_minute_violations=N``, None = off): once an app has exceeded the
per-minute limit in N distinct minutes of one IST day it is refused until the next IST midnight,
starting with the request that made the N-th breach. Fyers does this with N = 3.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from dataclasses import dataclass, field

from .timeutil import ist_date, ist_midnight


@dataclass
class _Windows:
    second: int = -1
    in_second: int = 0
    minute: int = -1
    in_minute: int = 0
    day: dt.date | None = None
    in_day: int = 0
    violated_minutes: set[int] = field(default_factory=set)
    blocked: bool = False  # refused for the rest of ``day``


@dataclass(frozen=True)
class Decision:
    """``allowed`` or refused with ``retry_after`` (s, ≥ 1), ``retry_after_ms`` and which ``limit``."""

    allowed: bool
    retry_after: int = 0
    retry_after_ms: int = 0
    limit: str = ""


class RateLimiter:
    """Fixed-window counters per key with maxima of accepted requests per window. Thread-safe."""

    def __init__(self, per_second: int, per_minute: int, per_day: int, window_s: float = 60.0):
        self.per_second, self.per_minute, self.per_day = per_second, per_minute, per_day
        self.window_s = window_s
        self._lock = threading.Lock()
        self._keys: dict[str, _Windows] = {}
        self.per_second_max = 0
        self.per_minute_max = 0
        self.per_day_max = 0

    def admit(self, key: str, now: float, block_after_minute_violations: int | None = None) -> Decision:
        """Count the request against ``key``'s budget if every window has room; else refuse it."""
        sec, minute, day = math.floor(now), math.floor(now / self.window_s), ist_date(now)
        next_midnight = ist_midnight(day + dt.timedelta(days=1))
        with self._lock:
            w = self._keys.setdefault(key, _Windows())
            if w.second != sec:
                w.second, w.in_second = sec, 0
            if w.minute != minute:
                w.minute, w.in_minute = minute, 0
            if w.day != day:
                w.day, w.in_day, w.violated_minutes, w.blocked = day, 0, set(), False
            resets: list[tuple[float, str]] = []
            if w.in_minute >= self.per_minute:
                resets.append(((minute + 1) * self.window_s, "minute"))
                w.violated_minutes.add(minute)
            threshold = block_after_minute_violations
            w.blocked = threshold is not None and len(w.violated_minutes) >= threshold
            if w.blocked or w.in_day >= self.per_day:
                resets.append((next_midnight, "day"))
            if w.in_second >= self.per_second:
                resets.append((sec + 1, "second"))
            if resets:
                until, limit = max(resets)
                wait = until - now
                return Decision(False, max(1, math.ceil(wait)), max(1, math.ceil(wait * 1000)), limit)
            w.in_second += 1
            w.in_minute += 1
            w.in_day += 1
            self.per_second_max = max(self.per_second_max, w.in_second)
            self.per_minute_max = max(self.per_minute_max, w.in_minute)
            self.per_day_max = max(self.per_day_max, w.in_day)
            return Decision(True)

    def day_breaches(self, now: float) -> tuple[int, bool]:
        """For the IST day of ``now``: the most breached minutes of any app, and whether any app is blocked."""
        day = ist_date(now)
        with self._lock:
            today = [w for w in self._keys.values() if w.day == day]
            return max((len(w.violated_minutes) for w in today), default=0), any(w.blocked for w in today)

    def reset(self) -> None:
        """Forget all windows and maxima: every key gets a fresh budget."""
        with self._lock:
            self._keys.clear()
            self.per_second_max = self.per_minute_max = self.per_day_max = 0
