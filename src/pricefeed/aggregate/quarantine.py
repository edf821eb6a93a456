"""The quarantine table: every candle the bars left out, as Fyers sent it, with its rule and its raw object.

One Parquet file per symbol-day (``paths.quarantine_key``, Glue table ``quarantine``, projected like ``coverage``),
rewritten with the day's bars (and removed when a rebuild holds none). A row per excluded candle — broken OHLC,
Fyers' known defects (``non_positive_price``, ``high_below_open``, ``volume_sentinel``), out of session, forming
and the rest of :data:`pricefeed.aggregate.candles.EXCLUSION_REASONS` — except the within-answer duplicates and the
minutes a newer answer superseded (the same minute again, not a defect). Values are as Fyers sent them, as doubles
(a fractional volume, a sentinel, a NaN are what the rule is about); a row that was no list of numbers keeps only
its JSON text in ``raw_row``. ``raw_object`` names the raw envelope, so a person can read the whole answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pyarrow as pa

from pricefeed.aggregate.candles import EXCLUSION_REASONS, EnvelopeCandles

QUARANTINE_SCHEMA = pa.schema(
    [
        ("trade_date", pa.date32()),
        ("rule", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("oi", pa.float64()),
        ("raw_row", pa.string()),
        ("raw_object", pa.string()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
    ]
)
_VALUES = ("ts", "open", "high", "low", "close", "volume", "oi")


def quarantine_table(trading_date: date, envelopes: Iterable[EnvelopeCandles]) -> pa.Table | None:
    """The symbol-day's quarantined candles, oldest answer first; ``None`` when there are none."""
    parts = []
    for env in sorted(envelopes, key=lambda e: (e.fetched_at, e.source)):
        held = env.held
        if held is None:
            continue
        n, unread = len(held.rules), len(held.unreadable)
        columns: dict[str, pa.Array] = {
            "trade_date": pa.array([trading_date] * (n + unread), pa.date32()),
            "rule": pa.array([EXCLUSION_REASONS[r] for r in held.rules] + ["malformed_row"] * unread, pa.string()),
        }
        for i, name in enumerate(_VALUES):
            values = np.concatenate([held.values[:, i], np.full(unread, np.nan)])
            finite = np.isfinite(values)
            if name == "ts":  # epoch seconds -> microseconds; out of range reads as null
                finite &= np.abs(values) < 2.0**62 / 1e6
                micros = np.where(finite, np.round(values * 1e6), 0).astype(np.int64)
                columns[name] = pa.array(micros, pa.timestamp("us", tz="UTC"), mask=~finite)
            else:
                columns[name] = pa.array(np.where(finite, values, 0.0), pa.float64(), mask=~finite)
        columns["raw_row"] = pa.array([None] * n + list(held.unreadable), pa.string())
        columns["raw_object"] = pa.array([env.source] * (n + unread), pa.string())
        columns["fetched_at"] = pa.array([env.fetched_at] * (n + unread), pa.timestamp("us", tz="UTC"))
        parts.append(pa.table(columns, schema=QUARANTINE_SCHEMA))
    return pa.concat_tables(parts) if parts else None
