"""Per-symbol settled state in the state table: the frontier and the open stretches of :mod:`.settled`.

One DynamoDB item per symbol, ``pk = "watermark#<EXCH:SYMBOL>"``, holding ``covered_through`` (the
frontier, epoch seconds), ``open`` (the open stretches as compact JSON), ``version`` (optimistic
concurrency), ``updated_at`` (ISO-8601 UTC) and ``raw_key`` (the envelope of the last change). Items
written before open stretches existed (no ``version``) read as a frontier with nothing open.

Every change is read → compute → conditional put on the same ``version``: two ingests of one symbol at
once (a scheduled run and a backfill) both land, each applied to the other's result.

boto3 is synchronous: call these methods through ``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from pricefeed.errors import TransientStorageError
from pricefeed.ingest.settled import Settled
from pricefeed.symbol import Symbol

PK_PREFIX = "watermark#"
#: Lost races before giving up (each means another ingest of the symbol changed it meanwhile).
MAX_CONFLICTS = 20


def watermark_pk(symbol: Symbol) -> str:
    """``Symbol("NSE", "SBIN-EQ")`` -> ``"watermark#NSE:SBIN-EQ"``."""
    return f"{PK_PREFIX}{symbol}"


class Watermarks:
    """Read and change per-symbol settled state in the state table (``dynamodb_client``: a boto3 client)."""

    def __init__(self, dynamodb_client, table_name: str, *, clock: Callable[[], float] = time.time):
        self._db = dynamodb_client
        self._table = table_name
        self._clock = clock

    def get(self, symbol: Symbol) -> int | None:
        """The frontier of ``symbol`` (epoch seconds), or ``None`` if nothing is stored yet."""
        return self.load(symbol).through

    def load(self, symbol: Symbol) -> Settled:
        """``symbol``'s settled state (empty before its first answer)."""
        return self._read(symbol)[0]

    def update(self, symbol: Symbol, change: Callable[[Settled], Settled], raw_key: str) -> Settled:
        """Apply ``change`` to the stored state and store the result; returns it. ``raw_key`` names the
        envelope that caused it. An unchanged state writes nothing."""
        for _ in range(MAX_CONFLICTS):
            current, version = self._read(symbol)
            new = change(current)
            if new == current:
                return current
            if self._put(symbol, new, version, raw_key):
                return new
        raise TransientStorageError(f"watermark of {symbol}: {MAX_CONFLICTS} concurrent changes in a row")

    def _read(self, symbol: Symbol) -> tuple[Settled, int]:
        item = self._db.get_item(
            TableName=self._table,
            Key={"pk": {"S": watermark_pk(symbol)}},
            ConsistentRead=True,  # a run must see what the previous run wrote
        ).get("Item")
        if not item or "covered_through" not in item:
            return Settled(), 0
        state = Settled.from_item(int(item["covered_through"]["N"]), item.get("open", {}).get("S"))
        return state, int(item.get("version", {}).get("N", "0"))

    def _put(self, symbol: Symbol, state: Settled, version: int, raw_key: str) -> bool:
        updated_at = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        item = {
            "pk": {"S": watermark_pk(symbol)},
            "covered_through": {"N": str(int(state.through))},
            "open": {"S": state.open_json()},
            "version": {"N": str(version + 1)},
            "updated_at": {"S": updated_at},
            "raw_key": {"S": raw_key},
        }
        if version == 0:
            condition: dict = {"ConditionExpression": "attribute_not_exists(#v)"}
        else:
            condition = {"ConditionExpression": "#v = :v", "ExpressionAttributeValues": {":v": {"N": str(version)}}}
        try:
            self._db.put_item(TableName=self._table, Item=item, ExpressionAttributeNames={"#v": "version"}, **condition)
        except self._db.exceptions.ConditionalCheckFailedException:
            return False
        return True
