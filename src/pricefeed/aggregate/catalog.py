"""Register exactly the partitions the aggregation job wrote, through the Glue API (MSCK REPAIR is slow).

The job lists its partitions one a line in a JSON Lines object (``paths.partitions_key``; older results held
them as a ``partitions`` list in the result itself). Each entry names its table (``"table": "bars"`` or
``"coverage"``; an entry without one is a bar partition). :func:`register_job_partitions` reads the entries as a
stream and registers them 100 at a time (BatchGetPartition and BatchCreatePartition take at most 100), so its
memory stays flat however large the run: a partition already registered at another location (the coverage
ledger moved out of ``processed/``) is pointed at the new one; one registered where it should be is left alone.

A table with partition projection (``projection.enabled``: the per-symbol-day tables ``bars`` and ``coverage`` in
template.yaml) gets no partitions: Athena computes them from the table's rules and ignores registered ones. Its
entries are only counted (``projected``). So a run registers a handful of monthly partitions, whatever its size.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator

from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import BARS_TABLE

BATCH = 100  # BatchGetPartition / BatchCreatePartition / BatchUpdatePartition take at most 100 entries


def read_job_result(s3, bucket: str, key: str) -> dict:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} does not exist") from None
    try:
        result = json.loads(body)
    except ValueError:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} is not JSON") from None
    listed = result.get("partitions_key") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not (isinstance(listed, str) or isinstance(result.get("partitions"), list)):
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} names no partitions (no 'partitions_key')")
    return result


def job_partitions(s3, bucket: str, result: dict) -> Iterator[dict]:
    """The partitions a job result names, streamed from its JSON Lines object (or an older result's list)."""
    key = result.get("partitions_key")
    if not isinstance(key, str):
        yield from result.get("partitions") or []
        return
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for line in body.iter_lines():  # a stream: the list is never held whole
            if line.strip():
                yield json.loads(line)
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"partition list s3://{bucket}/{key} does not exist") from None
    except ValueError:
        raise InvalidInput(f"partition list s3://{bucket}/{key} has a line that is not JSON") from None


def register_job_partitions(glue, *, database: str, tables: dict[str, str], partitions: Iterable[dict]) -> dict:
    """Register the partitions, each in the Glue table its ``table`` names (``tables``: name -> Glue name).

    Returns the totals ``{"registered", "already_registered", "moved", "projected"}`` and the same per result
    table under ``"tables"``; ``InvalidInput`` for an entry whose table is not in ``tables`` (batches before it
    stay registered: registering is idempotent, so a rerun after the fix completes the rest).
    """
    registrars = {name: _Registrar(glue, database, glue_name) for name, glue_name in tables.items()}
    for p in partitions:
        name = p.get("table", BARS_TABLE) if isinstance(p, dict) else None
        if name not in registrars:
            raise InvalidInput(f"partition entry {p!r} names no known table ({', '.join(tables)})")
        registrars[name].add(p)
    per_table = {name: r.finish() for name, r in registrars.items() if r.seen}
    counted = ("registered", "already_registered", "moved", "projected")
    totals = {k: sum(t[k] for t in per_table.values()) for k in counted}
    return {**totals, "tables": per_table}


class _Registrar:
    """Registers one table's partitions a batch of 100 at a time (the table is read once, on the first entry)."""

    def __init__(self, glue, database: str, table: str) -> None:
        self.glue, self.database, self.table = glue, database, table
        self.template: dict | None = None
        self.keys: list[str] = []
        self.pending: dict[tuple[str, ...], str] = {}
        self.counts = {"registered": 0, "already_registered": 0, "moved": 0, "projected": 0}
        self.seen = self.projected = False

    def add(self, p: dict) -> None:
        if self.template is None:
            described = self.glue.get_table(DatabaseName=self.database, Name=self.table)["Table"]
            self.template = described["StorageDescriptor"]
            self.keys = [k["Name"] for k in described.get("PartitionKeys", [])]
            self.projected = str(described.get("Parameters", {}).get("projection.enabled", "")).lower() == "true"
        self.seen = True
        if self.projected:
            self.counts["projected"] += 1
            return
        try:
            values = tuple(str(p[k]) for k in self.keys)
            location = str(p["location"])
        except KeyError as missing:
            raise InvalidInput(f"partition entry lacks {missing}") from None
        self.pending[values] = location
        if len(self.pending) >= BATCH:
            self._flush()

    def finish(self) -> dict:
        self._flush()
        return dict(self.counts)

    def _flush(self) -> None:
        if not self.pending:
            return
        wanted, self.pending = self.pending, {}
        got = self.glue.batch_get_partition(
            DatabaseName=self.database, TableName=self.table, PartitionsToGet=[{"Values": list(v)} for v in wanted]
        )
        where = {tuple(p["Values"]): p.get("StorageDescriptor", {}).get("Location") for p in got.get("Partitions", [])}
        missing = [v for v in wanted if v not in where]
        moved = [v for v in wanted if v in where and where[v] != wanted[v]]
        errors: list[dict] = []
        if missing:
            inputs = [{"Values": list(v), "StorageDescriptor": self._descriptor(wanted[v])} for v in missing]
            answer = self.glue.batch_create_partition(
                DatabaseName=self.database, TableName=self.table, PartitionInputList=inputs
            )
            errors += [
                e
                for e in answer.get("Errors", [])
                if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"
            ]
        if moved:
            entries = [
                {
                    "PartitionValueList": list(v),
                    "PartitionInput": {"Values": list(v), "StorageDescriptor": self._descriptor(wanted[v])},
                }
                for v in moved
            ]
            answer = self.glue.batch_update_partition(DatabaseName=self.database, TableName=self.table, Entries=entries)
            errors += answer.get("Errors", [])
        if errors:
            detail = errors[0].get("ErrorDetail") or errors[0]
            raise RuntimeError(f"Glue refused {len(errors)} partition(s) of table {self.table}: {detail}")
        self.counts["registered"] += len(missing)
        self.counts["moved"] += len(moved)
        self.counts["already_registered"] += len(wanted) - len(missing) - len(moved)

    def _descriptor(self, location: str) -> dict:
        descriptor = copy.deepcopy(self.template)
        descriptor["Location"] = location
        return descriptor
