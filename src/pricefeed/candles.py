"""Parse one raw envelope (bytes) into validated, columnar 1-minute candles.

This is the hot path of the aggregation job, so it parses with orjson and validates with numpy in
bulk; a per-row Python loop runs only when a response holds something numpy cannot take as a
plain number matrix (ragged rows, strings, nulls, booleans).

Every candle of a response either comes out as a row or is counted under exactly one reason of
:data:`EXCLUSION_REASONS` (checked in that order), so nothing is dropped silently:

- ``malformed_row``: not a list of 6 (or 7, with OI) finite numbers
- ``bad_ts``: ``ts`` is not an integer epoch on a minute boundary
- ``invalid_ohlc``: high < max(open, close), low > min(open, close) or low > high
- ``bad_volume``: volume negative or not an integer
- ``out_of_session``: minute outside 09:15-15:29 IST of the envelope's trading date
- ``forming``: the minute had not ended at ``fetched_at``
- ``duplicate``: an earlier copy of a minute within the same response (the later copy wins)
- ``superseded``: replaced by the same minute from a newer envelope (counted by ``aggregate``)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np
import orjson

from pricefeed.errors import InvalidInput
from pricefeed.istime import IST
from pricefeed.paths import split_symbol

SESSION_OPEN = time(9, 15)
SESSION_MINUTES = 375  # 09:15 ... 15:29
ENVELOPE_VERSION = 1
EXCLUSION_REASONS = (
    "malformed_row",
    "bad_ts",
    "invalid_ohlc",
    "bad_volume",
    "out_of_session",
    "forming",
    "duplicate",
    "superseded",
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EMPTY = np.empty((0, 6), dtype=np.float64)
_NUMBER = (int, float)


@dataclass(frozen=True, eq=False)
class EnvelopeCandles:
    """The usable candles of one envelope plus what it said about itself.

    ``ts`` (int64 epoch seconds, minute starts) is sorted and unique; the value columns align with it.
    """

    source: str
    symbol: str  # "NSE:SBIN-EQ"
    trading_date: date  # IST
    fetched_at: datetime  # UTC
    received: int  # candles in the response, before any exclusion
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    excluded: dict[str, int]


def session_open_epoch(trading_date: date) -> int:
    """09:15 IST of ``trading_date`` as UTC epoch seconds: the first minute of the session."""
    return int(datetime.combine(trading_date, SESSION_OPEN, tzinfo=IST).timestamp())


def parse_envelope(raw: bytes, *, source: str) -> EnvelopeCandles:
    """Parse and validate one raw envelope; ``InvalidInput`` naming ``source`` if it is malformed."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"raw envelope {source}: not valid JSON ({exc})") from None
    symbol, trading_date, fetched_at, rows = _read_envelope(doc, source)

    # orjson gives Python lists; numpy turns a homogeneous list of lists into a matrix in one call.
    # Booleans would pass as 0/1 there, so a document that mentions them takes the checked path.
    matrix, malformed = _number_matrix(rows, checked=b"true" in raw or b"false" in raw)
    excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
    excluded["malformed_row"] = malformed
    fetched_us = (fetched_at - _EPOCH) // _MICROSECOND
    columns = _validate(matrix, trading_date, fetched_us, excluded)
    return EnvelopeCandles(source, symbol, trading_date, fetched_at, len(rows), *columns, excluded)


def _read_envelope(doc: object, source: str) -> tuple[str, date, datetime, list]:
    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"raw envelope {source}: {what}")

    if not isinstance(doc, dict):
        raise bad("top level is not a JSON object")
    version = doc.get("envelope_version")
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise bad(f"envelope_version {version!r} is not {ENVELOPE_VERSION}")
    symbol = doc.get("symbol")
    try:
        split_symbol(symbol)
    except InvalidInput as exc:
        raise bad(str(exc)) from None
    if doc.get("resolution") != "1":
        raise bad(f"resolution {doc.get('resolution')!r} is not '1' (one-minute candles)")
    try:
        trading_date = date.fromisoformat(doc["trading_date"])
        fetched_at = datetime.fromisoformat(doc["fetched_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"trading_date/fetched_at missing or not ISO-8601 ({exc})") from None
    if fetched_at.utcoffset() is None:
        raise bad(f"fetched_at {doc['fetched_at']!r} has no time zone")
    if doc.get("http_status") != 200:
        raise bad(f"http_status {doc.get('http_status')!r} is not 200")
    response = doc.get("response")
    if not isinstance(response, dict) or response.get("s") not in ("ok", "no_data"):
        status = response.get("s") if isinstance(response, dict) else response
        raise bad(f"response status {status!r} is neither 'ok' nor 'no_data'")
    rows = response.get("candles", [] if response["s"] == "no_data" else None)
    if not isinstance(rows, list):
        raise bad("response.candles is missing or not a list")
    return symbol, trading_date, fetched_at.astimezone(UTC), rows


def _number_matrix(rows: list, *, checked: bool) -> tuple[np.ndarray, int]:
    """An (n, 6) float64 matrix of the well-formed rows, and how many rows were malformed."""
    if not rows:
        return _EMPTY, 0
    if not checked:
        try:
            matrix = np.array(rows)
        except (ValueError, TypeError):  # ragged rows: some carry OI, some do not
            matrix = None
        if matrix is not None and matrix.ndim == 2 and matrix.shape[1] in (6, 7) and matrix.dtype.kind in "if":
            return np.ascontiguousarray(matrix[:, :6], dtype=np.float64), 0
    good = []
    for row in rows:
        if (
            type(row) is list
            and len(row) in (6, 7)
            and all(type(x) in _NUMBER for x in row[:6])  # type(): bool is an int subclass
        ):
            try:
                good.append([float(x) for x in row[:6]])
            except OverflowError:
                continue
    if not good:
        return _EMPTY, len(rows)
    return np.array(good, dtype=np.float64), len(rows) - len(good)


def _validate(m: np.ndarray, trading_date: date, fetched_us: int, excluded: dict[str, int]) -> tuple[np.ndarray, ...]:
    """Apply the exclusion rules in order, count them, and dedupe (later copy wins)."""
    keep = np.ones(m.shape[0], dtype=bool)
    _exclude(keep, np.isfinite(m).all(axis=1), "malformed_row", excluded)
    m = np.where(keep[:, None], m, 0.0)  # neutral values so the later tests see no NaN/inf
    ts_f, o, h, lo, c, v = m.T
    ts_ok = (ts_f == np.floor(ts_f)) & (ts_f > 0) & (ts_f < 2.0**62) & (ts_f % 60 == 0)
    _exclude(keep, ts_ok, "bad_ts", excluded)
    ohlc_ok = (h >= np.maximum(o, c)) & (lo <= np.minimum(o, c)) & (lo <= h)
    _exclude(keep, ohlc_ok, "invalid_ohlc", excluded)
    _exclude(keep, (v >= 0) & (v == np.floor(v)) & (v < 2.0**63), "bad_volume", excluded)
    ts = np.where(keep, ts_f, 0).astype(np.int64)
    start = session_open_epoch(trading_date)
    _exclude(keep, (ts >= start) & (ts < start + SESSION_MINUTES * 60), "out_of_session", excluded)
    _exclude(keep, (ts + 60) * 1_000_000 <= fetched_us, "forming", excluded)

    rows = np.flatnonzero(keep)
    # np.unique on the reversed order returns each minute's *last* copy, sorted by minute.
    _, first_in_reversed = np.unique(ts[rows][::-1], return_index=True)
    rows = rows[len(rows) - 1 - first_in_reversed]
    excluded["duplicate"] += int(keep.sum() - len(rows))
    return ts[rows], o[rows], h[rows], lo[rows], c[rows], v[rows].astype(np.int64)


def _exclude(keep: np.ndarray, ok: np.ndarray, reason: str, excluded: dict[str, int]) -> None:
    """Count rows still kept that fail ``ok`` under ``reason`` and stop keeping them (in place)."""
    failing = keep & ~ok
    excluded[reason] += int(failing.sum())
    keep &= ok
