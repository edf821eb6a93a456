"""Request counters the tests assert on (``SimulatorServer.stats()`` / ``GET /_sim/stats``)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from .limits import RateLimiter


class Stats:
    """Counts every request outside ``/_sim/*``. Thread-safe.

    ``requests``/``total`` include refused requests; ``rate_limited`` counts the refused ones;
    ``accepted`` = total - rate_limited. ``history_requests_by_symbol`` counts accepted
    ``/data/history`` requests by their ``symbol`` parameter. ``per_second_max``/``per_minute_max``/
    ``per_day_max`` are the most accepted requests any single window of one app id saw.
    """

    def __init__(self, limiter: RateLimiter):
        self._lock = threading.Lock()
        self._limiter = limiter
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the limiter is reset separately)."""
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._by_symbol: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._rate_limited = 0

    def record(self, path: str, *, accepted: bool, symbol: str | None = None) -> None:
        """One request arrived at ``path``; ``symbol`` only for an accepted history request."""
        with self._lock:
            self._requests[path] += 1
            if not accepted:
                self._rate_limited += 1
            elif symbol is not None:
                self._by_symbol[symbol] += 1

    def record_fault(self, kind: str) -> None:
        """A fault knob fired (``reset``/``5xx``/``malformed``)."""
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of all counters."""
        with self._lock:
            total = sum(self._requests.values())
            return {
                "requests": dict(self._requests),
                "total": total,
                "accepted": total - self._rate_limited,
                "rate_limited": self._rate_limited,
                "per_second_max": self._limiter.per_second_max,
                "per_minute_max": self._limiter.per_minute_max,
                "per_day_max": self._limiter.per_day_max,
                "history_requests_by_symbol": dict(self._by_symbol),
                "faults": dict(self._faults),
            }
