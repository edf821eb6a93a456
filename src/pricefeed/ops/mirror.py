"""A local mirror of a stack's lake, in the layout of an export (``<dir>/processed/<key>``, ``<dir>/raw/<key>``),
so `pricefeed query` and `pricefeed report` read a running or deployed stack with the same code as an export.

Incremental: an object is downloaded only when its ETag changed; a local file whose object is gone (a
partition rewritten under a new file name) is removed, so the mirror never shows a bar twice. Each file is
written to a temporary name and renamed, so an interrupted sync leaves whole files only.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import islice
from pathlib import Path
from typing import Any

from pricefeed.lake.paths import BARS_MONTHLY_ROOT, COVERAGE_MONTHLY_ROOT, COVERAGE_ROOT, PROCESSED_ROOT

#: What the query and the report read: the processed bucket's tables, the raw bucket's dead letters.
PROCESSED_PREFIXES = (PROCESSED_ROOT, COVERAGE_ROOT, BARS_MONTHLY_ROOT, COVERAGE_MONTHLY_ROOT)
RAW_PREFIXES = ("ohlcv/errors/",)
INDEX = ".mirror.json"
#: Downloads in flight at once. A lake is many small objects, so round trips, not bandwidth, bound a copy;
#: botocore keeps 10 connections per client, so more threads would only queue for a connection.
DOWNLOADERS = 8

#: One download: (bucket, key, local file).
Job = tuple[str, str, Path]


def local_file(directory: Path, kind: str, key: str) -> Path | None:
    """Where object ``key`` of the ``kind`` ("raw"/"processed") bucket lands under ``directory``, keys kept as
    in S3; ``None`` for a key that would leave ``directory`` and for a folder marker (a key ending in ``/``,
    as the S3 console's "Create folder" makes): neither is written."""
    relative = Path(kind, key)
    return None if ".." in relative.parts or key.endswith("/") else directory / relative


def list_objects(s3: Any, bucket: str, prefix: str = "") -> Iterator[dict]:
    """Every object of ``bucket`` under ``prefix`` (``Key``, ``ETag``, ``Size``, …)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        yield from page.get("Contents", [])


def download_all(s3: Any, jobs: Iterable[Job]) -> Iterator[Job]:
    """Download ``jobs``, :data:`DOWNLOADERS` at a time, yielding each job once its file is whole. Each file is
    written under a temporary name and renamed, so a reader never sees half a file. The first failure stops
    the rest (those not started are cancelled) and is raised."""
    todo = iter(jobs)
    with ThreadPoolExecutor(DOWNLOADERS, thread_name_prefix="lake-download") as pool:
        pending = {pool.submit(_download, s3, job): job for job in islice(todo, 4 * DOWNLOADERS)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    future.result()
                    yield job
                    following = next(todo, None)
                    if following is not None:
                        pending[pool.submit(_download, s3, following)] = following
        finally:
            for future in pending:
                future.cancel()


def _download(s3: Any, job: Job) -> None:
    bucket, key, target = job
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with partial.open("wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)
    finally:
        body.close()
    os.replace(partial, target)


def sync(
    s3: Any,
    *,
    raw_bucket: str,
    processed_bucket: str,
    directory: Path,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Bring ``directory`` up to date with the stack; returns counts ``downloaded``, ``removed``, ``unchanged``."""
    directory.mkdir(parents=True, exist_ok=True)
    index_path = directory / INDEX
    index: dict[str, str] = json.loads(index_path.read_text()) if index_path.exists() else {}
    wanted: dict[str, tuple[str, str, str]] = {}  # local path -> (bucket, key, etag)
    sources = (("processed", processed_bucket, PROCESSED_PREFIXES), ("raw", raw_bucket, RAW_PREFIXES))
    for kind, bucket, prefixes in sources:
        for prefix in prefixes:
            for obj in list_objects(s3, bucket, prefix):
                if local_file(directory, kind, obj["Key"]) is not None:
                    wanted[f"{kind}/{obj['Key']}"] = (bucket, obj["Key"], obj["ETag"])
    counts = {"downloaded": 0, "removed": 0, "unchanged": 0}
    todo = [p for p, (_, _, etag) in wanted.items() if index.get(p) != etag or not (directory / p).exists()]
    counts["unchanged"] = len(wanted) - len(todo)
    jobs = {directory / local: local for local in todo}
    downloads = ((wanted[local][0], wanted[local][1], target) for target, local in jobs.items())
    try:
        for n, (_, _, target) in enumerate(download_all(s3, downloads), 1):
            local = jobs[target]
            index[local] = wanted[local][2]
            counts["downloaded"] = n
            if on_progress:
                on_progress(n, len(todo))
        for local in sorted(set(index) - set(wanted)):
            (directory / local).unlink(missing_ok=True)
            del index[local]
            counts["removed"] += 1
    finally:
        tmp = index_path.with_name(INDEX + ".partial")
        tmp.write_text(json.dumps(index, sort_keys=True))
        os.replace(tmp, index_path)
    return counts
