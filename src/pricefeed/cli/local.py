"""`pricefeed local run|up|down`: the whole workflow on this machine (moto + the Fyers simulator)."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from pricefeed.cli.common import console, fail, say, trading_day
from pricefeed.errors import PricefeedError
from pricefeed.ingest.dead_letters import reason
from pricefeed.istime import IST
from pricefeed.ops.target import STATE_FILE
from pricefeed.symbol import Symbol

DEFAULT_API_PORT = 4567  # the stack's HTTP API (OAuth routes) next to moto's 4566


def local_run(
    date_: str = typer.Option(None, "--date", help="IST trading date YYYY-MM-DD (default: the last closed session)."),
    tickers: Path = typer.Option(Path("ticker_list/nse_tickers.csv"), help="Ticker CSV with a 'symbol' column."),
    fyers_url: str = typer.Option(None, help="A Fyers-compatible API instead of the built-in simulator."),
    symbol_master_url: str = typer.Option(
        None, help="Where that API's symbol master CSVs are (default: <fyers-url>/sym_details, as the simulator)."
    ),
    export: Path = typer.Option(None, help="Copy both buckets here afterwards (same key layout as S3)."),
) -> None:
    """Deploy template.yaml locally, log in, run the state machine for one day, print a summary."""
    from pricefeed.local.run import free_port, local_app, run_local
    from pricefeed.ops.launch import check_trading_days, execution_input, rejected_rows, ticker_csv

    try:  # everything a person can get wrong is refused here, before a stack starts
        if fyers_url is not None:  # the stack's callback must be where that Fyers redirects the login
            _check_port_free(_api_port_option(fyers_url), local_app(fyers_url, None, default_port=free_port)[1])
        day = trading_day(date_)
        if date_:
            day = date.fromisoformat(execution_input(day=date_, first=None, last=None)["date"])
        csv = ticker_csv(tickers=tickers, symbols=None)
        check_trading_days({"date": day.isoformat()}, csv)
        for line in rejected_rows(csv, str(tickers)):
            say(f"skipped: {line}")
        started = time.monotonic()
        with console.status(f"Running the pipeline for {day} on the local stack…"):
            result = run_local(
                day, tickers, fyers_url=fyers_url, symbol_master_url=symbol_master_url, export_dir=export, csv=csv
            )
    except PricefeedError as exc:
        fail(exc)
    _print_result(result, day, export, time.monotonic() - started)
    raise typer.Exit(0 if result.status == "SUCCEEDED" else 1)


def _print_result(result, day: date, export: Path | None, total_s: float) -> None:
    table = Table(title=f"pricefeed run for {day} — execution {result.status}")
    for col in ("symbol", "1m", "5m", "15m", "1d"):
        table.add_column(col, no_wrap=True)
    table.add_column("dead letter", overflow="fold")
    for row in result.tickers:
        letter = row["dead_letter"]
        why = f"{letter['error_type']}: {reason(letter, 1000)}" if letter else ""  # whole: the table wraps it
        bars = row["bars"]
        table.add_row(row["symbol"], *(str(bars.get(tf, 0)) for tf in ("1m", "5m", "15m", "1d")), why)
    console.print(table)
    stored = sum(1 for r in result.tickers if r["bars"].get("1m"))
    dead = sum(1 for r in result.tickers if r["dead_letter"])
    console.print(
        f"{stored} tickers stored, {dead} dead-lettered; state machine {result.seconds:.1f} s, "
        f"whole command {total_s:.1f} s."
    )
    if result.error:
        from pricefeed.ops.launch import failure_line

        say(f"execution failed: {failure_line(result.error, result.cause)}")
    if export and result.status == "SUCCEEDED":
        _print_sample_bars(export, result)
        console.print(f"Both buckets exported to [bold]{export}/raw[/] and [bold]{export}/processed[/].")
        say("Try (the venv on your PATH first: source .venv/bin/activate):")
        say(
            f"  duckdb -c \"select * from read_parquet('{export}/processed/processed/timeframe=5m/**/*.parquet', "
            'hive_partitioning=true) limit 5"'
        )
        say(f'  pricefeed query --lake {export} "select symbol, count(*) from bars group by symbol"')
        say(f"  pricefeed report --lake {export} --png report.png")


def _print_sample_bars(export: Path, result) -> None:
    import pyarrow.parquet as pq

    first = next((r["symbol"] for r in result.tickers if r["bars"].get("5m")), None)
    if first is None:
        return
    symbol = Symbol.parse(first)
    folder = export / "processed" / "processed" / "timeframe=5m" / f"exchange={symbol.exchange}/symbol={symbol.name}"
    files = sorted(folder.rglob("*.parquet"))
    if not files:
        return
    rows = pq.read_table(io.BytesIO(files[-1].read_bytes())).slice(0, 5).to_pylist()
    table = Table(title=f"first 5m bars of {first} (stored as UTC instants, shown in IST)")
    for col in ("bar start (IST)", "open", "high", "low", "close", "volume", "bars"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["ts"].astimezone(IST).strftime("%Y-%m-%d %H:%M"),
            *(f"{r[c]:.2f}" for c in ("open", "high", "low", "close")),
            str(r["volume"]),
            str(r["bars"]),
        )
    console.print(table)


def local_up(
    port: int = typer.Option(4566, help="Port of the emulated AWS endpoint (moto)."),
    api_port: int = typer.Option(
        None,
        help="Port of the stack's HTTP API (the OAuth routes); default 4567, or with --fyers-url the port of the "
        "app's redirect URI (FYERS_REDIRECT_URI, else the standalone simulator's 8765).",
        show_default=False,
    ),
    fyers_url: str = typer.Option(None, help="A Fyers-compatible API instead of the built-in simulator."),
    symbol_master_url: str = typer.Option(
        None, help="Where that API's symbol master CSVs are (default: <fyers-url>/sym_details, as the simulator)."
    ),
    tickers: Path = typer.Option(Path("ticker_list/nse_tickers.csv"), help="Uploaded as the stack's ticker list."),
) -> None:
    """Start the local stack and keep it running until Ctrl-C (or `pricefeed local down`)."""
    from contextlib import ExitStack

    from pricefeed.local.run import fyers_parameters, local_app, login
    from pricefeed.local.stack import LocalStack
    from pricefeed.ops.launch import ticker_csv

    try:  # before the `finally` below: a stack already up here keeps its state file
        config, api_port = local_app(fyers_url, api_port, default_port=lambda: DEFAULT_API_PORT)
        for option, number in (("--port", port), (_api_port_option(fyers_url), api_port)):
            _check_port_free(option, number)
        csv = ticker_csv(tickers=tickers, symbols=None)
    except PricefeedError as exc:
        fail(exc)
    try:
        with ExitStack() as res:
            if fyers_url is None:
                from pricefeed.simulator import SimulatorConfig, SimulatorServer

                sim = SimulatorConfig(
                    app_id=config["app_id"],
                    secret_key=config["secret_key"],
                    pin=config["pin"],
                    redirect_uri=config["redirect_uri"],
                )
                fyers_url = res.enter_context(SimulatorServer(sim, port=0)).url
                parameters = fyers_parameters(fyers_url)
            else:
                parameters = fyers_parameters(fyers_url, symbol_master_url)
            stack = res.enter_context(LocalStack.start(parameters=parameters, port=port, api_port=api_port))
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            stack.client("s3").put_object(  # checked and decoded above: the plan reads UTF-8
                Bucket=stack.outputs["RawBucketName"], Key="config/nse_tickers.csv", Body=csv.encode()
            )
            login(stack, on_url=console.print)
            STATE_FILE.parent.mkdir(exist_ok=True)
            state = {"pid": os.getpid(), "endpoint": stack.endpoint_url, "stack_name": stack.stack_name}
            STATE_FILE.write_text(json.dumps({**state, **stack.outputs}))
            console.print(
                f"[bold green]Local stack up[/] at {stack.endpoint_url} (region ap-south-1); Fyers at {fyers_url}"
            )
            for k, v in stack.outputs.items():
                console.print(f"  {k}: {v}")
            from pricefeed.trading_calendar import last_closed_trading_day

            day_input = json.dumps({"date": last_closed_trading_day().isoformat()})
            console.print(
                f"Try (another terminal, this directory): pricefeed run --date {last_closed_trading_day()}; "
                "pricefeed status; pricefeed report --live --png report.png",
                soft_wrap=True,
            )
            console.print(
                f"or: aws --endpoint-url {stack.endpoint_url} --region ap-south-1 stepfunctions start-execution "
                f"--state-machine-arn {stack.outputs['StateMachineArn']} --input '{day_input}'",
                soft_wrap=True,
            )
            console.print("Ctrl-C or `pricefeed local down` stops it.")
            stop = []
            signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
            try:
                while not stop:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    except PricefeedError as exc:
        fail(exc)
    finally:
        STATE_FILE.unlink(missing_ok=True)
    console.print("Local stack stopped.")


def _api_port_option(fyers_url: str | None) -> str:
    """What sets the OAuth routes' port: --api-port, or with another Fyers the app's redirect URI."""
    return "--api-port" if fyers_url is None else "FYERS_REDIRECT_URI (the Fyers app's redirect URI)"


def _check_port_free(option: str, port: int) -> None:
    """``InvalidInput`` naming the option when ``port`` cannot be had on 127.0.0.1 (another stack, LocalStack)."""
    import socket

    if not 1 <= port <= 65535:
        raise PricefeedError(f"{option} {port} is not a TCP port (1-65535)")
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is free
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            hint = " (LocalStack's default port)" if port == 4566 else ""
            raise PricefeedError(
                f"port {port}{hint} is already in use on 127.0.0.1: stop what holds it (`pricefeed local down` if "
                f"it is a local stack) or pick another with {option}"
            ) from None


def local_down() -> None:
    """Stop a stack started by `pricefeed local up` from this directory."""
    if not STATE_FILE.exists():
        console.print("No local stack is running from this directory.")
        raise typer.Exit(0)
    pid = json.loads(STATE_FILE.read_text())["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        STATE_FILE.unlink(missing_ok=True)
        console.print("The local stack had already stopped.")
        return
    console.print(f"Asked the local stack (pid {pid}) to stop.")
