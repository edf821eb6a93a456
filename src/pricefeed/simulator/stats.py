"""Request counters the tests assert on (``SimulatorServer.stats()`` / ``GET /_sim/stats``)."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from typing import Any

from .limits import RateLimiter

#: Per-minute windows kept in ``windows`` (oldest dropped first).
MAX_WINDOWS = 1_000
#: Arrival times kept for ``history_arrivals`` and ``max_in_any_sliding_window``.
MAX_ARRIVALS = 100_000


def max_in_sliding_window(times: Sequence[float], width: float) -> int:
    """The most of the sorted ``times`` inside any half-open interval ``[t, t + width)``."""
    best, j = 0, 0
    for i in range(len(times)):
        while times[i] - times[j] >= width:
            j += 1
        best = max(best, i - j + 1)
    return best


class Stats:
    """Counts every request outside ``/_sim/*``. Thread-safe.

    ``requests``/``total`` include refused requests; ``rate_limited`` counts the refused ones;
    ``accepted`` = total - rate_limited. ``history_requests_by_symbol`` counts accepted
    ``/data/history`` requests by their ``symbol`` parameter. ``per_second_max``/``per_minute_max``/
    ``per_day_max`` are the most accepted requests any single (fixed) window of one app id saw.

    Per-window figures (all app ids together; times are the simulator clock's epoch seconds):
    ``window_s`` (the "minute"), ``windows`` = ``[{"window_start", "accepted", "refused"}]`` per fixed
    minute window (the last 1,000 with traffic, oldest first), ``max_in_any_sliding_window`` = the most
    accepted requests in ANY ``window_s``-long interval (the strict measure), ``history_arrivals`` =
    arrival times of accepted ``/data/history`` requests (last 100,000, for sustained-rate figures),
    ``breached_minutes`` = minutes of the current IST day in which an app exceeded the per-minute limit,
    ``blocked`` = an app is refused for the rest of the IST day (the 3-breach block).
    """

    def __init__(self, limiter: RateLimiter, clock: Callable[[], float] = time.time):
        self._lock = threading.Lock()
        self._limiter = limiter
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        """Zero every counter (the limiter is reset separately)."""
        with self._lock:
            self._requests: Counter[str] = Counter()
            self._by_symbol: Counter[str] = Counter()
            self._faults: Counter[str] = Counter()
            self._rate_limited = 0
            self._windows: OrderedDict[int, list[int]] = OrderedDict()  # window number → [accepted, refused]
            self._accepted_at: deque[float] = deque(maxlen=MAX_ARRIVALS)
            self._history_at: deque[float] = deque(maxlen=MAX_ARRIVALS)

    def record(self, path: str, *, accepted: bool, symbol: str | None = None, now: float | None = None) -> None:
        """One request arrived at ``path`` at ``now`` (epoch s; default: the clock); ``symbol`` only for
        an accepted history request."""
        at = self._clock() if now is None else now
        window = math.floor(at / self._limiter.window_s)
        with self._lock:
            self._requests[path] += 1
            counts = self._windows.get(window)
            if counts is None:
                counts = self._windows[window] = [0, 0]
                while len(self._windows) > MAX_WINDOWS:
                    self._windows.popitem(last=False)
            counts[0 if accepted else 1] += 1
            if not accepted:
                self._rate_limited += 1
                return
            self._accepted_at.append(at)
            if path == "/data/history":
                self._history_at.append(at)
            if symbol is not None:
                self._by_symbol[symbol] += 1

    def record_fault(self, kind: str) -> None:
        """A fault knob fired (``reset``/``5xx``/``malformed``)."""
        with self._lock:
            self._faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy of all counters."""
        width = self._limiter.window_s
        breached, blocked = self._limiter.day_breaches(self._clock())
        with self._lock:
            total = sum(self._requests.values())
            windows = [
                {"window_start": n * width, "accepted": a, "refused": r} for n, (a, r) in sorted(self._windows.items())
            ]
            accepted_at = sorted(self._accepted_at)  # handler threads may record slightly out of order
            history_at = sorted(self._history_at)
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
                "window_s": width,
                "windows": windows,
                "max_in_any_sliding_window": max_in_sliding_window(accepted_at, width),
                "breached_minutes": breached,
                "blocked": blocked,
                "history_arrivals": history_at,
            }
