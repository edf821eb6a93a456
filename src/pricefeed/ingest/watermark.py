"""Per-symbol watermark: the last second of minute history already stored raw, in the state table.

One DynamoDB item per symbol, ``pk = "watermark#<EXCH:SYMBOL>"``, holding ``covered_through``
(epoch seconds: the last second the stored answers cover), ``updated_at`` (ISO-8601 UTC) and
``raw_key`` (the envelope that moved it last). A scheduled run asks Fyers only from
``covered_through + 1``. The watermark only moves forward, so a late or repeated writer can
never make a run ask less than it must.

boto3 is synchronous: call these methods through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from pricefeed.symbol import Symbol

PK_PREFIX = "watermark#"


def watermark_pk(symbol: Symbol) -> str:
    """``Symbol("NSE", "SBIN-EQ")`` -> ``"watermark#NSE:SBIN-EQ"``."""
    return f"{PK_PREFIX}{symbol}"


class Watermarks:
    """Read and advance per-symbol watermarks in the state table (``dynamodb_client``: a boto3 client)."""

    def __init__(self, dynamodb_client, table_name: str, *, clock: Callable[[], float] = time.time):
        self._db = dynamodb_client
        self._table = table_name
        self._clock = clock

    def get(self, symbol: Symbol) -> int | None:
        """``covered_through`` of ``symbol`` (epoch seconds), or ``None`` if nothing is stored yet."""
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": watermark_pk(symbol)}},
            ConsistentRead=True,  # a run must see the watermark the previous run wrote
            ProjectionExpression="covered_through",
        ).get("Item")
        if not item or "covered_through" not in item:
            return None
        return int(item["covered_through"]["N"])

    def advance(self, symbol: Symbol, covered_through: int, raw_key: str) -> bool:
        """Move the watermark to ``covered_through`` if that is later; ``True`` if it moved.

        A value at or below the stored one is a no-op (``False``), never an error.
        """
        updated_at = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        try:
            self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": watermark_pk(symbol)}},
                UpdateExpression="SET covered_through = :c, updated_at = :u, raw_key = :k",
                ConditionExpression="attribute_not_exists(covered_through) OR covered_through < :c",
                ExpressionAttributeValues={
                    ":c": {"N": str(int(covered_through))},
                    ":u": {"S": updated_at},
                    ":k": {"S": raw_key},
                },
            )
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
