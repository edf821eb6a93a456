"""Fyers answers for fakes that stand in for the client at the network boundary: the client's own result type."""

from __future__ import annotations

import json
from datetime import datetime

from pricefeed.fyers.client import HistoryResponse


def history_answer(symbol: str, range_from: int, range_to: int, candles: list, fetched_at: datetime) -> HistoryResponse:
    """A 200 ``/data/history`` answer holding ``candles`` (``no_data`` when none), as the client returns it."""
    payload = {"s": "ok", "code": 200, "message": "", "candles": candles} if candles else {"s": "no_data"}
    return HistoryResponse(
        symbol, "1", range_from, range_to, 200, json.dumps(payload).encode(), payload, candles, fetched_at
    )
