"""Read one symbol-day's raw answers from S3: its envelopes and the envelopes its references point to.

An answer to a multi-day request is one envelope (under its first IST date) plus a reference under
each further date (``pricefeed.lake.envelope``), so the same large envelope serves many days. An
:class:`EnvelopeCache` shared by a run's worker threads reads and parses each envelope once (while
it stays among the most recently used ``capacity`` envelopes: keep a symbol's days together in the
work order and that is once per run).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from datetime import date

from pricefeed.aggregate.candles import Envelope, EnvelopeCandles, read_raw_object
from pricefeed.errors import InvalidInput
from pricefeed.lake import storage
from pricefeed.lake.envelope import RawReference
from pricefeed.lake.paths import raw_day_prefix
from pricefeed.symbol import Symbol
from pricefeed.trading_calendar import TradingCalendar


class EnvelopeCache:
    """Raw objects by key, parsed once, thread-safe; at most ``capacity`` envelopes kept (LRU).

    Concurrent requests for one key wait for a single read. References are not kept (each is read
    by its own day only). A failed read is not kept either: the next request tries again.
    """

    def __init__(self, s3, bucket: str, *, capacity: int = 32):
        if not isinstance(capacity, int) or capacity < 1:
            raise InvalidInput(f"capacity {capacity!r} must be a positive integer")
        self._s3, self.bucket, self._capacity = s3, bucket, capacity
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, Future] = OrderedDict()
        self.reads = 0  # S3 GETs made (for tests and the run summary)

    def get(self, key: str) -> Envelope | RawReference:
        """The parsed object at ``key``; ``InvalidInput`` naming it if it is missing or malformed."""
        with self._lock:
            future = self._entries.get(key)
            owner = future is None
            if owner:
                future = self._entries[key] = Future()
                self.reads += 1
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)  # a waiter still holds an evicted future
            else:
                self._entries.move_to_end(key)
        if owner:
            try:
                parsed = self._load(key)
            except BaseException as exc:
                self._forget(key, future)
                future.set_exception(exc)
                raise
            if isinstance(parsed, RawReference):
                self._forget(key, future)
            future.set_result(parsed)
        return future.result()

    def _load(self, key: str) -> Envelope | RawReference:
        source = f"s3://{self.bucket}/{key}"
        try:
            body = storage.read_bytes(self._s3, self.bucket, key)
        except self._s3.exceptions.NoSuchKey:
            raise InvalidInput(f"raw object {source} does not exist") from None
        return read_raw_object(body, source=source)

    def _forget(self, key: str, future: Future) -> None:
        with self._lock:
            if self._entries.get(key) is future:
                del self._entries[key]


def raw_day_keys(
    s3, bucket: str, symbol: Symbol, trading_date: date, *, listings: storage.Listings | None = None
) -> list[str]:
    """Keys of every raw object (envelope or reference) under the symbol-day's prefix, sorted (from
    ``listings`` of ``bucket`` when given: as its month was listed, else a LIST now)."""
    prefix = raw_day_prefix(symbol, trading_date)
    listed = listings.under(prefix) if listings is not None else storage.list_keys(s3, bucket, prefix)
    return [k for k in listed if k.rsplit("/", 1)[-1].startswith("ingest-") and k.endswith(".json")]


def day_envelopes(
    cache: EnvelopeCache, keys: list[str], symbol: Symbol, trading_date: date, *,
    calendar: TradingCalendar | None = None,
) -> list[EnvelopeCandles]:
    """The candles of ``trading_date`` from every envelope the day's raw ``keys`` name (each envelope once).

    ``calendar`` decides the day's sessions (``pricefeed.trading_calendar``; default: the package calendar).

    ``InvalidInput`` naming the object if one is malformed, is a reference for another symbol-day, or
    points at something that is not an envelope covering the day.
    """
    envelopes: dict[str, Envelope] = {}
    for key in keys:
        found = cache.get(key)
        if isinstance(found, RawReference):
            if (found.symbol, found.trading_date) != (symbol, trading_date):
                raise InvalidInput(
                    f"raw reference s3://{cache.bucket}/{key} is for {found.symbol} {found.trading_date}, "
                    f"not {symbol} {trading_date}"
                )
            try:
                target = cache.get(found.ref)
            except InvalidInput as exc:
                raise InvalidInput(f"raw reference s3://{cache.bucket}/{key}: {exc}") from None
            if isinstance(target, RawReference):
                raise InvalidInput(f"raw reference s3://{cache.bucket}/{key} points at another reference")
            envelopes.setdefault(found.ref, target)
        else:
            envelopes.setdefault(key, found)
    return [envelope.candles(trading_date, calendar=calendar) for envelope in envelopes.values()]
