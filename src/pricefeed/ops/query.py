"""SQL over an exported lake (``pricefeed local run --export DIR``, ``make demo``): DuckDB views ``bars`` and
``coverage`` over the Parquet partitions, the same tables Athena sees on AWS.

``bars``: ts (UTC instant), open, high, low, close, volume, bars, trade_date, symbol, exchange, timeframe
(+ the partition columns year, month, day). ``coverage``: one row per symbol-day the job built.
"""

from __future__ import annotations

from pathlib import Path

from pricefeed.errors import InvalidInput

#: Where an export keeps the processed bucket (keys as in S3).
PROCESSED = Path("processed") / "processed"


def _views(lake: Path) -> dict[str, str]:
    root = lake / PROCESSED
    return {
        "bars": (root / "timeframe=*" / "**" / "*.parquet").as_posix(),
        "coverage": (root / "coverage" / "**" / "*.parquet").as_posix(),
    }


def run_query(sql: str, lake: Path) -> tuple[list[str], list[tuple]]:
    """Column names and rows of ``sql`` over the lake exported at ``lake``.

    ``InvalidInput`` when the lake has no bars yet (with what to run first) or the SQL is rejected
    (with DuckDB's message).
    """
    import duckdb  # the dev/CLI environment has it; the Lambda layer does not need it

    if not sql or not sql.strip():
        raise InvalidInput("query: give the SQL to run, e.g. \"select * from bars limit 5\"")
    views = _views(lake)
    if not any((lake / PROCESSED).glob("timeframe=*")):
        raise InvalidInput(
            f"query: no bars under {lake / PROCESSED}: run `make demo` or `pricefeed local run --export {lake}` first"
        )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # ts is a UTC instant; show it as such whatever the host's zone
        for name, pattern in views.items():
            if name == "coverage" and not any((lake / PROCESSED / "coverage").glob("exchange=*")):
                continue
            quoted = "'" + pattern.replace("'", "''") + "'"  # a view cannot take a bound parameter
            con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM "
                f"read_parquet({quoted}, hive_partitioning = true, union_by_name = true)"
            )
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
