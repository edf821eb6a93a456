"""A local mirror of a stack's lake, in the layout of an export (``<dir>/processed/<key>``, ``<dir>/raw/<key>``),
so `pricefeed query` and `pricefeed report` read a running or deployed stack with the same code as an export.

Incremental: an object is downloaded only when its ETag changed; a local file whose object is gone (a
partition rewritten under a new file name) is removed, so the mirror never shows a bar twice. Each file is
written to a temporary name and renamed, so an interrupted sync leaves whole files only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: What the query and the report read: the processed bucket's tables, the raw bucket's dead letters.
PROCESSED_PREFIXES = ("processed/",)
RAW_PREFIXES = ("ohlcv/errors/",)
INDEX = ".mirror.json"


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
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    local = f"{kind}/{obj['Key']}"
                    if ".." in Path(local).parts:
                        continue  # a key that would leave the mirror is never written
                    wanted[local] = (bucket, obj["Key"], obj["ETag"])
    counts = {"downloaded": 0, "removed": 0, "unchanged": 0}
    todo = [p for p, (_, _, etag) in wanted.items() if index.get(p) != etag or not (directory / p).exists()]
    counts["unchanged"] = len(wanted) - len(todo)
    try:
        for n, local in enumerate(todo, 1):
            bucket, key, etag = wanted[local]
            target = directory / local
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            s3.download_file(bucket, key, str(partial))
            os.replace(partial, target)
            index[local] = etag
            counts["downloaded"] += 1
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
