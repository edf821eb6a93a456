"""Raw objects: a Fyers answer stored byte-for-byte in an envelope, and references to it.

Raw is never rewritten, so any processed partition can be rebuilt from it without calling Fyers again.
One request = one envelope, stored under the IST date of its ``range_from``. An answer covering
several IST dates also gets a small *reference* object under each further date (same file name),
so listing any day's raw prefix finds every answer that covers that day.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import raw_symbol_prefix
from pricefeed.symbol import Symbol

ENVELOPE_VERSION = 1


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_envelope(
    *,
    symbol: Symbol,
    resolution: str,
    range_from: int,
    range_to: int,
    trading_date: date,
    fetched_at: datetime,
    http_status: int,
    body: bytes,
    last_trading_date: date | None = None,
) -> bytes:
    """The envelope as JSON bytes; ``body`` (the HTTP body, already known to be JSON) is spliced in verbatim.

    ``trading_date`` is the IST date of ``range_from`` (where the envelope is stored) and
    ``last_trading_date`` the IST date of ``range_to`` (defaults to ``trading_date``: a one-day answer).
    """
    last = last_trading_date or trading_date
    if last < trading_date:
        raise InvalidInput(f"last_trading_date {last} is before trading_date {trading_date}")
    head = {
        "envelope_version": ENVELOPE_VERSION,
        "symbol": str(symbol),
        "resolution": resolution,
        "range_from": range_from,
        "range_to": range_to,
        "trading_date": trading_date.isoformat(),
        "last_trading_date": last.isoformat(),
        "fetched_at": iso_utc(fetched_at),
        "http_status": http_status,
    }
    prefix = json.dumps(head, separators=(",", ":"))[:-1].encode()
    return prefix + b',"response":' + body.strip() + b"}"


@dataclass(frozen=True)
class RawReference:
    """A pointer, stored under ``trading_date``, to the envelope (``ref``, a key) whose range covers that date."""

    ref: str
    symbol: Symbol
    trading_date: date
    range_from: int
    range_to: int
    fetched_at: datetime


def build_reference(
    *, envelope_key: str, symbol: Symbol, trading_date: date, range_from: int, range_to: int, fetched_at: datetime
) -> bytes:
    """The reference object as JSON bytes (a few hundred bytes)."""
    return json.dumps(
        {
            "envelope_version": ENVELOPE_VERSION,
            "ref": envelope_key,
            "symbol": str(symbol),
            "trading_date": trading_date.isoformat(),
            "range_from": range_from,
            "range_to": range_to,
            "fetched_at": iso_utc(fetched_at),
        },
        separators=(",", ":"),
    ).encode()


def is_reference(doc: object) -> bool:
    """Whether a parsed raw object is a reference (it names a ``ref`` and holds no ``response``)."""
    return isinstance(doc, dict) and "ref" in doc and "response" not in doc


def parse_reference(doc: object, *, source: str) -> RawReference:
    """Validate a parsed reference object; ``InvalidInput`` naming ``source`` if it is malformed.

    The referenced key must lie under the same symbol's raw prefix (a reference never leaves its symbol).
    """

    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"raw reference {source}: {what}")

    if not is_reference(doc):
        raise bad("is not a reference object")
    symbol, ref = checked_version_and_symbol(doc, bad), doc.get("ref")
    if (
        not isinstance(ref, str)
        or not ref.startswith(raw_symbol_prefix(symbol))
        or not ref.endswith(".json")
        or any(part in ("", ".", "..") for part in ref.split("/"))
    ):
        raise bad(f"ref {ref!r} is not a raw envelope key of {symbol}")
    try:
        trading_date = date.fromisoformat(doc["trading_date"])
        fetched_at = datetime.fromisoformat(doc["fetched_at"])
    except (KeyError, TypeError, ValueError) as exc:
        raise bad(f"trading_date/fetched_at missing or not ISO-8601 ({exc})") from None
    fetched_at, range_from, range_to = checked_fetch_and_range(doc, fetched_at, bad)
    return RawReference(ref, symbol, trading_date, range_from, range_to, fetched_at)


# The header fields an envelope and a reference share, checked in one place (the aggregation's envelope
# parser, pricefeed.aggregate.candles, uses them too). ``bad`` makes the error naming the object.


def checked_version_and_symbol(doc: dict, bad: Callable[[str], InvalidInput]) -> Symbol:
    """The document's symbol, once its ``envelope_version`` is this format's and the symbol is well formed."""
    version = doc.get("envelope_version")
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise bad(f"envelope_version {version!r} is not {ENVELOPE_VERSION}")
    try:
        return Symbol.parse(doc.get("symbol"))
    except InvalidInput as exc:
        raise bad(str(exc)) from None


def checked_fetch_and_range(
    doc: dict, fetched_at: datetime, bad: Callable[[str], InvalidInput]
) -> tuple[datetime, int, int]:
    """``fetched_at`` in UTC (it must name its zone) and the ordered epoch range the request asked."""
    if fetched_at.utcoffset() is None:
        raise bad(f"fetched_at {doc['fetched_at']!r} has no time zone")
    try:
        fetched_at = fetched_at.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+05:00 is before datetime.min in UTC
        raise bad(f"fetched_at {doc['fetched_at']!r} is out of range") from None
    range_from, range_to = doc.get("range_from"), doc.get("range_to")
    if type(range_from) is not int or type(range_to) is not int or range_from > range_to:
        raise bad(f"range {range_from!r}..{range_to!r} is not two ordered epoch seconds")
    return fetched_at, range_from, range_to
