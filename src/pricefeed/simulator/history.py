"""``GET /data/history``: parameter checks, symbol checks and the reply body.

Order of checks: parameters (-50), symbol (-300: not in the simulator's symbol master, see ``master``),
range limits (-50). Ranges: ``date_format=0`` takes epoch seconds; ``date_format=1`` takes ``yyyy-mm-dd``
IST dates and covers those whole days inclusive. Minute resolutions allow a span (range_to - range_from)
of at most 100 days, ``D``/``1D`` at most 366 days; over that, or ``range_from > range_to`` → HTTP 400
``{"code":-50,"message":"Invalid input"}``.
Nothing exists before 2017-07-03 (``no_data``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from pricefeed.session_hours import REGULAR_SESSION, SPECIAL_SESSIONS

from . import market, master
from .errors import ApiError, invalid_input
from .timeutil import DAY, ist_date, ist_midnight

MINUTE_RESOLUTIONS = frozenset({1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 240})
MAX_MINUTE_SPAN = 100 * DAY
MAX_DAILY_SPAN = 366 * DAY


def parse_resolution(text: str | None) -> int | str:
    """``"1"``…``"240"`` → minutes (int); ``"D"``/``"1D"`` → ``market.DAILY``; else -50."""
    if text in ("D", "1D"):
        return market.DAILY
    if text and text.isdigit() and int(text) in MINUTE_RESOLUTIONS:
        return int(text)
    raise invalid_input()


def parse_range(query: Mapping[str, str]) -> tuple[int, int]:
    """(range_from, range_to) as epoch seconds, both inclusive."""
    fmt = query.get("date_format", "0")
    raw_from, raw_to = query.get("range_from"), query.get("range_to")
    if raw_from is None or raw_to is None:
        raise invalid_input()
    try:
        if fmt == "0":
            return int(raw_from), int(raw_to)
        if fmt == "1":
            first, last = dt.date.fromisoformat(raw_from), dt.date.fromisoformat(raw_to)
            return ist_midnight(first), ist_midnight(last) + DAY - 1
    except ValueError:
        raise invalid_input() from None
    raise invalid_input()


def check_symbol(symbol: str | None, unknown: frozenset[str], status: int) -> str:
    """The symbol if the simulator's symbol master lists it (and it is not in ``unknown``); else -300 with
    HTTP ``status``. Exact match, like Fyers: ``nse:sbin-eq`` is not ``NSE:SBIN-EQ``."""
    if symbol is not None and master.is_listed(symbol, unknown):
        return symbol
    raise ApiError(status, -300, "Invalid symbol provided")


class RateLimitStorm(ApiError):
    """HTTP 429 ``-429`` while the ``rate_limit_storm_until`` knob lasts, with the wait in the headers."""

    def __init__(self, wait_s: float):
        super().__init__(429, -429, "request limit reached")
        self.wait_s = max(wait_s, 0.001)

    def response(self) -> web.Response:
        reply = super().response()
        reply.headers["Retry-After"] = str(max(1, math.ceil(self.wait_s)))
        reply.headers["X-Retry-After-Ms"] = str(max(1, math.ceil(self.wait_s * 1000)))
        return reply


def _reshaped(candles: list[list[float | int]], knobs: Mapping[str, Any]) -> list[list[float | int]]:
    """The ``price_shift`` / ``candle_order`` / ``duplicate_candles`` knobs applied to an answer's candles."""
    shift = knobs.get("price_shift") or 0.0
    if shift:
        candles = [[c[0], *(round(p + shift, 2) for p in c[1:5]), c[5]] for c in candles]
    if knobs.get("candle_order") == "desc":
        candles = candles[::-1]
    if knobs.get("duplicate_candles"):
        candles = [copy for c in candles for copy in (c, list(c))]
    return candles


#: The minute of the day (from its first candle) each per-minute defect hits.
DEFECT_MINUTE = {"high_below_open": 10, "volume_sentinel": 20, "non_positive_price": 30}
VOLUME_SENTINEL = 429_496_726_000
MUHURAT_LATE_S = 15 * 60


def _defective(candles: list[list], defects: tuple[str, ...]) -> list[list]:
    """The ``defects`` knob: real Fyers defects, on fixed minutes of every day (a new list; the market's is cached)."""
    if not defects or not candles:
        return candles
    out = [list(c) for c in candles]
    by_day: dict[dt.date, list[list]] = {}
    for c in out:
        by_day.setdefault(ist_date(c[0]), []).append(c)
    for day, rows in by_day.items():
        for kind, index in DEFECT_MINUTE.items():
            if kind in defects and index < len(rows):
                c = rows[index]
                if kind == "high_below_open":
                    c[2] = round(c[1] - 0.05, 2)
                    c[3] = min(c[3], c[4], c[2])
                elif kind == "volume_sentinel":
                    c[5] = VOLUME_SENTINEL
                else:
                    c[3] = 0
        if "double_volume" in defects:
            for c in rows:
                c[5] *= 2
        if "muhurat_late" in defects:  # the special session's candles only, not a regular session the day has
            windows = [(ist_midnight(day) + o.hour * 3600 + o.minute * 60, ist_midnight(day) + e.hour * 3600
                        + e.minute * 60) for o, e in SPECIAL_SESSIONS.get(day, ()) if (o, e) != REGULAR_SESSION]
            for c in rows:
                if any(start <= c[0] < end for start, end in windows):
                    c[0] += MUHURAT_LATE_S
    return out


def _short(symbol: str, resolution: int | str, candles: list[list], knobs: Mapping[str, Any]) -> list[list]:
    """The per-symbol knobs that leave candles out: ``no_data_symbols``, ``listed_on``, ``cut_at``."""
    if symbol in (knobs.get("no_data_symbols") or ()):
        return []
    listed = (knobs.get("listed_on") or {}).get(symbol)
    if listed:
        candles = [c for c in candles if c[0] >= ist_midnight(dt.date.fromisoformat(listed))]
    cut = (knobs.get("cut_at") or {}).get(symbol)
    if cut and resolution != market.DAILY:
        hours, minutes = map(int, cut.split(":"))
        candles = [c for c in candles if (c[0] - ist_midnight(ist_date(c[0]))) < hours * 3600 + minutes * 60]
    return candles


def history_reply(
    query: Mapping[str, str], *, seed: int, unknown: frozenset[str], now: float, knobs: Mapping[str, Any]
) -> dict[str, Any]:
    """The JSON body for a history request that passed authentication (raises ApiError)."""
    storm_until = knobs.get("rate_limit_storm_until")
    if storm_until is not None and now < storm_until:
        raise RateLimitStorm(storm_until - now)
    unknown = unknown | frozenset(knobs.get("delisted_symbols") or ())
    resolution = parse_resolution(query.get("resolution"))
    range_from, range_to = parse_range(query)
    symbol = check_symbol(query.get("symbol"), unknown, knobs["invalid_symbol_status"])
    span_limit = MAX_DAILY_SPAN if resolution == market.DAILY else MAX_MINUTE_SPAN
    if range_from > range_to or range_to - range_from > span_limit:
        raise invalid_input()
    lag = float((knobs.get("publish_lag_s") or {}).get(symbol, 0.0))
    candles = market.history(seed, symbol, resolution, range_from, range_to, now - lag, knobs["daily_stamp"])
    if lag and resolution != market.DAILY:  # a lagging feed publishes whole minutes only, each `lag` after it closed
        candles = [c for c in candles if c[0] + 60 * int(resolution) <= now - lag]
    candles = _short(symbol, resolution, candles, knobs)
    if resolution != market.DAILY:
        candles = _defective(candles, (knobs.get("defects") or {}).get(symbol, ()))
    if query.get("oi_flag") == "1" and market.carries_oi(symbol):  # open interest: a 7th value (F&O, MCX)
        candles = [[*c, market.open_interest(seed, symbol, c[0])] for c in candles]
    if candles:
        return {"s": "ok", "code": 200, "message": "", "candles": _reshaped(candles, knobs)}
    body: dict[str, Any] = {"s": "no_data", "code": 200, "message": ""}
    if knobs["no_data_style"] == "empty_list":
        body["candles"] = []
    return body
