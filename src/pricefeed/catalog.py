"""Register exactly the partitions the aggregation job wrote, through the Glue API (MSCK REPAIR is slow)."""

from __future__ import annotations

import copy
import json

from pricefeed.errors import InvalidInput
from pricefeed.paths import PARTITION_KEYS

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


def register_partitions(glue, *, database: str, table: str, partitions: list[dict]) -> dict:
    """Create the missing partitions; existing ones are left as they are (same location by construction)."""
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    template = described["StorageDescriptor"]
    wanted: dict[tuple[str, ...], str] = {}
    for p in partitions:
        try:
            values = tuple(str(p[k]) for k in PARTITION_KEYS)
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
