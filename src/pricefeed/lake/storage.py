"""S3 access for the lake: list and read raw objects, write Parquet partitions without stale files.

A thin adapter around a boto3 S3 client (thread-safe, so callers may share one across a pool).
Parquet bytes are deterministic: the writer options are pinned and pyarrow stamps no wall-clock
time into the file, so the same table always gives the same bytes (reruns are byte-identical).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pricefeed.errors import PricefeedError

PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"
_DELETE_BATCH = 1000  # the DeleteObjects limit
# Pinned so an upgrade of pyarrow's defaults cannot silently change the files.
_PARQUET_OPTIONS = {
    "compression": "snappy",
    "version": "2.6",
    "data_page_version": "1.0",
    "use_dictionary": True,
    "write_statistics": True,
    "store_schema": True,
    "write_page_index": False,
    "row_group_size": 1 << 20,  # one row group: a partition is one symbol-day
}


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    """Every key under ``prefix``, sorted."""
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", ()))
    return sorted(keys)


def read_bytes(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file (snappy, one row group, pinned options, deterministic)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    return sink.getvalue().to_pybytes()


def replace_partition(s3, bucket: str, prefix: str, key: str, table: pa.Table) -> list[str]:
    """Write ``table`` to ``key`` and then delete every other object under ``prefix``.

    Writing first means a reader never finds the partition empty. Returns the deleted keys.
    """
    s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(table), ContentType=PARQUET_CONTENT_TYPE)
    stale = [k for k in list_keys(s3, bucket, prefix) if k != key]
    delete_keys(s3, bucket, stale)
    return stale


def clear_prefix(s3, bucket: str, prefix: str) -> list[str]:
    """Delete every object under ``prefix``; returns the deleted keys."""
    stale = list_keys(s3, bucket, prefix)
    delete_keys(s3, bucket, stale)
    return stale


def delete_keys(s3, bucket: str, keys: Iterable[str]) -> None:
    """Delete ``keys`` in DeleteObjects batches; raises if S3 reports any key it could not delete."""
    keys = list(keys)
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = [{"Key": k} for k in keys[start : start + _DELETE_BATCH]]
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise PricefeedError(
                f"could not delete {len(answer['Errors'])} object(s) from s3://{bucket}, "
                f"first {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
            )


def write_json(s3, bucket: str, key: str, document: object) -> None:
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def write_json_lines(s3, bucket: str, key: str, records: Iterable[object]) -> int:
    """Write ``records`` as JSON Lines (one compact object a line); returns how many."""
    lines = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records]
    s3.put_object(Bucket=bucket, Key=key, Body=b"".join(line + b"\n" for line in lines),
                  ContentType="application/x-ndjson")
    return len(lines)
