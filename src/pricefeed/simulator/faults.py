"""Fault and behaviour knobs, and the seeded dice that decide which request gets which fault."""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

_CHOICES = {
    "rate_limit_body": ("-429", "429"),
    "no_data_style": ("empty_list", "absent"),
    "daily_stamp": ("utc_midnight", "ist_midnight"),
    "invalid_symbol_status": (200, 400),
}


@dataclass
class Knobs:
    """Everything a test may change at run time (``SimulatorServer.set_faults`` / ``POST /_sim/faults``).

    Faults apply to ``/data/history``, ``validate-authcode`` and ``validate-refresh-token``, after the
    rate limiter admitted the request (so a faulted request still consumed budget). One seeded draw
    per request picks at most one of: ``reset_rate`` (connection closed without a reply), then
    ``error_5xx_rate`` (HTTP 500/502/503, Fyers-shaped JSON or an HTML proxy page), then
    ``malformed_rate`` (HTTP 200 with the real JSON body cut in half).

    Variants of unconfirmed Fyers behaviour: ``rate_limit_body`` "-429"|"429" (the code in a 429 body),
    ``retry_after_header`` (send ``Retry-After``/``X-Retry-After-Ms`` on 429), ``no_data_style``
    "empty_list"|"absent" (``candles`` key on ``no_data``), ``daily_stamp`` "utc_midnight"|"ist_midnight",
    ``invalid_symbol_status`` 400|200 (HTTP status of the -300 reply), ``refresh_rotates`` (refresh also
    returns a new refresh token and revokes the old one), ``block_after_minute_violations`` (an app is refused
    until the next IST midnight once it exceeded the per-minute limit in this many distinct minutes of the IST
    day; default 3 like Fyers; None = off).
    ``fail_next_5xx`` makes exactly the next N faultable requests answer 5xx (a deterministic transient outage).
    """

    latency_ms: float = 0.0
    error_5xx_rate: float = 0.0
    reset_rate: float = 0.0
    malformed_rate: float = 0.0
    rate_limit_body: str = "-429"
    retry_after_header: bool = True
    no_data_style: str = "empty_list"
    daily_stamp: str = "utc_midnight"
    invalid_symbol_status: int = 400
    refresh_rotates: bool = False
    block_after_minute_violations: int | None = 3
    fail_next_5xx: int = 0  # the next N faultable requests answer 5xx, then normal service resumes


class Faults:
    """Current knobs plus a ``random.Random(seed)`` so fault sequences are reproducible. Thread-safe."""

    def __init__(self, seed: int):
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.knobs = Knobs()

    def set(self, **changes: Any) -> dict[str, Any]:
        """Validate and apply any subset of knobs; returns all knobs. Raises ValueError/TypeError."""
        names = {f.name for f in fields(Knobs)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(f"unknown fault knob(s): {sorted(unknown)}")
        for name, value in changes.items():
            if name.endswith("_rate") and not (isinstance(value, int | float) and 0 <= value <= 1):
                raise ValueError(f"{name} must be a number in [0, 1]")
            if name == "latency_ms" and not (isinstance(value, int | float) and value >= 0):
                raise ValueError("latency_ms must be a number >= 0")
            if name in _CHOICES and value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {_CHOICES[name]}")
            if name in ("retry_after_header", "refresh_rotates") and not isinstance(value, bool):
                raise ValueError(f"{name} must be a boolean")
            if name == "fail_next_5xx" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise ValueError("fail_next_5xx must be an int >= 0")
            if name == "block_after_minute_violations" and not (
                value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
            ):
                raise ValueError("block_after_minute_violations must be an int >= 1 or null")
        with self._lock:
            for name, value in changes.items():
                setattr(self.knobs, name, value)
            return asdict(self.knobs)

    def snapshot(self) -> dict[str, Any]:
        """All knobs as a dict."""
        with self._lock:
            return asdict(self.knobs)

    def draw(self) -> tuple[str | None, float]:
        """Which fault (``"reset"``, ``"5xx"``, ``"malformed"`` or None) hits this request, plus a
        second uniform number for picking the fault's details."""
        with self._lock:
            if self.knobs.fail_next_5xx > 0:
                self.knobs.fail_next_5xx -= 1
                return "5xx", self._rng.random()
            reset, err, bad = self.knobs.reset_rate, self.knobs.error_5xx_rate, self.knobs.malformed_rate
            if not (reset or err or bad):
                return None, 0.0  # no draw, so enabling faults later starts the same sequence
            u, detail = self._rng.random(), self._rng.random()
        if u < reset:
            return "reset", detail
        if u < reset + err:
            return "5xx", detail
        if u < reset + err + bad:
            return "malformed", detail
        return None, detail
