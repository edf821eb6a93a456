"""Register exactly the partitions the aggregation job wrote, through the Glue API (MSCK REPAIR is slow).

The job's result names each partition's table (``"table": "bars"`` or ``"coverage"``; an entry without
one is a bar partition, as older results wrote them); :func:`register_job_partitions` maps those names to
the deployed Glue tables and registers each table's partitions in batches of 100, idempotently.
"""

from __future__ import annotations

import copy
import json

from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import BARS_TABLE

_BATCH = 100  # BatchCreatePartition / BatchGetPartition take at most 100 entries


def read_job_result(s3, bucket: str, key: str) -> dict:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} does not exist") from None
    try:
        result = json.loads(body)
    except ValueError:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} is not JSON") from None
    if not isinstance(result, dict) or not isinstance(result.get("partitions"), list):
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} has no 'partitions' list")
    return result


def register_job_partitions(glue, *, database: str, tables: dict[str, str], partitions: list[dict]) -> dict:
    """Register the result's partitions, each in the Glue table its ``table`` names (``tables``: name -> Glue name).

    Returns the totals ``{"registered", "already_registered"}`` and the same per result table under ``"tables"``;
    ``InvalidInput`` for an entry whose table is not in ``tables``.
    """
    grouped: dict[str, list[dict]] = {name: [] for name in tables}
    for p in partitions:
        name = p.get("table", BARS_TABLE) if isinstance(p, dict) else None
        if name not in tables:
            raise InvalidInput(f"partition entry {p!r} names no known table ({', '.join(tables)})")
        grouped[name].append(p)
    per_table = {
        name: register_partitions(glue, database=database, table=tables[name], partitions=entries)
        for name, entries in grouped.items()
        if entries
    }
    return {
        "registered": sum(t["registered"] for t in per_table.values()),
        "already_registered": sum(t["already_registered"] for t in per_table.values()),
        "tables": per_table,
    }


def register_partitions(glue, *, database: str, table: str, partitions: list[dict]) -> dict:
    """Create the missing partitions of one table; existing ones are left as they are (same location by construction).

    Each entry carries a value for each of the table's partition keys (read from Glue) and a ``location``.
    """
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    template = described["StorageDescriptor"]
    partition_keys = [k["Name"] for k in described.get("PartitionKeys", [])]
    wanted: dict[tuple[str, ...], str] = {}
    for p in partitions:
        try:
            values = tuple(str(p[k]) for k in partition_keys)
            location = str(p["location"])
        except KeyError as missing:
            raise InvalidInput(f"partition entry lacks {missing}") from None
        wanted[values] = location
    keys = list(wanted)
    existing: set[tuple[str, ...]] = set()
    for i in range(0, len(keys), _BATCH):
        got = glue.batch_get_partition(
            DatabaseName=database,
            TableName=table,
            PartitionsToGet=[{"Values": list(v)} for v in keys[i : i + _BATCH]],
        )
        existing.update(tuple(p["Values"]) for p in got.get("Partitions", []))
    missing = [v for v in keys if v not in existing]
    errors: list[dict] = []
    for i in range(0, len(missing), _BATCH):
        inputs = []
        for values in missing[i : i + _BATCH]:
            descriptor = copy.deepcopy(template)
            descriptor["Location"] = wanted[values]
            inputs.append({"Values": list(values), "StorageDescriptor": descriptor})
        answer = glue.batch_create_partition(DatabaseName=database, TableName=table, PartitionInputList=inputs)
        errors.extend(
            e for e in answer.get("Errors", []) if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
        )
    if errors:
        raise RuntimeError(f"Glue refused {len(errors)} partition(s): {errors[0].get('ErrorDetail')}")
    return {"registered": len(missing), "already_registered": len(existing)}
