"""Helpers for tests on in-process moto: the state table as template.yaml declares it, and atomic calls."""

from __future__ import annotations

import threading
from typing import Any


def create_state_table(dynamodb: Any, name: str) -> None:
    """The state table of template.yaml (``StateTable``): partition key ``pk``, on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


class Serialized:
    """A boto3 client whose calls run one at a time, as DynamoDB and Secrets Manager apply each request
    atomically — in-process moto does not (a conditional put could race another thread's)."""

    _lock = threading.Lock()

    def __init__(self, client: Any):
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            with Serialized._lock:
                return attr(*args, **kwargs)

        return call
