"""Helpers for tests on in-process moto: S3 with buckets, the state table as template.yaml declares it, and atomic
calls."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
from moto import mock_aws


def create_state_table(dynamodb: Any, name: str) -> None:
    """The state table of template.yaml (``StateTable``): partition key ``pk``, on demand."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def ingest_stores(region: str, *buckets: str, table: str) -> SimpleNamespace:
    """What an ingest and the job write to, on in-process moto: ``buckets`` and the state table; returns
    ``s3``, ``dynamodb`` and the table's ``watermarks``."""
    from pricefeed.ingest.watermark import Watermarks

    s3 = boto3.client("s3")
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    dynamodb = boto3.client("dynamodb")
    create_state_table(dynamodb, table)
    return SimpleNamespace(s3=s3, dynamodb=dynamodb, watermarks=Watermarks(dynamodb, table))


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


def mocked_s3(monkeypatch: Any, *buckets: str) -> Iterator[Any]:
    """An in-process S3 (test credentials, no endpoint override) holding ``buckets``: a fixture's body."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield client
