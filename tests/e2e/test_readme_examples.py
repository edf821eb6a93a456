"""The README's examples, run as printed against a lake the workflow really wrote (the demo's ticker list, exported
as `make demo` exports it), with the venv on PATH as the README says: so the README cannot drift from what works.

Run: every ```bash block that types `duckdb` or `pricefeed query|report` against the lake, and every ```sql block
(DuckDB's over `read_parquet('lake/…')` with the `duckdb` command; Athena's through `pricefeed query`, whose views
are named as the Glue tables). Not run here: the deploy commands (`sam`, `aws`, `pricefeed login --stack`), which
need an AWS account.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from pricefeed.local.run import export, start_execution, wait_for

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
DAY = date(2026, 10, 16)  # a Friday no other e2e test runs
BIN = Path(sys.executable).parent


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def commands() -> list[str]:
    """The README's shell blocks that work on an exported lake, each whole (a quoted query may span lines)."""
    return [block.strip() for block in blocks("bash")
            if re.match(r"(duckdb|pricefeed (query|report))\b", block.strip()) and not re.search(r"[\[<]|…", block)]


def statements() -> list[str]:
    return [s.strip() for block in blocks("sql") for s in block.split(";") if s.strip()]


@pytest.fixture(scope="module")
def demo(pipeline, tmp_path_factory) -> Path:
    """A directory holding `lake/` as `make demo` leaves it (the sample list, one ticker unknown to Fyers)."""
    described = wait_for(pipeline.stack, start_execution(pipeline.stack, DAY, ROOT / "ticker_list" / "nse_tickers.csv"),
                         timeout_s=300)
    assert described["status"] == "SUCCEEDED", described.get("error")
    where = tmp_path_factory.mktemp("demo")
    export(pipeline.stack, where / "lake")
    return where


def typed(demo: Path, command: str) -> subprocess.CompletedProcess:
    """``command`` in a shell whose PATH starts with the venv (`source .venv/bin/activate`), in the demo's folder."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "VIRTUAL_ENV": str(BIN.parent)}
    return subprocess.run(["bash", "-c", command], cwd=demo, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


def test_the_readme_says_how_to_get_both_commands_on_path_and_the_venv_has_them():
    assert any(block.strip() == "source .venv/bin/activate" for block in blocks("bash"))
    assert shutil.which("duckdb", path=str(BIN)) and shutil.which("pricefeed", path=str(BIN))


def test_the_readmes_shell_examples_run_as_printed(demo):
    found = commands()
    assert len(found) >= 1, "the README lost its duckdb example"
    for command in found:
        done = typed(demo, command)
        assert done.returncode == 0, f"{command}\n{done.stdout}{done.stderr}"
        assert "Error" not in done.stdout + done.stderr, command
    first = typed(demo, found[0]).stdout
    assert "-EQ" in first and "open" in first  # bars, not an empty table


def test_the_readmes_sql_runs_in_duckdb_and_through_pricefeed_query(demo):
    found = statements()
    assert len(found) >= 4, found
    for sql in found:
        if "read_parquet('lake/" in sql:
            done = typed(demo, f"duckdb -csv -c {shlex_quote(sql)}")  # the README's own command
        else:  # Athena's SQL: the same table names are `pricefeed query` views over the export
            done = typed(demo, f"pricefeed query --lake lake --csv {shlex_quote(sql)}")  # even one opening with --
        assert done.returncode == 0 and "Error" not in done.stderr, f"{sql}\n{done.stdout}{done.stderr}"
    first = next(sql for sql in found if "read_parquet('lake/processed/processed/" in sql)
    bars = typed(demo, f"duckdb -csv -c {shlex_quote(first)}").stdout.splitlines()
    assert len(bars) >= 1 + 75 and all(row.startswith("SBIN-EQ,") for row in bars[1:])  # a whole day at least


def shlex_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)
