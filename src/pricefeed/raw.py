"""The raw envelope: a Fyers answer stored byte-for-byte, wrapped with what was asked and when.

Raw is never rewritten, so any processed partition can be rebuilt from it without calling Fyers again.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

ENVELOPE_VERSION = 1


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_envelope(
    *,
    symbol: str,
    resolution: str,
    range_from: int,
    range_to: int,
    trading_date: date,
    fetched_at: datetime,
    http_status: int,
    body: bytes,
) -> bytes:
    """The envelope as JSON bytes; ``body`` (the HTTP body, already known to be JSON) is spliced in verbatim."""
    head = {
        "envelope_version": ENVELOPE_VERSION,
        "symbol": symbol,
        "resolution": resolution,
        "range_from": range_from,
        "range_to": range_to,
        "trading_date": trading_date.isoformat(),
        "fetched_at": iso_utc(fetched_at),
        "http_status": http_status,
    }
    prefix = json.dumps(head, separators=(",", ":"))[:-1].encode()
    return prefix + b',"response":' + body.strip() + b"}"
