"""The `pricefeed` command line: the typer app, assembled from the command modules beside this one.

`local run|up|down` (this machine), `run`, `backfill`, `redrive` (start and follow runs), `status`, `query`,
`report` (look at the outcome) and `login` (Fyers, from a laptop) on the local or a deployed stack.
"""

from __future__ import annotations

import typer

from pricefeed.cli import local, login, query, report, runs, status

app = typer.Typer(
    help="Fyers 1-minute history → S3 raw JSON → Parquet bars, on AWS or on this machine.", no_args_is_help=True
)
local_app = typer.Typer(help="The whole workflow on this machine: moto + the Fyers simulator.", no_args_is_help=True)
app.add_typer(local_app, name="local")
local_app.command("run")(local.local_run)
local_app.command("up")(local.local_up)
local_app.command("down")(local.local_down)
app.command("run")(runs.run)
app.command("backfill")(runs.backfill)
app.command("redrive")(runs.redrive)
app.command("heal")(runs.heal)
app.command("status")(status.status)
# SQL may open with a "-- comment": taken as the SQL, not as an unknown option.
app.command("query", context_settings={"ignore_unknown_options": True})(query.query)
app.command("report")(report.report)
app.command("login")(login.login_command)

if __name__ == "__main__":
    app()
