"""One command, one machine: the local stack + a Fyers endpoint, log in, run the state machine for a day,
summarise per ticker, export both buckets. What `make demo` and `pricefeed local run` do."""

from __future__ import annotations

import http.cookiejar
import json
import os
import socket
import time
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pricefeed.auth.store import TokenStore
from pricefeed.errors import InvalidInput, NotLoggedIn
from pricefeed.local.stack import LocalStack

SIMULATOR_DEFAULTS = {"app_id": "PFSIM1-100", "secret_key": "sim-secret", "pin": "1234"}
# what the environment may set of the local app (its redirect URI: see local_app)
ENV_OVERRIDES = {"app_id": "FYERS_APP_ID", "secret_key": "FYERS_SECRET_KEY", "pin": "FYERS_PIN"}


@dataclass
class RunResult:
    execution_arn: str
    status: str
    output: dict
    seconds: float
    tickers: list[dict] = field(default_factory=list)  # {"symbol", "bars": {tf: n}, "dead_letter": {...} | None}
    error: str | None = None
    cause: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_config(redirect_uri: str, environ=os.environ) -> dict:
    """The local app: the simulator's defaults, the environment's settings over them, and ``redirect_uri``."""
    config = {**SIMULATOR_DEFAULTS, "redirect_uri": redirect_uri}
    config.update({name: environ[var] for name, var in ENV_OVERRIDES.items() if environ.get(var)})
    return config


CALLBACK_PATH = "/oauth/callback"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


def local_app(fyers_url: str | None, api_port: int | None, *, default_port, environ=os.environ) -> tuple[dict, int]:
    """The Fyers app the local stack logs in with, and the port its OAuth routes listen on.

    Fyers (and the simulator) redirect a login only to the app's registered redirect URI, so the stack's
    callback must be there. The built-in simulator's app is registered with the stack's own callback (both ends
    are ours: ``FYERS_REDIRECT_URI``, perhaps exported for a deployed stack, does not apply); with ``fyers_url``
    (a simulator started on its own, or any Fyers-compatible host) the app's redirect URI is
    ``FYERS_REDIRECT_URI``, by default the standalone simulator's, and the stack listens on its port.
    ``default_port()`` gives the port when nothing fixes one."""
    from urllib.parse import urlsplit

    if fyers_url is None:
        port = api_port if api_port is not None else default_port()
        return app_config(f"http://127.0.0.1:{port}{CALLBACK_PATH}", environ), port
    from pricefeed.simulator import SimulatorConfig

    redirect = environ.get("FYERS_REDIRECT_URI") or SimulatorConfig().redirect_uri
    source = "FYERS_REDIRECT_URI" if environ.get("FYERS_REDIRECT_URI") else "the simulator's default redirect URI"
    parts = urlsplit(redirect)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS or port is None or parts.path != CALLBACK_PATH:
        raise InvalidInput(
            f"{source} {redirect!r} cannot reach the local stack: it must be http://127.0.0.1:<port>{CALLBACK_PATH} "
            "(register that URI with the Fyers app you log in with)"
        )
    if api_port is not None and api_port != port:
        raise InvalidInput(
            f"--api-port {api_port} disagrees with {source} {redirect!r}: Fyers redirects the login to port {port}; "
            f"drop --api-port or make them the same"
        )
    return app_config(redirect, environ), port


def fyers_parameters(api_url: str, symbol_master_url: str | None = None) -> dict[str, str]:
    """Stack parameters pointing the API at ``api_url`` and the symbol master at ``symbol_master_url``, by
    default where the simulator (and any Fyers-compatible host) serves it: ``<api_url>/sym_details``."""
    return {"FyersApiBaseUrl": api_url, "FyersSymbolMasterUrl": symbol_master_url or f"{api_url}/sym_details"}


def login(stack: LocalStack, *, wait_s: float = 300.0, on_url=print) -> None:
    """Open the stack's login URL; when it redirects straight back (the simulator) the login completes here."""
    url = stack.outputs["LoginUrl"]
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"login URL {url!r} is not http(s)")
    request = urllib.request.Request(url, headers={"User-Agent": "pricefeed-local"})  # noqa: S310 - checked above
    # a cookie jar, as a browser has: the callback only finishes a login begun with the login page's cookie
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    try:
        with opener.open(request, timeout=30) as answer:  # loopback URL from our stack
            if answer.status == 200 and b"Logged in" in answer.read():
                return
    except urllib.error.HTTPError as exc:
        said = exc.read()[:300].decode(errors="replace")
        hint = ""
        if "redirect_uri" in said:
            hint = (
                f" (the stack's callback is {stack.outputs['LoginUrl'].rsplit('/oauth/', 1)[0]}{CALLBACK_PATH}: "
                "register it with the Fyers app, or set FYERS_REDIRECT_URI to the app's registered loopback URI)"
            )
        raise NotLoggedIn(f"login failed with HTTP {exc.code}: {said}{hint}") from None
    except urllib.error.URLError:
        pass  # a real Fyers login page: a person has to log in in a browser
    on_url(f"Open this URL in a browser and log in to Fyers: {stack.outputs['LoginUrl']}")
    store = TokenStore(stack.client("secretsmanager"), stack.outputs["TokenSecretArn"])
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            store.load()
            return
        except NotLoggedIn:
            time.sleep(1)
    raise NotLoggedIn("no Fyers login happened in time")


def start_execution(stack: LocalStack, day: date, tickers_csv: Path | None = None, *, csv: str | None = None) -> str:
    """Start a run of ``day`` for the tickers in the file ``tickers_csv`` or the CSV text ``csv`` (as `pricefeed
    run` does); its ARN."""
    from pricefeed.ops.launch import start_run

    if csv is None:
        from pricefeed.ops.launch import read_ticker_file

        if tickers_csv is None:
            raise InvalidInput("no ticker list given")
        csv = read_ticker_file(tickers_csv)
    return start_run(
        stack.client("stepfunctions"),
        stack.client("s3"),
        state_machine_arn=stack.outputs["StateMachineArn"],
        raw_bucket=stack.outputs["RawBucketName"],
        run_input={"date": day.isoformat()},
        csv=csv,
    )


def wait_for(stack: LocalStack, execution_arn: str, *, timeout_s: float = 1800) -> dict:
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still running after {timeout_s:.0f} s")
        time.sleep(0.1)


def summarize(stack: LocalStack, day: date, output: dict) -> list[dict]:
    """Per ticker of the plan: rows stored per timeframe and its dead letter, if any."""
    from pricefeed.aggregate.catalog import job_partitions
    from pricefeed.lake import paths
    from pricefeed.symbol import Symbol

    s3, raw = stack.client("s3"), stack.outputs["RawBucketName"]
    symbols = json.loads(s3.get_object(Bucket=raw, Key=output["symbols_key"])["Body"].read())["symbols"]
    bars: dict[str, dict] = {s: {} for s in symbols}
    try:
        result = json.loads(s3.get_object(Bucket=raw, Key=output["result_key"])["Body"].read())
        for p in job_partitions(s3, raw, result, [paths.BARS_TABLE]):
            bars.setdefault(f"{p['exchange']}:{p['symbol']}", {})[p["timeframe"]] = p.get("rows", 0)
    except s3.exceptions.NoSuchKey:
        pass
    rows = []
    for symbol in symbols:
        prefix = paths.dead_letter_key(Symbol.parse(symbol), day, _epoch()).rsplit("/", 1)[0] + "/"
        letters = s3.list_objects_v2(Bucket=raw, Prefix=prefix).get("Contents", [])
        letter = None
        if letters:
            newest = max(letters, key=lambda o: o["Key"])
            letter = json.loads(s3.get_object(Bucket=raw, Key=newest["Key"])["Body"].read())
        rows.append({"symbol": symbol, "bars": bars.get(symbol, {}), "dead_letter": letter})
    for unknown in output.get("unknown", []):  # dead-lettered by the plan: not in the Fyers symbol master
        key = unknown.get("dead_letter_key")
        letter = json.loads(s3.get_object(Bucket=raw, Key=key)["Body"].read()) if key else None
        rows.append({"symbol": unknown["symbol"], "bars": {}, "dead_letter": letter})
    return rows


def _epoch():
    from datetime import UTC, datetime

    return datetime(2000, 1, 1, tzinfo=UTC)


def export(stack: LocalStack, directory: Path) -> dict[str, int]:
    """Both buckets to ``directory/raw`` and ``directory/processed``, keys as in S3; counts of files per bucket."""
    from pricefeed.ops.mirror import download_all, list_objects, local_file

    s3 = stack.client("s3")
    counts = {}
    for kind, bucket in (("raw", stack.outputs["RawBucketName"]), ("processed", stack.outputs["ProcessedBucketName"])):
        targets = ((obj["Key"], local_file(directory, kind, obj["Key"])) for obj in list_objects(s3, bucket))
        jobs = ((bucket, key, target) for key, target in targets if target is not None)
        counts[kind] = sum(1 for _ in download_all(s3, jobs))
    return counts


def run_local(
    day: date,
    tickers_csv: Path,
    *,
    fyers_url: str | None = None,
    symbol_master_url: str | None = None,
    stack: LocalStack | None = None,
    simulator_config=None,
    export_dir: Path | None = None,
    csv: str | None = None,
) -> RunResult:
    """Run one day end to end; starts (and stops) the simulator and the stack unless given."""
    with ExitStack() as resources:
        if stack is None:
            config, api_port = local_app(fyers_url, None, default_port=free_port)
            if fyers_url is None:
                from pricefeed.simulator import SimulatorConfig, SimulatorServer

                sim_cfg = simulator_config or SimulatorConfig(
                    app_id=config["app_id"],
                    secret_key=config["secret_key"],
                    pin=config["pin"],
                    redirect_uri=config["redirect_uri"],
                )
                parameters = fyers_parameters(resources.enter_context(SimulatorServer(sim_cfg, port=0)).url)
            else:
                parameters = fyers_parameters(fyers_url, symbol_master_url)
            stack = resources.enter_context(LocalStack.start(parameters=parameters, api_port=api_port))
            stack.client("secretsmanager").put_secret_value(
                SecretId=stack.outputs["AppConfigSecretArn"], SecretString=json.dumps(config)
            )
            login(stack)
        started = time.monotonic()
        arn = start_execution(stack, day, tickers_csv, csv=csv)
        described = wait_for(stack, arn)
        output = json.loads(described.get("output") or "{}")
        result = RunResult(arn, described["status"], output, time.monotonic() - started, error=described.get("error"),
                           cause=described.get("cause"))
        if output.get("symbols_key"):
            result.tickers = summarize(stack, day, output)
        if export_dir is not None:
            export(stack, export_dir)
        return result
