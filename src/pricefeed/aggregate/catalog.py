"""Register exactly the partitions the aggregation job wrote, through the Glue API (MSCK REPAIR is slow).

The job lists its partitions one a line in a JSON Lines object per table (``paths.partitions_key``; the result
names them under ``partition_lists``; older results held one ``partitions`` list, each entry naming its table or,
without one, a bar partition). :func:`register_result` registers them 100 at a time (BatchGetPartition and
BatchCreatePartition take at most 100), reading each list as a stream, so its memory stays flat however large the
run: a partition already registered at another location (the coverage ledger moved out of ``processed/``) is
pointed at the new one; one registered where it should be is left alone.

A table with partition projection (``projection.enabled``: the per-symbol-day tables ``bars`` and ``coverage`` in
template.yaml) gets no partitions: Athena computes them from the table's rules and ignores registered ones. Its
list is not even read; its count is reported as ``projected``. So a run registers its handful of monthly
partitions (``bars_monthly``, ``coverage_monthly``) and nothing else, whatever its size.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator

from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import BARS_TABLE

BATCH = 100  # BatchGetPartition / BatchCreatePartition / BatchUpdatePartition take at most 100 entries
_COUNTED = ("registered", "already_registered", "moved", "projected")


def read_job_result(s3, bucket: str, key: str) -> dict:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} does not exist") from None
    try:
        result = json.loads(body)
    except ValueError:
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} is not JSON") from None
    lists = result.get("partition_lists") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not (isinstance(lists, dict) or isinstance(result.get("partitions"), list)):
        raise InvalidInput(f"aggregation result s3://{bucket}/{key} names no partitions (no 'partition_lists')")
    return result


def job_partitions(s3, bucket: str, result: dict, tables: Iterable[str] | None = None) -> Iterator[dict]:
    """The partitions a job result names (of ``tables`` only, when given), streamed from its JSON Lines lists."""
    wanted = None if tables is None else set(tables)
    lists = result.get("partition_lists")
    if not isinstance(lists, dict):  # an older result: one list in the document
        for p in result.get("partitions") or []:
            if wanted is None or (p.get("table", BARS_TABLE) if isinstance(p, dict) else None) in wanted:
                yield p
        return
    for table, key in lists.items():
        if wanted is None or table in wanted:
            yield from _json_lines(s3, bucket, key)


def _json_lines(s3, bucket: str, key: str) -> Iterator[dict]:
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for line in body.iter_lines():  # a stream: the list is never held whole
            if line.strip():
                yield json.loads(line)
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"partition list s3://{bucket}/{key} does not exist") from None
    except ValueError:
        raise InvalidInput(f"partition list s3://{bucket}/{key} has a line that is not JSON") from None


def register_result(glue, s3, bucket: str, result: dict, *, database: str, tables: dict[str, str]) -> dict:
    """Register the partitions of a job result (``tables``: result table name -> Glue table name).

    A projected table's list is not read: its entries are counted from ``partition_counts``. Returns what
    :func:`register_job_partitions` returns.
    """
    if not isinstance(result.get("partition_lists"), dict):  # an older result: one list in the document
        everything = job_partitions(s3, bucket, result)
        return register_job_partitions(glue, database=database, tables=tables, partitions=everything)
    registrars = {name: _Registrar(glue, database, glue_name) for name, glue_name in tables.items()}
    counts = {name: int((result.get("partition_counts") or {}).get(name) or 0) for name in tables}
    busy = [name for name in tables if counts[name] > 0]  # a table the run wrote nothing of is not even read
    for name in busy:
        registrars[name].describe()
        if registrars[name].projected:
            registrars[name].seen, registrars[name].counts["projected"] = True, counts[name]
    read = [name for name in busy if not registrars[name].projected]
    partitions = job_partitions(s3, bucket, result, read)
    return register_job_partitions(glue, database=database, tables=tables, partitions=partitions, registrars=registrars)


def register_job_partitions(
    glue, *, database: str, tables: dict[str, str], partitions: Iterable[dict], registrars: dict | None = None
) -> dict:
    """Register the partitions, each in the Glue table its ``table`` names (``tables``: name -> Glue name).

    Returns the totals ``{"registered", "already_registered", "moved", "projected"}`` and the same per result
    table under ``"tables"``; ``InvalidInput`` for an entry whose table is not in ``tables`` (batches before it
    stay registered: registering is idempotent, so a rerun after the fix completes the rest).
    """
    registrars = registrars or {name: _Registrar(glue, database, glue_name) for name, glue_name in tables.items()}
    for p in partitions:
        name = p.get("table", BARS_TABLE) if isinstance(p, dict) else None
        if name not in registrars:
            raise InvalidInput(f"partition entry {p!r} names no known table ({', '.join(tables)})")
        registrars[name].add(p)
    per_table = {name: r.finish() for name, r in registrars.items() if r.seen}
    totals = {k: sum(t[k] for t in per_table.values()) for k in _COUNTED}
    return {**totals, "tables": per_table}


class _Registrar:
    """Registers one table's partitions a batch of 100 at a time (the table is read once, on the first entry)."""

    def __init__(self, glue, database: str, table: str) -> None:
        self.glue, self.database, self.table = glue, database, table
        self.template: dict | None = None
        self.keys: list[str] = []
        self.pending: dict[tuple[str, ...], str] = {}
        self.counts = dict.fromkeys(_COUNTED, 0)
        self.seen = self.projected = False

    def describe(self) -> None:
        """Read the table once: its storage template, partition keys, projection."""
        if self.template is None:
            described = self.glue.get_table(DatabaseName=self.database, Name=self.table)["Table"]
            self.template = described["StorageDescriptor"]
            self.keys = [k["Name"] for k in described.get("PartitionKeys", [])]
            self.projected = str(described.get("Parameters", {}).get("projection.enabled", "")).lower() == "true"

    def add(self, p: dict) -> None:
        self.describe()
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
