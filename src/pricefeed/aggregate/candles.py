"""Parse one raw envelope (bytes) into validated, columnar 1-minute candles, one IST day at a time.

This is the hot path of the aggregation job, so it parses with orjson and validates with numpy in
bulk; a per-row Python loop runs only when a response holds something numpy cannot take as a
plain number matrix (ragged rows, strings, nulls, booleans).

Every candle of a response either comes out as a row or is counted under exactly one reason of
:data:`EXCLUSION_REASONS` (checked in that order), so nothing is dropped silently:

- ``malformed_row``: not a list of 6 (or 7, with OI) finite numbers
- ``bad_ts``: ``ts`` is not an integer epoch on a minute boundary
- ``non_positive_price``: open, high, low or close is 0 or negative (Fyers served such prices on ~950 symbol-days)
- ``high_below_open``: high under the open (Fyers' most common defect: ~10,400 symbol-days, ~1,500 ISINs)
- ``invalid_ohlc``: any other broken bar: high < close, low > min(open, close) or low > high
- ``volume_sentinel``: volume of at least 2**32 - 1, a sentinel such as 429496726000 (no minute trades that much)
- ``bad_volume``: volume negative or not an integer
- ``muhurat_late``: a special (Muhurat) session that came stamped 15 minutes late (candles after its close, none in
  its first 15 minutes): all of its candles, since none of their stamps is right and none is moved back silently
- ``out_of_session``: minute outside the instrument's sessions of that IST date (``pricefeed.trading_calendar``:
  NSE cash 09:15-15:29 on a trading day, currency 09:00-16:59, MCX 09:00-23:29 or 23:54, as the symbol master's
  session column says; special sessions such as Muhurat trading; none on a holiday or weekend)
- ``forming``: the minute had not ended at ``fetched_at``, or ends after the envelope's ``range_to``
  (the ingest never asks past the last ended minute, so a minute Fyers sent beyond the range may still
  have been forming when it answered; the next run asks for it again)
- ``duplicate``: an earlier copy of a minute within the same response (the later copy wins)
- ``superseded``: replaced by the same minute from a newer envelope (counted by ``aggregate``)

An envelope may answer a multi-day request (``trading_date`` .. ``last_trading_date``): it is parsed
once (:func:`read_envelope`) and each day takes its own candles (:meth:`Envelope.candles`), by the
IST date of their minute. A candle that cannot be given one of the envelope's dates (unreadable row,
non-finite or out-of-range ``ts``) is accounted for on the envelope's first date only, so every
candle is still counted exactly once across the days.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson

from pricefeed.aggregate.candle_rules import EXCLUSION_REASONS, Held, validate
from pricefeed.errors import InvalidInput
from pricefeed.istime import ist_midnight_epoch
from pricefeed.lake.envelope import (
    RawReference,
    checked_fetch_and_range,
    checked_version_and_symbol,
    is_reference,
    parse_reference,
)
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import DEFAULT_CALENDAR, TradingCalendar

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EMPTY = np.empty((0, 7), dtype=np.float64)
_NUMBER = (int, float)


@dataclass(frozen=True, eq=False)
class EnvelopeCandles:
    """The usable candles of one envelope plus what it said about itself.

    ``ts`` (int64 epoch seconds, minute starts) is sorted and unique; the value columns align with it.
    """

    source: str
    symbol: Symbol
    trading_date: date  # IST
    fetched_at: datetime  # UTC
    received: int  # candles in the response, before any exclusion
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    oi: np.ndarray  # float64 open interest (the 7th value, ``oi_flag=1``); NaN where the candle carried none
    excluded: dict[str, int]
    #: The excluded candles themselves, for the quarantine table (``pricefeed.aggregate.quarantine``).
    held: Held | None = None


@dataclass(frozen=True, eq=False)
class Envelope:
    """One raw envelope parsed once (rows not yet validated); :meth:`candles` takes one IST day out of it."""

    source: str
    symbol: Symbol
    trading_date: date  # IST date of range_from: where the envelope is stored
    last_trading_date: date  # IST date of range_to
    fetched_at: datetime  # UTC
    range_to: int  # the last second asked for
    matrix: np.ndarray  # (n, 7) float64: the rows that are 6 or 7 numbers, in answer order; OI NaN when absent
    malformed: int  # rows that are not
    day_index: np.ndarray  # per matrix row: days after trading_date of its minute, -1 if not one of ours
    unreadable: tuple[str, ...] = ()  # the JSON text of each malformed row (at most 500 characters each)

    def candles(self, trading_date: date | None = None, *, calendar: TradingCalendar | None = None) -> EnvelopeCandles:
        """The validated candles of ``trading_date`` (default: the envelope's first date).

        ``calendar`` decides the day's sessions (default: :data:`pricefeed.trading_calendar.DEFAULT_CALENDAR`).

        ``InvalidInput`` naming the source if the envelope does not cover that date.
        """
        day = self.trading_date if trading_date is None else trading_date
        if not self.trading_date <= day <= self.last_trading_date:
            raise InvalidInput(
                f"raw envelope {self.source} covers {self.trading_date}..{self.last_trading_date}, not {day}"
            )
        offset = (day - self.trading_date).days
        first = offset == 0
        rows = self.day_index == offset
        if first:
            rows |= self.day_index < 0
        matrix = self.matrix if rows.all() else self.matrix[rows]
        excluded = dict.fromkeys(EXCLUSION_REASONS, 0)
        excluded["malformed_row"] = self.malformed if first else 0
        ended_by_us = min((self.fetched_at - _EPOCH) // _MICROSECOND, (self.range_to + 1) * 1_000_000)
        cal = calendar or DEFAULT_CALENDAR
        sessions = cal.session_minutes(day, self.symbol)
        special = cal.special_sessions(day, self.symbol)
        received = len(matrix) + excluded["malformed_row"]  # before _validate counts its non-finite rows
        *columns, held = validate(matrix, sessions, ended_by_us, excluded, special)
        if first and self.unreadable:
            held = Held(held.values, held.rules, self.unreadable)
        held = held if len(held.rules) or held.unreadable else None
        return EnvelopeCandles(self.source, self.symbol, day, self.fetched_at, received, *columns, excluded, held)


def parse_envelope(
    raw: bytes, *, source: str, trading_date: date | None = None, calendar: TradingCalendar | None = None
) -> EnvelopeCandles:
    """Parse and validate one raw envelope's candles of ``trading_date`` (default: its first date).

    ``InvalidInput`` naming ``source`` if it is malformed or does not cover ``trading_date``.
    """
    return read_envelope(raw, source=source).candles(trading_date, calendar=calendar)


def read_envelope(raw: bytes, *, source: str) -> Envelope:
    """Parse one raw envelope once; ``InvalidInput`` naming ``source`` if it is malformed (or a reference)."""
    parsed = read_raw_object(raw, source=source)
    if isinstance(parsed, RawReference):
        raise InvalidInput(f"raw envelope {source}: is a reference to {parsed.ref}, not an envelope")
    return parsed


def read_raw_object(raw: bytes, *, source: str) -> Envelope | RawReference:
    """A raw object of a day's prefix: an envelope, or a reference to one (``pricefeed.lake.envelope``)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses numbers beyond the double range (valid JSON, e.g. 1e400); the stdlib reads them
        # as inf, so such a row counts once as malformed_row instead of failing the whole answer.
        try:
            doc = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the stdlib parser goes
            raise InvalidInput(f"raw envelope {source}: not valid JSON ({exc})") from None
    if is_reference(doc):
        return parse_reference(doc, source=source)
    symbol, first, last, fetched_at, range_to, rows = _read_envelope(doc, source)
    # orjson gives Python lists; numpy turns a homogeneous list of lists into a matrix in one call.
    # Booleans would pass as 0/1 there, so a document that mentions them takes the checked path.
    matrix, malformed, unreadable = _number_matrix(rows, checked=b"true" in raw or b"false" in raw)
    day_index = _day_index(matrix, first, last)
    return Envelope(source, symbol, first, last, fetched_at, range_to, matrix, malformed, day_index, unreadable)


def _day_index(matrix: np.ndarray, first: date, last: date) -> np.ndarray:
    """Days after ``first`` (IST) of each row's minute; -1 where that is not a date of first..last."""
    if first == last or not len(matrix):  # one-day envelope: every row is that day's
        return np.zeros(len(matrix), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        days = np.floor((matrix[:, 0] - ist_midnight_epoch(first)) / 86_400)  # IST has no DST
        dated = np.isfinite(days) & (days >= 0) & (days <= (last - first).days)
    return np.where(dated, days, -1).astype(np.int64)


def _read_envelope(doc: object, source: str) -> tuple[str, date, date, datetime, int, list]:
    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"raw envelope {source}: {what}")

    if not isinstance(doc, dict):
        raise bad("top level is not a JSON object")
    symbol = checked_version_and_symbol(doc, bad)
    if doc.get("resolution") != "1":
        raise bad(f"resolution {doc.get('resolution')!r} is not '1' (one-minute candles)")
    try:
        trading_date = date.fromisoformat(doc["trading_date"])
        fetched_at = datetime.fromisoformat(doc["fetched_at"])
        last_trading_date = date.fromisoformat(doc.get("last_trading_date") or doc["trading_date"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"trading_date/last_trading_date/fetched_at missing or not ISO-8601 ({exc})") from None
    if last_trading_date < trading_date:
        raise bad(f"last_trading_date {last_trading_date} is before trading_date {trading_date}")
    fetched_at, _, range_to = checked_fetch_and_range(doc, fetched_at, bad)
    if doc.get("http_status") != 200:
        raise bad(f"http_status {doc.get('http_status')!r} is not 200")
    response = doc.get("response")
    if not isinstance(response, dict) or response.get("s") not in ("ok", "no_data"):
        status = response.get("s") if isinstance(response, dict) else response
        raise bad(f"response status {status!r} is neither 'ok' nor 'no_data'")
    rows = response.get("candles")
    if response["s"] == "no_data" and not isinstance(rows, list):  # absent, null, ...: no candles (as the client)
        rows = []
    if not isinstance(rows, list):
        raise bad("response.candles is missing or not a list")
    return symbol, trading_date, last_trading_date, fetched_at, range_to, rows


def _number_matrix(rows: list, *, checked: bool) -> tuple[np.ndarray, int, tuple[str, ...]]:
    """An (n, 7) float64 matrix of the well-formed rows (open interest last, NaN when a row has none or it is not
    a number), how many rows were malformed, and their JSON text."""
    if not rows:
        return _EMPTY, 0, ()
    if not checked:
        try:
            matrix = np.array(rows)
        except (ValueError, TypeError):  # ragged rows: some carry OI, some do not
            matrix = None
        if matrix is not None and matrix.ndim == 2 and matrix.shape[1] in (6, 7) and matrix.dtype.kind in "if":
            out = np.full((len(matrix), 7), np.nan)
            out[:, : matrix.shape[1]] = matrix
            return out, 0, ()
    good, bad = [], []
    for row in rows:
        if (
            type(row) is list
            and len(row) in (6, 7)
            and all(type(x) in _NUMBER for x in row[:6])  # type(): bool is an int subclass
        ):
            try:
                oi = float(row[6]) if len(row) == 7 and type(row[6]) in _NUMBER else np.nan
                good.append([*(float(x) for x in row[:6]), oi])
                continue
            except OverflowError:
                pass
        bad.append(_text(row))
    if not good:
        return _EMPTY, len(rows), tuple(bad)
    return np.array(good, dtype=np.float64), len(rows) - len(good), tuple(bad)


def _text(row: object) -> str:
    """A malformed row as JSON text (what Fyers sent, as far as JSON says it), at most 500 characters."""
    try:
        return json.dumps(row, default=repr)[:500]
    except (ValueError, TypeError, RecursionError):
        return repr(row)[:500]
