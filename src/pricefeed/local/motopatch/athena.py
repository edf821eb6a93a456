"""Athena in the local stack: queries run, in DuckDB, over the tables of the Glue catalog and their files in S3.

moto accepts StartQueryExecution and answers every query with no rows, so `pricefeed query --athena` and any
awswrangler code would "work" against it whatever the SQL or the catalog said. Here a SELECT runs for real and
the answer is served as Athena serves it:

- the tables are the Glue database's (the query's ``QueryExecutionContext.Database``); a table reads its
  registered partitions' locations, or with partition projection every file under its location (a projected
  table's partitions are never registered); a table the query never names is not read;
- columns come back with Athena's type names (``varchar``, ``bigint``, ``double``, ``timestamp``...) in
  GetQueryResults' ``ColumnInfo``, the header and rows as its first page, and the result as Athena's CSV
  (every value quoted, NULL empty) at ``<OutputLocation>/<id>.csv``, which awswrangler reads;
- the output location is the workgroup's when it enforces its configuration (else the request's, else the
  workgroup's); without one StartQueryExecution fails as on AWS;
- a query DuckDB rejects ends FAILED with the reason in ``Status.StateChangeReason``;
- ``Statistics.DataScannedInBytes`` is the size of the files the query's tables hold (Athena reads fewer:
  only the columns and partitions it needs). The workgroup's per-query cutoff is therefore not enforced here.

- a query of a projected table with an ``injected`` key (``symbol``) that does not name it by equality
  (``symbol = '...'``, ``symbol IN (...)``) fails with Athena's CONSTRAINT_VIOLATION (read from the SQL's
  text, not a plan: it catches the forgotten condition, not every disguise of one).

Not modelled: Presto/Trino-only SQL that DuckDB does not take.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path
from typing import Any

from moto.athena import models as athena_models
from moto.athena import responses as athena_responses
from moto.core.exceptions import JsonRESTError
from moto.glue.exceptions import EntityNotFoundException
from moto.glue.models import glue_backends
from moto.s3.models import s3_backends

from pricefeed.local.motopatch.wrapping import wrap_once

#: Glue column types -> DuckDB's, for a table without files (Athena answers it with no rows).
_DUCKDB_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "float": "FLOAT",
                 "timestamp": "TIMESTAMPTZ", "date": "DATE", "boolean": "BOOLEAN", "smallint": "SMALLINT"}
_SELECTS = re.compile(r"^\s*(\(|select\b|with\b|values\b)", re.IGNORECASE)
NO_OUTPUT = (
    "No output location provided. An output location is required either through the Workgroup result "
    "configuration setting or as an API input."
)


def athena_type(arrow_type: Any) -> str:
    """Athena's name for a result column's type."""
    import pyarrow as pa

    t = pa.types
    for test, name in ((t.is_boolean, "boolean"), (t.is_int8, "tinyint"), (t.is_int16, "smallint"),
                       (t.is_int32, "integer"), (t.is_int64, "bigint"), (t.is_float32, "float"),
                       (t.is_float64, "double"), (t.is_date, "date"), (t.is_timestamp, "timestamp"),
                       (t.is_decimal, "decimal"), (t.is_binary, "varbinary")):
        if test(arrow_type):
            return name
    return "varchar"


def _csv_value(value: Any) -> str | None:
    if value is None:
        return None
    if hasattr(value, "strftime") and hasattr(value, "hour"):  # Athena: 2026-01-05 03:45:00.000
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def athena_csv(columns: list[str], rows: list[tuple]) -> bytes:
    """Athena's result file: a header, every value quoted, NULL an empty unquoted field."""
    out = io.StringIO()
    quote = lambda v: '""' if v is None else '"' + v.replace('"', '""') + '"'  # noqa: E731
    out.write(",".join(quote(c) for c in columns) + "\n")
    for row in rows:
        out.write(",".join("" if (v := _csv_value(x)) is None else quote(v) for x in row) + "\n")
    return out.getvalue().encode()


class Engine:
    """One query over one account and region's Glue catalog and S3."""

    def __init__(self, account: str, region: str):
        self.glue = glue_backends[account][region]
        self.s3 = s3_backends[account]["aws"]
        self.scanned = 0

    def run(self, sql: str, database: str) -> tuple[list[str], list[str], list[tuple]]:
        """(column names, Athena types, rows); ``ValueError`` with the reason when the query cannot run."""
        import duckdb

        self.sql = sql
        with tempfile.TemporaryDirectory(prefix="pricefeed-athena-") as tmp:
            con = duckdb.connect()
            try:
                con.execute("SET TimeZone = 'UTC'")
                con.execute(f'CREATE SCHEMA "{database}"')
                con.execute(f"SET search_path = '{database}'")
                for table in self._named_tables(sql, database):
                    con.execute(self._view(table, database, Path(tmp) / table.name))
                try:
                    arrow = con.sql(sql).to_arrow_table()
                except (duckdb.Error, AttributeError) as exc:  # AttributeError: a statement without a result
                    raise ValueError(str(exc).splitlines()[0]) from None
            finally:
                con.close()
        types = [athena_type(f.type) for f in arrow.schema]
        return list(arrow.column_names), types, [tuple(r.values()) for r in arrow.to_pylist()]

    def _named_tables(self, sql: str, database: str) -> list[Any]:
        try:
            tables = self.glue.get_tables(database, None)
        except EntityNotFoundException:
            raise ValueError(f"SCHEMA_NOT_FOUND: Schema '{database}' does not exist") from None
        return [t for t in tables if re.search(rf"\b{re.escape(t.name)}\b", sql, re.IGNORECASE)]

    def _view(self, table: Any, database: str, folder: Path) -> str:
        from pricefeed.ops.query import hive_view_sql

        spec = table.versions[str(table._current_version)]
        keys = [k["Name"] for k in spec.get("PartitionKeys", [])]
        location = spec["StorageDescriptor"]["Location"]
        parameters = spec.get("Parameters") or {}
        projected = parameters.get("projection.enabled") == "true"
        for key in keys if projected else ():
            if parameters.get(f"projection.{key}.type") == "injected" and not _equality(key, self.sql):
                raise ValueError(
                    f"CONSTRAINT_VIOLATION: For the injected projected partition column {key}, the WHERE clause "
                    "must contain only static equality conditions, and at least one such condition must be present."
                )
        if projected or not keys:
            locations = [location]
        else:
            locations = [p.partition_input["StorageDescriptor"]["Location"] for p in table.partitions.values()]
        files = self._copy(location, [_split(where)[1] for where in locations], folder)
        name = f'"{database}"."{table.name}"'
        if files:
            return hive_view_sql(name, folder, keys)
        columns = spec["StorageDescriptor"].get("Columns", []) + spec.get("PartitionKeys", [])
        typed = ", ".join(
            f"CAST(NULL AS {_DUCKDB_TYPES.get(c['Type'], 'VARCHAR') if c['Name'] not in keys else 'VARCHAR'}) "
            f'AS "{c["Name"]}"'
            for c in columns
        )
        return f"CREATE VIEW {name} AS SELECT {typed} WHERE false"

    def _copy(self, table_location: str, prefixes: list[str], folder: Path) -> int:
        """Copy the table's Parquet files under any of ``prefixes`` into ``folder`` (paths relative to the table's
        location); the bucket's keys are scanned once, however many partitions the table has."""
        bucket_name, root = _split(table_location)
        bucket = self.s3.get_bucket(bucket_name)
        wanted = tuple(prefixes)
        copied = 0
        for key_name in [k for k in list(bucket.keys.keys()) if k.startswith(wanted) and k.endswith(".parquet")]:
            body = bucket.keys[key_name].value
            target = folder / key_name[len(root):].lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            self.scanned += len(body)
            copied += 1
        return copied


def _equality(key: str, sql: str) -> bool:
    """Whether ``sql`` names ``key`` by equality (``key = '...'`` or ``key IN (...)``): what Athena asks of a query
    of an injected projected key. A reading of the text, not of a plan: enough to fail a query that forgets it."""
    return re.search(rf"""(?<!\w)"?{re.escape(key)}"?\s*(=\s*'|in\s*\()""", sql, re.IGNORECASE) is not None


def _split(url: str) -> tuple[str, str]:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, (key if not key or key.endswith("/") else key + "/")


def _output_location(backend: Any, workgroup: str | None, config: dict | None) -> str | None:
    group = backend.work_groups.get(workgroup or "primary")
    settings = group.configuration if group is not None else {}
    enforced = (settings.get("ResultConfiguration") or {}).get("OutputLocation")
    asked = (config or {}).get("OutputLocation")
    if enforced and settings.get("EnforceWorkGroupConfiguration", True):
        return enforced
    return asked or enforced


def _start(original):
    def start_query_execution(self, query, context, config, workgroup, execution_parameters):
        location = _output_location(self, workgroup, config)
        if location is None:
            raise JsonRESTError("InvalidRequestException", NO_OUTPUT)
        config = {**(config or {}), "OutputLocation": location}
        exec_id = original(self, query, context, config, workgroup, execution_parameters)
        execution = self.executions[exec_id]
        execution.pricefeed = {"State": "SUCCEEDED", "Scanned": 0}
        if not _SELECTS.match(query or ""):
            return exec_id  # DDL: moto's own handling
        engine = Engine(self.account_id, self.region_name)
        try:
            columns, types, rows = engine.run(query, (context or {}).get("Database") or "default")
        except ValueError as exc:
            execution.status = "FAILED"
            execution.pricefeed = {"State": "FAILED", "Reason": str(exc), "Scanned": engine.scanned}
            return exec_id
        bucket, key = execution.config["OutputLocation"].removeprefix("s3://").split("/", 1)
        engine.s3.put_object(bucket_name=bucket, key_name=key, value=athena_csv(columns, rows))
        info = [{"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": c, "Label": c, "Type": t,
                 "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": t == "varchar"}
                for c, t in zip(columns, types, strict=True)]
        page = [{"Data": [{"VarCharValue": c} for c in columns]}]
        page += [{"Data": [{} if (v := _csv_value(x)) is None else {"VarCharValue": v} for x in row]}
                 for row in rows[:999]]
        self.query_results[exec_id] = athena_models.QueryResults(rows=page, column_info=info)
        execution.status = "SUCCEEDED"
        execution.pricefeed["Scanned"] = engine.scanned
        return exec_id

    start_query_execution.__wrapped__ = original
    return start_query_execution


def _described(original):
    def get_query_execution(self) -> str:
        import json

        answer = json.loads(original(self))
        execution = self.athena_backend.executions[self._get_param("QueryExecutionId")]
        ran = getattr(execution, "pricefeed", None)
        if ran is not None:
            answer["QueryExecution"]["Status"]["State"] = ran["State"]
            if "Reason" in ran:
                answer["QueryExecution"]["Status"]["StateChangeReason"] = ran["Reason"]
            answer["QueryExecution"]["Statistics"]["DataScannedInBytes"] = ran["Scanned"]
            if execution.workgroup is not None:
                answer["QueryExecution"]["WorkGroup"] = execution.workgroup.name
        return json.dumps(answer)

    get_query_execution.__wrapped__ = original
    return get_query_execution


def install() -> None:
    """Idempotent."""
    wrap_once(athena_models.AthenaBackend, "start_query_execution", _start)
    wrap_once(athena_responses.AthenaResponse, "get_query_execution", _described)
