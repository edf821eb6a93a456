"""Fault and behaviour knobs, and the seeded dice that decide which request gets which fault."""

from __future__ import annotations

import datetime as dt
import math
import random
import threading
from dataclasses import asdict, dataclass, field, fields
from typing import Any

_CHOICES = {
    "rate_limit_body": ("-429", "429"),
    "no_data_style": ("empty_list", "absent"),
    "daily_stamp": ("utc_midnight", "ist_midnight"),
    "invalid_symbol_status": (200, 400),
    "candle_order": ("asc", "desc"),
    "refresh_policy": ("refused", "refused_400", "honoured"),
}
#: "the next N faultable requests" knobs, in the order ``draw`` spends them, and the fault each one causes.
_COUNTERS = {"fail_next_5xx": "5xx", "fail_next_reset": "reset", "fail_next_malformed": "malformed"}


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
    ``invalid_symbol_status`` 400|200 (HTTP status of the -300 reply), ``refresh_policy`` (since April 2026
    Fyers wants one 2FA login a trading day and discontinued refresh tokens; whether validate-refresh-token still
    answers is unconfirmed): "refused" (default: HTTP 401 code -17), "refused_400" (HTTP 400 code -50) or
    "honoured" (the pre-2026 behaviour); ``issue_refresh_token`` (validate-authcode still returns a refresh token,
    as reported in mid-2026; False: it returns none); ``refresh_rotates`` (refresh also
    returns a new refresh token and revokes the old one), ``block_after_minute_violations`` (an app is refused
    until the next IST midnight once it exceeded the per-minute limit in this many distinct minutes of the IST
    day; default 3 like Fyers; None = off).
    ``fail_next_5xx`` makes exactly the next N faultable requests answer 5xx (a deterministic transient outage);
    ``fail_next_reset`` / ``fail_next_malformed`` likewise close the connection / cut the JSON body in half.

    History answers (``/data/history`` only): ``rate_limit_storm_until`` (epoch seconds per the simulator clock)
    answers every history request before that moment HTTP 429 ``-429`` with ``Retry-After``/``X-Retry-After-Ms``
    until then (another program is spending the app's budget; the answer is sent after the simulator's own
    limiter counted the request); ``rate_limit_storm_s`` starts such a storm of that many seconds at the next
    history request (however long the caller takes to get there); ``delisted_symbols`` answer -300 although
    the symbol master still lists them (delisted since the master was published); ``candle_order``
    "asc"|"desc", ``duplicate_candles`` (every candle sent twice in a row) and ``price_shift`` (rupees added to
    open/high/low/close: a revised answer) change the shape of ``ok`` answers.

    Per symbol (``/data/history`` at minute resolutions; dicts keyed by the Fyers symbol), the ways real history
    comes back short: ``no_data_symbols`` answer ``no_data`` (an outage that answers "nothing" instead of an
    error); ``cut_at`` {symbol: "HH:MM"} stops every day's candles before that IST minute (an answer cut
    mid-session); ``publish_lag_s`` {symbol: seconds} publishes each minute that long after it closed (no
    forming candle);
    ``listed_on`` {symbol: "YYYY-MM-DD"} has no candle before that IST date (listed then).
    ``defects`` {symbol: [kind, ...]}: the data defects an EOD validation found in real Fyers history, each on a
    fixed minute of every day (:data:`DEFECTS`): ``high_below_open`` (high under the open), ``volume_sentinel``
    (volume 429496726000), ``non_positive_price`` (a low of 0), ``muhurat_late`` (a special session's candles
    stamped 15 minutes late), ``double_volume`` (every volume doubled).

    ``login_account``: the Fyers client ID the next logins are for (default: the config's ``fy_id``), carried
    as ``fy_id`` in the auth code and in the tokens minted from it: someone else logging in.
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
    refresh_policy: str = "refused"
    issue_refresh_token: bool = True
    refresh_rotates: bool = False
    block_after_minute_violations: int | None = 3
    fail_next_5xx: int = 0  # the next N faultable requests answer 5xx, then normal service resumes
    fail_next_reset: int = 0  # the next N faultable requests get their connection reset
    fail_next_malformed: int = 0  # the next N faultable requests get HTTP 200 with a cut-off JSON body
    rate_limit_storm_until: float | None = None
    rate_limit_storm_s: float = 0.0  # > 0: a storm this long begins at the next history request
    delisted_symbols: tuple[str, ...] = ()
    candle_order: str = "asc"
    duplicate_candles: bool = False
    price_shift: float = 0.0
    login_account: str | None = None
    no_data_symbols: tuple[str, ...] = ()
    cut_at: dict[str, str] = field(default_factory=dict)
    publish_lag_s: dict[str, float] = field(default_factory=dict)
    listed_on: dict[str, str] = field(default_factory=dict)
    defects: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _hh_mm(text: object) -> str:
    if not isinstance(text, str) or len(text) != 5 or text[2] != ":":
        raise ValueError
    return dt.time.fromisoformat(text).strftime("%H:%M")


def _seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ValueError
    return float(value)


def _iso_date(text: object) -> str:
    return dt.date.fromisoformat(str(text)).isoformat()


#: The ``defects`` knob's kinds (see :class:`Knobs`).
DEFECTS = ("high_below_open", "volume_sentinel", "non_positive_price", "muhurat_late", "double_volume")


def _defect_list(value: object) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(v in DEFECTS for v in value):
        raise ValueError
    return tuple(value)


#: The per-symbol knobs: each value's parser and what the error says it must be.
_PER_SYMBOL = {
    "cut_at": (_hh_mm, '"HH:MM" (IST)'),
    "publish_lag_s": (_seconds, "a number of seconds >= 0"),
    "listed_on": (_iso_date, '"YYYY-MM-DD"'),
    "defects": (_defect_list, f"a list of {', '.join(DEFECTS)}"),
}


def _per_symbol(name: str, value: object) -> dict[str, Any]:
    parse, wanted = _PER_SYMBOL[name]
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{name} must be an object of symbol: {wanted}")
    out = {}
    for symbol, item in value.items():
        try:
            out[symbol] = parse(item)
        except (ValueError, TypeError):
            raise ValueError(f"{name}[{symbol!r}] must be {wanted}, not {item!r}") from None
    return out


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
            if name in ("latency_ms", "rate_limit_storm_s") and not (
                isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < math.inf
            ):
                raise ValueError(f"{name} must be a number >= 0")
            if name in _CHOICES and value not in _CHOICES[name]:
                raise ValueError(f"{name} must be one of {_CHOICES[name]}")
            if name in ("retry_after_header", "refresh_rotates", "duplicate_candles", "issue_refresh_token") and (
                not isinstance(value, bool)
            ):
                raise ValueError(f"{name} must be a boolean")
            if name in _COUNTERS and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
                raise ValueError(f"{name} must be an int >= 0")
            if name in ("rate_limit_storm_until", "price_shift") and not (
                (value is None and name == "rate_limit_storm_until")
                or (isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value))
            ):
                raise ValueError(f"{name} must be a finite number" + (" or null" if name.endswith("until") else ""))
            if name in ("delisted_symbols", "no_data_symbols"):
                if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} must be a list of symbols")
                changes[name] = tuple(value)
            if name in _PER_SYMBOL:
                changes[name] = _per_symbol(name, value)
            if name == "login_account" and not (value is None or (isinstance(value, str) and value.isalnum())):
                raise ValueError("login_account must be a Fyers client ID (letters and digits) or null")
            if name == "block_after_minute_violations" and not (
                value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1)
            ):
                raise ValueError("block_after_minute_violations must be an int >= 1 or null")
        with self._lock:
            for name, value in changes.items():
                setattr(self.knobs, name, value)
            return asdict(self.knobs)

    def history_knobs(self, now: float) -> dict[str, Any]:
        """The knobs for one history request at ``now``: a pending ``rate_limit_storm_s`` storm begins here."""
        with self._lock:
            if self.knobs.rate_limit_storm_s:
                self.knobs.rate_limit_storm_until = now + self.knobs.rate_limit_storm_s
                self.knobs.rate_limit_storm_s = 0.0
            return asdict(self.knobs)

    def snapshot(self) -> dict[str, Any]:
        """All knobs as a dict."""
        with self._lock:
            return asdict(self.knobs)

    def draw(self) -> tuple[str | None, float]:
        """Which fault (``"reset"``, ``"5xx"``, ``"malformed"`` or None) hits this request, plus a
        second uniform number for picking the fault's details."""
        with self._lock:
            for counter, fault in _COUNTERS.items():
                if getattr(self.knobs, counter) > 0:
                    setattr(self.knobs, counter, getattr(self.knobs, counter) - 1)
                    return fault, self._rng.random()
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
