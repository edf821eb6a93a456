"""Deterministic NSE-like candles.

Each (seed, symbol, IST date) seeds its own random walk over the day's session minutes, taken from the
same exchange calendar the pipeline uses (``pricefeed.trading_calendar``) with the sessions of the symbol's own
master row (``master.session_column``: 09:15-15:29 IST for NSE/BSE cash and F&O, 09:00-16:59 for currency,
09:00-23:29 or 23:54 for commodities, each on its segment's trading days; special sessions such as Muhurat
trading), so any slice of any
range returns the same values for the same minutes. Prices are kept in paise (ints) so OHLC invariants
hold exactly; they stay within 100-3000 rupees. Coarser resolutions are aggregated from the 1-minute series: intraday
buckets are counted from the open of their session (5m/15m therefore equal wall-clock floors), daily candles are one
per trading date stamped at 00:00 UTC of that date (or 00:00 IST with ``daily_stamp="ist_midnight"``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
from functools import lru_cache

from pricefeed.contracts import carries_open_interest
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR

from .master import hours_of
from .timeutil import HISTORY_START, ist_date, ist_midnight, utc_midnight

# (start_epoch, open, high, low, close, volume) with prices in paise
Candle = tuple[int, int, int, int, int, int]

MIN_PAISE, MAX_PAISE = 100_00, 3000_00
DAILY = "D"


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


@lru_cache(maxsize=1024)  # ~60 MB at most: a simulator serving thousands of symbol-days stays flat
def minute_candles(seed: int, symbol: str, day: dt.date) -> tuple[Candle, ...]:
    """The full sessions of final 1-minute candles of ``symbol`` on IST date ``day`` (none on a holiday)."""
    minutes = DEFAULT_CALENDAR.minute_starts(day, hours=hours_of(symbol, day))
    n = len(minutes)
    base = 200_00 + _digest(seed, symbol) % 2300_00  # 200-2500 rupees, fixed per symbol
    phase = (_digest(seed, symbol, "phase") % 1000) / 1000 * 2 * math.pi
    rng = random.Random(_digest(seed, symbol, day.isoformat()))
    # a slow swing of ±12% around the base, plus day-to-day noise, keeps prices plausible and bounded
    price = base * (1 + 0.12 * math.sin(day.toordinal() / 29 + phase) + rng.gauss(0, 0.01))
    out = []
    for i, start in enumerate(minutes.tolist()):
        o = min(max(round(price), MIN_PAISE), MAX_PAISE)
        c = min(max(round(o * (1 + rng.gauss(0, 0.0008))), MIN_PAISE), MAX_PAISE)
        h = min(max(o, c) + int(abs(rng.gauss(0, 0.0005)) * o), MAX_PAISE)
        lo = max(min(o, c) - int(abs(rng.gauss(0, 0.0005)) * o), MIN_PAISE)
        # U-shaped intraday volume: busier at the open and the close
        shape = 1 + 2 * ((i - n / 2) / (n / 2)) ** 2
        v = max(1, int(rng.lognormvariate(7, 0.6) * shape))
        out.append((start, o, h, lo, c, v))
        price = c
    return tuple(out)


def carries_oi(symbol: str) -> bool:
    """Whether Fyers answers open interest for ``symbol`` with ``oi_flag=1``: futures, options, MCX."""
    try:
        return carries_open_interest(Symbol.parse(symbol))
    except ValueError:
        return False


def open_interest(seed: int, symbol: str, minute: int) -> int:
    """The open interest at the end of the minute starting at ``minute`` (epoch s): a fixed walk per symbol."""
    base = 50_000 + _digest(seed, symbol, "oi") % 2_000_000
    step = _digest(seed, symbol, "oi", str(minute // 86_400)) % 997
    return base + (minute // 60 % 1440) * 75 + step * 75


def _forming(c: Candle, now: float) -> Candle:
    """The candle of the minute containing ``now``, as far as it has formed."""
    t, o, h, lo, cl, v = c
    f = min(max((now - t) / 60, 0.0), 1.0)
    close = o + round((cl - o) * f)
    high = max(o, close) + round((h - max(o, cl)) * f)
    low = min(o, close) - round((min(o, cl) - lo) * f)
    return (t, o, high, low, close, max(1, round(v * f)))


def _aggregate(rows: list[Candle], stamp: int) -> Candle:
    high, low = max(r[2] for r in rows), min(r[3] for r in rows)
    return (stamp, rows[0][1], high, low, rows[-1][4], sum(r[5] for r in rows))


def day_candles(
    seed: int, symbol: str, day: dt.date, resolution: int | str, now: float, daily_stamp: str = "utc_midnight"
) -> list[tuple[int, int, list[Candle]]]:
    """Candles of one day as (bucket_start, bucket_end_exclusive, [candle]) up to ``now``.

    The minute containing ``now`` is included still forming; later minutes are left out.
    """
    if day < HISTORY_START:
        return []
    rows = [c for c in minute_candles(seed, symbol, day) if c[0] <= now]
    if not rows:
        return []
    if rows[-1][0] + 60 > now:
        rows[-1] = _forming(rows[-1], now)
    if resolution == DAILY:
        stamp = utc_midnight(day) if daily_stamp == "utc_midnight" else ist_midnight(day)
        return [(ist_midnight(day), ist_midnight(day) + 86_400, [_aggregate(rows, stamp)])]
    if resolution == 1:
        return [(r[0], r[0] + 60, [r]) for r in rows]
    width = resolution * 60
    opens = [o for o, _ in DEFAULT_CALENDAR.session_minutes(day, hours=hours_of(symbol, day))]
    buckets: dict[int, list[Candle]] = {}
    for r in rows:
        open_at = max(o for o in opens if o <= r[0])  # counted from the open of the candle's session
        buckets.setdefault(open_at + (r[0] - open_at) // width * width, []).append(r)
    return [(b, b + width, [_aggregate(rs, b)]) for b, rs in buckets.items()]


def history(
    seed: int,
    symbol: str,
    resolution: int | str,
    range_from: int,
    range_to: int,
    now: float,
    daily_stamp: str = "utc_midnight",
) -> list[list[float | int]]:
    """Candles ``[epoch, o, h, l, c, v]`` (prices in rupees) whose bucket overlaps the range.

    The range is inclusive at both ends: a bucket [start, end) is returned when
    ``start <= range_to`` and ``end > range_from``; so ``range_from``/``range_to`` anywhere inside a
    minute include that minute. Buckets are returned in time order; none start after ``now``.
    """
    out: list[list[float | int]] = []
    first, last = ist_date(range_from), ist_date(min(range_to, now))
    day = max(first, HISTORY_START)
    while day <= last:
        for start, end, [c] in day_candles(seed, symbol, day, resolution, now, daily_stamp):
            if start <= range_to and end > range_from:
                out.append([c[0], c[1] / 100, c[2] / 100, c[3] / 100, c[4] / 100, c[5]])
        day += dt.timedelta(days=1)
    return out
