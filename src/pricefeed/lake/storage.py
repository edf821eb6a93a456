"""S3 access for the lake: list and read raw objects, write Parquet partitions without stale files.

A thin adapter around a boto3 S3 client (thread-safe, so callers may share one across a pool).
Parquet bytes are deterministic: the writer options are pinned and pyarrow stamps no wall-clock
time into the file, so the same table always gives the same bytes (reruns are byte-identical).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future

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


class Listings:
    """Keys under a partition's prefix from one LIST of its parent folder, shared by a job's threads.

    A job builds a symbol's days together (``work_from_manifests``), and a day's partition sits in its month's
    folder, so one LIST of the month answers every day of it: a backfill lists each table's folder once a
    symbol-month instead of once a symbol-day. A listing is as of the first ask; use it only for what existed
    before the job (stale files, raw that was there when the job started): keys the job writes itself are known
    to it, and raw that lands later is what a fresh ``list_keys`` is for. At most ``capacity`` folders are kept.
    """

    def __init__(self, s3, bucket: str, *, capacity: int = 256):
        self._s3, self.bucket, self._capacity = s3, bucket, capacity
        self._lock = threading.Lock()
        self._folders: OrderedDict[str, Future] = OrderedDict()
        self.lists = 0  # LISTs made (for tests and the benchmark)

    def under(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (ending with ``/``) as its parent folder was listed, sorted."""
        parent = prefix.rstrip("/").rpartition("/")[0] + "/"
        with self._lock:
            future = self._folders.get(parent)
            owner = future is None
            if owner:
                future = self._folders[parent] = Future()
                self.lists += 1
                while len(self._folders) > self._capacity:
                    self._folders.popitem(last=False)
            else:
                self._folders.move_to_end(parent)
        if owner:
            try:
                future.set_result(list_keys(self._s3, self.bucket, parent))
            except BaseException as exc:
                with self._lock:
                    self._folders.pop(parent, None)  # the next ask lists again
                future.set_exception(exc)
                raise
        return [k for k in future.result() if k.startswith(prefix)]


def read_bytes(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def parquet_bytes(table: pa.Table) -> bytes:
    """``table`` as one Parquet file (snappy, one row group, pinned options, deterministic)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **_PARQUET_OPTIONS)
    return sink.getvalue().to_pybytes()


def replace_partition(
    s3, bucket: str, prefix: str, key: str, table: pa.Table, *, listings: Listings | None = None
) -> list[str]:
    """Write ``table`` to ``key`` and then delete every other object under ``prefix``.

    Writing first means a reader never finds the partition empty. Returns the deleted keys. ``listings``
    (of ``bucket``) answers what else is under ``prefix`` without a LIST of its own.
    """
    s3.put_object(Bucket=bucket, Key=key, Body=parquet_bytes(table), ContentType=PARQUET_CONTENT_TYPE)
    existing = listings.under(prefix) if listings is not None else list_keys(s3, bucket, prefix)
    stale = [k for k in existing if k != key]
    delete_keys(s3, bucket, stale)
    return stale


def clear_prefix(s3, bucket: str, prefix: str, *, listings: Listings | None = None) -> list[str]:
    """Delete every object under ``prefix``; returns the deleted keys (``listings`` as in ``replace_partition``)."""
    stale = listings.under(prefix) if listings is not None else list_keys(s3, bucket, prefix)
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
