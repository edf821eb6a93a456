"""The token-refresh lease: one item in the state table (``lock#token-refresh#<app_id>``) that lets exactly one
worker refresh an expired access token while the others wait (``pricefeed.auth.keeper``).

The item also remembers, by fingerprint (never the token), which access token was replaced, or why its refresh
failed (the error's type and message): a late or stale reader neither refreshes twice nor asks Fyers again for a
refresh it refused. The record outlives the lease by :data:`RECORD_TTL_S`.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pricefeed import errors
from pricefeed.errors import FyersError, PricefeedError

log = logging.getLogger(__name__)

LOCK_PREFIX = "lock#token-refresh#"
#: How long the lease item (with its "replaced"/"failed" record) is kept after the lease ends.
RECORD_TTL_S = 86_400


def fingerprint(token: str) -> str:
    """A short one-way name for a token: safe to store and log, enough to tell two tokens apart."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def shared_error(lease: dict) -> PricefeedError:
    """The named error another worker's refresh ended with, as recorded on the lease item."""
    cls = getattr(errors, lease.get("error_type", {}).get("S", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, PricefeedError)):
        cls = FyersError
    return cls(f"token refresh failed in another worker: {lease.get('error_message', {}).get('S', '')}")


class RefreshLease:
    """The lease item of one app. ``clock``: epoch seconds; ``lease_s``: how long one holder may keep it."""

    def __init__(self, dynamodb_client: Any, table_name: str, app_id: str, *, clock: Callable[[], float],
                 lease_s: float):
        self._dynamodb, self._table, self._clock, self._lease_s = dynamodb_client, table_name, clock, lease_s
        self._key = {"pk": {"S": LOCK_PREFIX + app_id}}

    def take(self, failed: str) -> tuple[str, str] | None:
        """``(holder id, lease end)`` if this worker now holds the lease to replace the token ``failed``."""
        holder, now = uuid.uuid4().hex, self._clock()
        until = repr(now + self._lease_s)
        taken = self._put(
            {"holder": {"S": holder}, "lease_until": {"N": until}},
            expires_at=now + self._lease_s + RECORD_TTL_S,
            # free, or the lease ran out, unless that token was already replaced
            condition="attribute_not_exists(pk) OR (lease_until < :now AND "
            "(attribute_not_exists(replaced) OR replaced <> :failed))",
            values={":now": {"N": repr(now)}, ":failed": {"S": failed}},
        )
        return (holder, until) if taken else None

    def read(self) -> dict:
        answer = self._dynamodb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        return answer.get("Item") or {}

    def end(self, lease: tuple[str, str], record: dict, *, keep_lease: bool = False) -> None:
        """Release the lease (or keep it to its end, so a refused refresh is not retried) with ``record``."""
        holder, until = lease[0], lease[1] if keep_lease else "0"
        released = self._put(
            {**record, "holder": {"S": holder}, "lease_until": {"N": until}},
            expires_at=self._clock() + RECORD_TTL_S,
            condition="holder = :me",
            values={":me": {"S": holder}},
        )
        if not released:
            log.warning("token refresh lease was taken over before it was released")

    def record_refusal(self, failed: str, error: PricefeedError) -> None:
        """Record that the token ``failed`` cannot be refreshed (``error`` says why) without taking the lease, unless
        another worker holds it now (its own outcome is recorded when it ends)."""
        now = self._clock()
        self._put(
            {"holder": {"S": "-"}, "lease_until": {"N": "0"}, "failed": {"S": failed},
             "error_type": {"S": type(error).__name__}, "error_message": {"S": str(error)[:500]}},
            expires_at=now + RECORD_TTL_S,
            condition="attribute_not_exists(pk) OR lease_until < :now",
            values={":now": {"N": repr(now)}},
        )

    def _put(self, fields: dict, *, expires_at: float, condition: str, values: dict) -> bool:
        """Write the lease item if ``condition`` holds; ``False`` if another worker's write made it fail."""
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={**self._key, **fields, "expires_at": {"N": str(int(expires_at))}},
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
