"""SQL in the stack's Athena workgroup through awswrangler (AWS SDK for pandas): `pricefeed query --athena`.

The workgroup (the stack's ``AthenaWorkGroupName`` output) fixes where results go and caps the bytes a query may
scan; the database is the stack's Glue database, so the tables are ``bars``, ``bars_monthly``, ``coverage`` and
``coverage_monthly`` as ``pricefeed query`` names them over an export. The local stack answers the same calls
(its Athena runs the SQL in DuckDB over the catalog's tables).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

from pricefeed.errors import InvalidInput
from pricefeed.ops.target import Target, aws_reason

#: Athena's price for the bytes a query scans (US East; most regions alike), billed per query with a 10 MB minimum.
DOLLARS_PER_TB = 5.0
MINIMUM_BILLED_BYTES = 10 * 1024**2


@dataclass(frozen=True)
class Answer:
    columns: list[str]
    rows: list[tuple]
    scanned_bytes: int
    execution_id: str

    @property
    def dollars(self) -> float:
        return max(self.scanned_bytes, MINIMUM_BILLED_BYTES) / 1024**4 * DOLLARS_PER_TB


def run_athena(target: Target, sql: str) -> Answer:
    """Run ``sql`` in the stack's workgroup; ``InvalidInput`` with Athena's reason when it fails."""
    import awswrangler as wr
    from botocore.exceptions import ClientError

    if not sql or not sql.strip():
        raise InvalidInput("query: give the SQL to run, e.g. \"select * from bars_monthly limit 5\"")
    workgroup, database = target.output("AthenaWorkGroupName"), target.output("GlueDatabaseName")
    if target.endpoint_url:  # the local stack: every service behind one endpoint
        for service in ("athena", "s3", "glue", "sts"):
            setattr(wr.config, f"{service}_endpoint_url", target.endpoint_url)
    try:
        with warnings.catch_warnings():  # awswrangler 3.17 passes pandas 3 a keyword it deprecates; not the user's
            warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
            frame = wr.athena.read_sql_query(
                sql, database=database, workgroup=workgroup, ctas_approach=False, boto3_session=target.session
            )
    except wr.exceptions.QueryFailed as exc:
        raise InvalidInput(f"query: Athena: {exc}") from None
    except ClientError as exc:
        raise InvalidInput(f"query: Athena in workgroup {workgroup}: {aws_reason(exc)}") from None
    payload = getattr(frame, "query_metadata", None) or {}
    return Answer(
        columns=[str(c) for c in frame.columns],
        rows=[tuple(_plain(v) for v in row) for row in frame.itertuples(index=False, name=None)],
        scanned_bytes=int((payload.get("Statistics") or {}).get("DataScannedInBytes") or 0),
        execution_id=str(payload.get("QueryExecutionId", "")),
    )


def _plain(value: Any) -> Any:
    """pandas' missing values as None, its scalars as Python's."""
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value
