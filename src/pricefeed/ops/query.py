"""SQL over an exported lake (``pricefeed local run --export DIR``, ``make demo``): DuckDB views over the Parquet
partitions, named and typed as the Glue tables Athena sees on AWS.

``bars``: ts (UTC instant), open, high, low, close, volume, bars, trade_date, then the partition keys timeframe,
exchange, symbol, year, month, day (one file per symbol-day: for one symbol's days). ``bars_monthly``: the same
bars with a symbol column, then timeframe, exchange, year, month (one file per timeframe, exchange and month:
for questions across symbols or long spans). ``coverage``: one row per symbol-day the job built, then exchange,
symbol, year, month, day; ``coverage_monthly``: the same rows with a symbol column, then exchange, year, month.
``quarantine``: every candle the bars left out, its rule and raw object (``pricefeed.aggregate.quarantine``), then
exchange, symbol, year, month, day (empty when nothing was left out).
Partition keys are strings everywhere (``year = '2026'``), as the Glue tables declare them: the same SQL runs
here and in Athena.
"""

from __future__ import annotations

from pathlib import Path

from pricefeed.errors import InvalidInput
from pricefeed.lake.paths import (
    BARS_MONTHLY_PARTITION_KEYS,
    BARS_MONTHLY_ROOT,
    COVERAGE_MONTHLY_PARTITION_KEYS,
    COVERAGE_MONTHLY_ROOT,
    COVERAGE_PARTITION_KEYS,
    COVERAGE_ROOT,
    PARTITION_KEYS,
    PROCESSED_ROOT,
    QUARANTINE_ROOT,
)

#: Where an export keeps the processed bucket (keys as in S3).
PROCESSED_BUCKET = Path("processed")
PROCESSED = PROCESSED_BUCKET / PROCESSED_ROOT
#: view -> (its folder in the processed bucket, its partition keys in the Glue table's order): the view's columns
#: are the file's own, then these.
_TABLES = {
    "bars": (PROCESSED_ROOT, PARTITION_KEYS),
    "bars_monthly": (BARS_MONTHLY_ROOT, BARS_MONTHLY_PARTITION_KEYS),
    "coverage": (COVERAGE_ROOT, COVERAGE_PARTITION_KEYS),
    "coverage_monthly": (COVERAGE_MONTHLY_ROOT, COVERAGE_MONTHLY_PARTITION_KEYS),
    "quarantine": (QUARANTINE_ROOT, COVERAGE_PARTITION_KEYS),
}


def view_sql(name: str, folder: Path) -> str:
    """``CREATE VIEW`` of one of the lake's tables over its files under ``folder``."""
    return hive_view_sql(name, folder, _TABLES[name][1])


def hive_view_sql(name: str, folder: Path, keys: list[str] | tuple[str, ...]) -> str:
    """``CREATE VIEW name`` over the Parquet files under ``folder``: the files' columns, then the partition keys
    read from the path as strings (DuckDB would guess BIGINT for ``year=2026`` and keep ``day=05`` text)."""
    pattern = (folder / (f"{keys[0]}=*" if keys else "") / "**" / "*.parquet").as_posix()
    quoted = "'" + pattern.replace("'", "''") + "'"  # a view cannot take a bound parameter
    if not keys:
        return f"CREATE VIEW {name} AS SELECT * FROM read_parquet({quoted}, union_by_name = true)"
    types = "{" + ", ".join(f"'{k}': VARCHAR" for k in keys) + "}"
    return (
        f"CREATE VIEW {name} AS SELECT * EXCLUDE ({', '.join(keys)}), {', '.join(keys)} FROM "
        f"read_parquet({quoted}, hive_partitioning = true, hive_types = {types}, union_by_name = true)"
    )


def _empty_quarantine_sql() -> str:
    from pricefeed.aggregate.quarantine import QUARANTINE_SCHEMA

    duck = {"date32[day]": "DATE", "string": "VARCHAR", "double": "DOUBLE", "timestamp[us, tz=UTC]": "TIMESTAMPTZ"}
    columns = [f"NULL::{duck[str(f.type)]} AS {f.name}" for f in QUARANTINE_SCHEMA]
    columns += [f"NULL::VARCHAR AS {key}" for key in COVERAGE_PARTITION_KEYS]
    return f"CREATE VIEW quarantine AS SELECT {', '.join(columns)} WHERE false"


def run_query(sql: str, lake: Path) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql`` over the lake exported at ``lake``.

    ``InvalidInput`` when the lake has no bars yet (with what to run first) or the SQL is rejected
    (with DuckDB's message).
    """
    import duckdb  # the dev/CLI environment has it; the Lambda layer does not need it

    if not sql or not sql.strip():
        raise InvalidInput("query: give the SQL to run, e.g. \"select * from bars limit 5\"")
    if not any((lake / PROCESSED).glob("timeframe=*")):
        raise InvalidInput(
            f"query: no bars under {lake / PROCESSED}: run `make demo` or `pricefeed local run --export {lake}` first"
        )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # ts is a UTC instant; show it as such whatever the host's zone
        for name, (root, keys) in _TABLES.items():
            folder = lake / PROCESSED_BUCKET / root
            if any(folder.glob(f"{keys[0]}=*")):  # a lake exported before a table existed lacks its view
                con.execute(view_sql(name, folder))
            elif name == "quarantine":  # nothing was ever left out: the table is there, empty
                con.execute(_empty_quarantine_sql())
        try:
            relation = con.sql(sql)
            if relation is None:  # a statement without a result (CREATE, SET, ...)
                return [], []
            table = relation.to_arrow_table()  # through Arrow: tz-aware timestamps without pytz
        except duckdb.Error as exc:
            raise InvalidInput(f"query: {str(exc).splitlines()[0]}") from None
        return list(table.column_names), [tuple(row.values()) for row in table.to_pylist()]
    finally:
        con.close()
