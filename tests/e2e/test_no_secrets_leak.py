"""No secret anywhere: a whole workflow on a local stack with known secrets, then every output is scanned.

The scenario (run in a child process, see below) logs in through the OAuth function, runs two days of the
workflow — the access token dies mid-run and is refreshed by the ingest (Fyers honouring the refresh), an unknown
ticker and a ticker behind a Fyers 5xx outage are dead-lettered — then fails to log in every way it can (a
Fyers-refused auth code, a replayed callback, missing parameters, a morning login check with a wrong PIN) and
asks `pricefeed status`. Afterwards it collects what any person or system could read: every line the handlers
and the Glue job logged (with the EMF metric lines), every object version in both buckets (Parquet decoded
too), every execution's description and history, the state table, published SNS messages, CloudWatch Logs,
the HTTP pages of the login attempts and the CLI's output.

The scan looks for each secret — the app secret, the PIN (and the wrong one), every access and refresh
token the token secret ever held, the auth codes — and for what is derived from them: the appIdHash
(sha256 of app_id:secret, a credential Fyers accepts), base64 (standard and URL-safe, at any byte
offset), hex, and a JWT's signature. A failure names the place and the secret, never the value.

Why a child process: one local stack per process (moto's global backends), and the session ``pipeline``
stack with the simulator's default credentials may already be up; this scenario needs its own values.
The child also records every AWS call a handler made, which is checked against the template's policies.
"""

from __future__ import annotations

import base64
import fnmatch
import functools
import io
import json
import os
import re
import secrets
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
SECRETS_FILE = "_secrets.json"  # written by the child for the parent; the one place secrets may be
CALLS_FILE = "_calls.json"
FACTS_FILE = "facts.json"
RUN_DAY, OUTAGE_DAY = "2026-11-18", "2026-11-17"
KNOWN = ["NSE:SBIN-EQ", "NSE:INFY-EQ", "NSE:TCS-EQ"]
UNKNOWN = "NSE:NOTLISTEDQ-EQ"
OUTAGE = "NSE:ITC-EQ"


# ============================================================================ the scan (parent side)


def encodings(value: str) -> dict[str, str]:
    """``value`` and its obvious encodings, by name. Base64 is taken at all three byte alignments (a
    secret inside a larger base64 blob), keeping only the characters that do not depend on neighbours."""
    raw = value.encode()
    found = {"": value, " (hex)": raw.hex()}
    for offset in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * offset + raw).decode().rstrip("=")
            start = -(-offset * 4 // 3)  # characters that still carry padding bits
            stable = text[start + (1 if offset else 0) : len(text) - 3]
            if len(stable) >= 12:
                found[f" ({name})" if offset == 0 else f" ({name}@{offset})"] = stable
    if value.count(".") == 2 and len(value.split(".")[2]) >= 16:
        found[" (JWT signature)"] = value.split(".")[2]
    return found


def needles(named: dict[str, str]) -> dict[str, bytes]:
    """Every secret's encodings as bytes to look for, keyed ``"<secret name><encoding>"``."""
    out = {}
    for name, value in named.items():
        for suffix, text in encodings(value).items():
            out[name + suffix] = text.encode()
            if suffix == " (hex)" or (suffix == "" and re.fullmatch(r"[0-9a-f]+", value)):
                out[name + suffix + " (upper case)"] = text.upper().encode()
    return out


@dataclass
class Scan:
    needles: dict[str, bytes]
    hits: list[tuple[str, str]] = field(default_factory=list)  # (where, secret name)
    counts: Counter = field(default_factory=Counter)

    def text(self, where: str, data: bytes | str, *, kind: str) -> None:
        blob = data.encode() if isinstance(data, str) else data
        self.counts[kind] += 1
        self.counts[kind + " bytes"] += len(blob)
        for name, needle in self.needles.items():
            if needle in blob:
                self.hits.append((where, name))

    def lines(self, where: str, data: bytes, *, kind: str) -> None:
        for number, line in enumerate(data.splitlines(), 1):
            self.text(f"{where}:{number}", line, kind=kind)
            if line.lstrip().startswith(b'{"_aws"'):
                self.counts["EMF metric lines"] += 1

    def report(self) -> str:
        by_where = defaultdict(set)
        for where, name in self.hits:
            by_where[where].add(name)
        shown = [f"  {where}: {', '.join(sorted(names))}" for where, names in sorted(by_where.items())[:50]]
        return f"{len(self.hits)} secret occurrence(s):\n" + "\n".join(shown)


def parquet_text(data: bytes) -> str:
    import pyarrow.parquet as pq

    table = pq.read_table(io.BytesIO(data))
    return json.dumps({"schema": str(table.schema), "rows": table.to_pylist()}, default=str)


def scan_outputs(out: Path, scan: Scan) -> Scan:
    """Everything the child collected under ``out``, by kind."""
    for path in sorted((out / "stack" / "logs").glob("*.log")):
        scan.lines(f"log {path.name}", path.read_bytes(), kind="log lines")
    for name in ("child.stdout", "child.stderr"):
        scan.lines(name, (out / name).read_bytes(), kind="captured output lines")
    for path in sorted((out / "s3").rglob("*")):
        if not path.is_file():
            continue
        where = f"s3 {path.relative_to(out / 's3')}"
        kind = "processed objects" if path.relative_to(out / "s3").parts[0] == "processed" else "raw objects"
        data = path.read_bytes()
        scan.text(where, data, kind=kind)
        if data[:4] == b"PAR1":
            scan.text(where + " (decoded)", parquet_text(data), kind="parquet files decoded")
    for path in sorted((out / "sfn").glob("*.json")):
        document = json.loads(path.read_text())
        scan.text(f"execution {path.stem} (description)", json.dumps(document["describe"]), kind="executions")
        for event in document["history"]:
            scan.text(f"execution {path.stem} event {event['id']} {event['type']}", json.dumps(event),
                      kind="history events")
    for name, kind in (("dynamodb.json", "state table items"), ("sns.json", "SNS messages"),
                       ("s3_metadata.json", "object metadata"),
                       ("cloudwatch_logs.json", "CloudWatch log events")):
        for i, item in enumerate(json.loads((out / name).read_text())):
            scan.text(f"{name}[{i}]", json.dumps(item), kind=kind)
    for path in sorted((out / "http").glob("*")):
        scan.text(f"http {path.name}", path.read_bytes(), kind="HTTP responses")
    for path in sorted((out / "cli").glob("*.txt")):
        scan.lines(f"cli {path.name}", path.read_bytes(), kind="CLI output lines")
    return scan


@dataclass
class Outcome:
    out: Path
    facts: dict
    secrets: dict[str, str]
    calls: list[dict]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> Outcome:
    """The scenario, run once in a child process with this module's own secrets."""
    out = tmp_path_factory.mktemp("leak")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FYERS_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
    with open(out / "child.stdout", "wb") as stdout, open(out / "child.stderr", "wb") as stderr:
        proc = subprocess.run(
            [sys.executable, str(HERE), str(out)], cwd=out, env=env, stdout=stdout, stderr=stderr, timeout=900,
            check=False,
        )
    if proc.returncode != 0:
        tail = (out / "child.stderr").read_text(errors="replace")[-3000:]
        pytest.fail(f"the scenario failed (exit {proc.returncode}); stderr tail, secrets redacted:\n"
                    + redact(tail, out))
    return Outcome(
        out,
        json.loads((out / FACTS_FILE).read_text()),
        json.loads((out / SECRETS_FILE).read_text()),
        json.loads((out / CALLS_FILE).read_text()),
    )


def redact(text: str, out: Path) -> str:
    try:
        named = json.loads((out / SECRETS_FILE).read_text())
    except (OSError, ValueError):
        return "<not shown: the secrets file is missing>"
    for name, needle in sorted(needles(named).items(), key=lambda kv: -len(kv[1])):
        text = text.replace(needle.decode(errors="replace"), f"<{name}>")
    return text


def test_the_scenario_did_everything_the_scan_relies_on(outcome):
    facts = outcome.facts
    assert facts["runs"]["refresh"]["status"] == "SUCCEEDED"
    assert facts["runs"]["outage"]["status"] == "SUCCEEDED"
    # The access token died during the first run and the ingest refreshed it (with the right PIN).
    assert facts["refreshes_during_run"] == 1  # once, for every worker that met the dead token
    assert facts["access_tokens_before_and_after_run"][0] != facts["access_tokens_before_and_after_run"][1]
    letters = sorted((d["symbol"], d["error_type"]) for d in facts["dead_letters"])
    assert letters == sorted([(UNKNOWN, "InvalidSymbol"), (OUTAGE, "TransientFyersError")])  # the refresh cost none
    # Every failed login attempt failed the way it should.
    assert facts["http"] == {
        "login": 302, "callback": 200, "callback-replayed": 400, "callback-refused-code": 502,
        "callback-no-params": 400, "callback-no-auth-code": 400,
    }
    wrong_pin = facts["wrong_pin_refresh"]  # a login is needed: not an error, a notice (only scanned here)
    assert (wrong_pin["trading_day"], wrong_pin["logged_in"], wrong_pin["alerted"]) == (True, False, True), wrong_pin
    assert facts["wrong_pin_refreshes_seen_by_fyers"] == 1
    assert facts["cli_exit_codes"] == [0, 0, 0]
    named = outcome.secrets
    assert {"app secret", "PIN", "wrong PIN", "appIdHash"} <= set(named)
    tokens = [n for n in named if n.startswith(("access token", "refresh token"))]
    assert len([n for n in tokens if n.startswith("access token")]) >= 3  # login, refresh, second login
    assert any(n.startswith("auth code") for n in named)


def test_the_scan_covered_every_kind_of_output(outcome):
    scan = scan_outputs(outcome.out, Scan(needles(outcome.secrets)))
    counts = scan.counts
    print({k: v for k, v in sorted(counts.items())})
    minimum = {
        "log lines": 50,
        "EMF metric lines": 5,
        "raw objects": 15,
        "processed objects": 3 * 4 + 3,  # 3 tickers x 4 timeframes, plus their coverage rows
        "parquet files decoded": 15,
        "executions": 2,
        "history events": 20,
        "state table items": 3,
        "HTTP responses": 7,
        "CLI output lines": 10,
    }
    low = {kind: (counts[kind], at_least) for kind, at_least in minimum.items() if counts[kind] < at_least}
    assert not low, f"the scan saw too little (seen, wanted): {low}"
    assert counts["log lines bytes"] > 10_000 and counts["raw objects bytes"] > 50_000
    # A positive control: the one file that holds the secrets is found to hold every one of them.
    control = Scan(scan.needles)
    control.text("control", (outcome.out / SECRETS_FILE).read_bytes(), kind="control")
    assert {name for _, name in control.hits} >= set(outcome.secrets)
    # The places the issue names are all in the scan: dead letters, manifests, results, each handler's log.
    scanned = {p.relative_to(outcome.out / "s3").as_posix() for p in (outcome.out / "s3").rglob("*") if p.is_file()}
    for piece in ("/ohlcv/errors/", "/ingested/", "aggregate-result.json", "/ohlcv/raw/", "timeframe=5m"):
        assert any(piece in key for key in scanned), f"nothing under {piece} was scanned"
    logs = {p.stem for p in (outcome.out / "stack" / "logs").glob("*.log") if p.stat().st_size}
    assert {"OAuthFunction", "PlanRunFunction", "IngestSymbolFunction", "RecordFailureFunction",
            "RefreshTokensFunction", "RepairPartitionsFunction", "AggregateJob"} <= logs


def test_no_secret_or_anything_derived_from_one_appears_in_any_output(outcome):
    scan = scan_outputs(outcome.out, Scan(needles(outcome.secrets)))
    assert not scan.hits, scan.report()


def test_the_scanner_finds_each_secret_in_every_encoding_it_claims(tmp_path):
    named = {
        "app secret": "s3cr3t-" + secrets.token_urlsafe(20),
        "token": "aaa.bbbbbbbb." + secrets.token_urlsafe(24),
        "appIdHash": secrets.token_hex(32),
    }
    scan = Scan(needles(named))
    for name, value in named.items():
        raw = value.encode()
        planted = {
            "plain": b"x " + raw + b" y",
            "json": json.dumps({"k": value}).encode(),
            "hex": raw.hex().encode(),
            "HEX": raw.hex().upper().encode(),
            "upper": value.upper().encode() if name == "appIdHash" else raw,
            **{f"b64@{k}": base64.b64encode(b"ab"[:k] + raw + b"tail") for k in range(3)},
            **{f"b64url@{k}": base64.urlsafe_b64encode(b"zz"[:k] + raw) for k in range(3)},
        }
        for where, blob in planted.items():
            scan.hits.clear()
            scan.text(where, blob, kind="test")
            assert scan.hits and {w for w, _ in scan.hits} == {where}, (name, where)
            assert all(n.startswith(name) for _, n in scan.hits)
            assert value not in scan.report()  # a failure names the secret, never its value
    scan.hits.clear()
    scan.text("clean", b"nothing to see: SBIN-EQ 2026-11-18 09:15 open 612.35", kind="test")
    assert scan.hits == []


# ---------------------------------------------------------------- the template's policies vs the calls made

#: botocore operation → (IAM action, how to name the resource from the recorded call)
ACTIONS = {
    ("s3", "PutObject"): "s3:PutObject",
    ("s3", "GetObject"): "s3:GetObject",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",
    ("s3", "DeleteObject"): "s3:DeleteObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("secretsmanager", "GetSecretValue"): "secretsmanager:GetSecretValue",
    ("secretsmanager", "PutSecretValue"): "secretsmanager:PutSecretValue",
    ("secretsmanager", "UpdateSecretVersionStage"): "secretsmanager:UpdateSecretVersionStage",
    ("secretsmanager", "CreateSecret"): "secretsmanager:CreateSecret",
    ("dynamodb", "GetItem"): "dynamodb:GetItem",
    ("dynamodb", "PutItem"): "dynamodb:PutItem",
    ("dynamodb", "UpdateItem"): "dynamodb:UpdateItem",
    ("sns", "Publish"): "sns:Publish",
    ("glue", "GetTable"): "glue:GetTable",
    ("glue", "BatchCreatePartition"): "glue:BatchCreatePartition",
    ("glue", "BatchGetPartition"): "glue:BatchGetPartition",
    ("glue", "BatchUpdatePartition"): "glue:BatchUpdatePartition",
}


def call_requests(call: dict, facts: dict) -> list[tuple[str, str, str | None]]:
    """(IAM action, resource ARN, DynamoDB leading key) the call needs."""
    action = ACTIONS[(call["service"], call["operation"])]
    p = call["params"]
    if call["service"] == "s3":
        keys = p.get("Keys") or ([p["Key"]] if "Key" in p else [])
        if action == "s3:ListBucket":
            return [(action, f"arn:aws:s3:::{p['Bucket']}", None)]
        return [(action, f"arn:aws:s3:::{p['Bucket']}/{k}", None) for k in keys]
    if call["service"] == "secretsmanager":
        return [(action, p["SecretId"], None)]
    if call["service"] == "dynamodb":
        return [(action, facts["atts"]["StateTable.Arn"], p["pk"])]
    if call["service"] == "sns":
        return [(action, p["TopicArn"], None)]
    account = facts["refs"]["AWS::AccountId"]
    name = p.get("TableName") or p["Name"]  # GetTable calls it Name
    table = f"arn:aws:glue:{facts['refs']['AWS::Region']}:{account}:table/{p['DatabaseName']}/{name}"
    return [(action, table, None)]


def substitute(text: str, facts: dict) -> str:
    def one(match: re.Match) -> str:
        name = match.group(1)
        value = facts["atts"].get(name, facts["refs"].get(name))
        assert value is not None, f"cannot resolve ${{{name}}}"
        return str(value)

    return re.sub(r"\$\{([^}]+)\}", one, text)


def allowed(statements: list[dict], action: str, resource: str, leading_key: str | None, facts: dict) -> bool:
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            continue
        patterns = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
        if not any(fnmatch.fnmatchcase(resource, substitute(r, facts)) for r in patterns):
            continue
        keys = st.get("Condition", {}).get("ForAllValues:StringLike", {}).get("dynamodb:LeadingKeys")
        if keys is not None and not any(fnmatch.fnmatchcase(leading_key or "", k) for k in keys):
            continue
        return True
    return False


def test_every_aws_call_the_handlers_and_the_job_made_is_allowed_by_their_roles(outcome):
    facts, calls = outcome.facts, outcome.calls
    by_role = Counter()
    refused = []
    for call in calls:
        role = facts["roles_of"][call["who"]]
        for action, resource, leading_key in call_requests(call, facts):
            by_role[role] += 1
            if not allowed(facts["statements"][role], action, resource, leading_key, facts):
                refused.append(f"{call['who']} ({role}): {action} on {resource}" + (
                    f" key {leading_key}" if leading_key else ""))
    assert not sorted(set(refused)), "calls the template would refuse:\n" + "\n".join(sorted(set(refused)))
    # Every function and the Glue job were seen calling AWS, so the check covered them all.
    assert set(by_role) == set(facts["roles_of"].values()), by_role


def test_the_policy_checker_refuses_what_a_role_lacks(outcome):
    facts = outcome.facts
    record_failure = facts["statements"]["RecordFailureFunctionRole"]
    raw = facts["refs"]["RawBucket"]
    assert allowed(record_failure, "s3:PutObject", f"arn:aws:s3:::{raw}/ohlcv/errors/symbol=X/f.json", None, facts)
    assert not allowed(record_failure, "s3:PutObject", f"arn:aws:s3:::{raw}/ohlcv/raw/symbol=X/f.json", None, facts)
    token = facts["refs"]["TokenSecret"]
    assert not allowed(facts["statements"]["OAuthFunctionRole"], "secretsmanager:GetSecretValue", token, None, facts)
    table = facts["atts"]["StateTable.Arn"]
    oauth_role = facts["statements"]["OAuthFunctionRole"]
    assert allowed(oauth_role, "dynamodb:PutItem", table, "oauth-state#abc", facts)
    assert not allowed(oauth_role, "dynamodb:PutItem", table, "budget#APP", facts)


# ============================================================================ the scenario (child side)


def _record_aws_calls(calls: list[dict]) -> None:
    """Tag every boto3 client made inside a handler (or the Glue job) and record its calls: service,
    operation and the names it touched — never a value (PutSecretValue's string is not recorded)."""
    import botocore.session

    from pricefeed.local.lambda_runtime import _ENV  # set only inside an invocation (or the job's run)

    original = botocore.session.Session.create_client

    def create_client(self, service_name, *args, **kwargs):
        client = original(self, service_name, *args, **kwargs)
        inside = _ENV.get() is not None
        who = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or ("AggregateJob" if "--JOB_NAME" in sys.argv else None)
        if inside and who:
            client.meta.events.register(
                f"before-parameter-build.{client.meta.service_model.service_id.hyphenize()}",
                functools.partial(_record, calls, who, service_name),
            )
        return client

    botocore.session.Session.create_client = create_client


def _record(calls: list[dict], who: str, service: str, model, params: dict, **_) -> None:
    names = ("Bucket", "Key", "Prefix", "SecretId", "TopicArn", "DatabaseName", "TableName", "Name")
    kept = {k: params[k] for k in names if k in params}
    if "Delete" in params:
        kept["Keys"] = [o["Key"] for o in params["Delete"].get("Objects", [])]
    if service == "dynamodb":
        item = params.get("Key") or params.get("Item") or {}
        kept["pk"] = item.get("pk", {}).get("S")
        kept.pop("TableName", None)
    calls.append({"who": who, "service": service, "operation": model.name, "params": kept})


def _scenario(out: Path) -> None:
    calls: list[dict] = []
    _record_aws_calls(calls)

    from datetime import date, datetime
    from urllib.parse import parse_qsl, urlsplit
    from zoneinfo import ZoneInfo

    import requests
    import time_machine
    from typer.testing import CliRunner

    from pricefeed.auth.fyers_oauth import app_id_hash
    from pricefeed.cli.main import app as cli
    from pricefeed.local.deploy import ACCOUNT
    from pricefeed.local.run import free_port, fyers_parameters, login, start_execution, wait_for
    from pricefeed.local.stack import LocalStack
    from pricefeed.simulator import SimulatorConfig, SimulatorServer

    named: dict[str, str] = {}
    facts: dict = {"runs": {}, "http": {}}
    api_port = free_port()
    config = {
        "app_id": "LEAKTEST1-100",
        "secret_key": "appsecret-" + secrets.token_urlsafe(24),
        "redirect_uri": f"http://127.0.0.1:{api_port}/oauth/callback",
        # Fyers PINs are 4 digits; a distinctive value keeps the scan free of chance matches in price data.
        "pin": "pin-" + secrets.token_hex(8),
    }
    wrong_pin = "wrongpin-" + secrets.token_hex(8)
    named.update({
        "app secret": config["secret_key"],
        "PIN": config["pin"],
        "wrong PIN": wrong_pin,
        "appIdHash": app_id_hash(config["app_id"], config["secret_key"]),
    })

    def save_secrets() -> None:
        (out / SECRETS_FILE).write_text(json.dumps(named))

    save_secrets()
    sim_cfg = SimulatorConfig(
        app_id=config["app_id"], secret_key=config["secret_key"], pin=config["pin"],
        redirect_uri=config["redirect_uri"],
    )
    # LogLevel DEBUG: the most a deployment can be told to log, so the most there is to leak.
    with SimulatorServer(sim_cfg, port=0) as sim, LocalStack.start(
        parameters={**fyers_parameters(sim.url), "LogLevel": "DEBUG"},
        api_port=api_port,
        workdir=out / "stack",
        retry_time_scale=0.0,
    ) as stack:
        secrets_client = stack.client("secretsmanager")
        app_secret_arn, token_arn = stack.outputs["AppConfigSecretArn"], stack.outputs["TokenSecretArn"]
        secrets_client.put_secret_value(SecretId=app_secret_arn, SecretString=json.dumps(config))
        login(stack, on_url=lambda _: None)

        def stored_tokens() -> dict:
            return json.loads(secrets_client.get_secret_value(SecretId=token_arn)["SecretString"])

        def run(day: str, symbols: list[str], name: str) -> None:
            csv = out / f"{name}.csv"
            csv.write_text("symbol\n" + "".join(s + "\n" for s in symbols))
            described = wait_for(stack, start_execution(stack, date.fromisoformat(day), csv), timeout_s=600)
            facts["runs"][name] = {"arn": described["executionArn"], "status": described["status"]}

        # 1. The access token dies as the run starts; the ingest refreshes it once for every worker (where Fyers
        #    still honours refresh tokens: the simulator refuses them by default, as Fyers since April 2026).
        before = stored_tokens()["access_token"]
        sim.set_faults(refresh_policy="honoured")
        sim.reset_stats()
        sim.expire_tokens_in(0)
        run(RUN_DAY, [*KNOWN, UNKNOWN], "refresh")
        facts["refreshes_during_run"] = sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0)
        facts["access_tokens_before_and_after_run"] = [
            app_id_hash("x", before), app_id_hash("x", stored_tokens()["access_token"])
        ]

        # 2. A Fyers outage longer than every retry: the ticker is dead-lettered.
        sim.set_faults(fail_next_5xx=15)
        run(OUTAGE_DAY, [OUTAGE], "outage")
        sim.set_faults(fail_next_5xx=0)

        # 3. Logins that fail, through the HTTP API (and one that succeeds, whose callback is replayed).
        http = requests.Session()
        (out / "http").mkdir()

        def page(name: str, url: str, **params) -> requests.Response:
            answer = http.get(url, params=params or None, allow_redirects=False, timeout=60)
            facts["http"][name] = answer.status_code
            (out / "http" / f"{name}.txt").write_text(
                f"{answer.status_code}\n{json.dumps(dict(answer.headers))}\n\n{answer.text}"
            )
            return answer

        fyers_url = page("login", stack.outputs["LoginUrl"]).headers["location"]
        state = dict(parse_qsl(urlsplit(fyers_url).query))["state"]
        callback = http.get(fyers_url, allow_redirects=False, timeout=30).headers["location"]
        named["auth code (login 2)"] = dict(parse_qsl(urlsplit(callback).query))["auth_code"]
        save_secrets()
        page("callback", callback)
        page("callback-replayed", callback)
        fresh = dict(parse_qsl(urlsplit(page("login", stack.outputs["LoginUrl"]).headers["location"]).query))["state"]
        named["auth code (made up)"] = "madeup-" + secrets.token_hex(10)
        save_secrets()
        page("callback-refused-code", stack.outputs["CallbackUrl"], s="ok", auth_code=named["auth code (made up)"],
             state=fresh)
        page("callback-no-params", stack.outputs["CallbackUrl"])
        page("callback-no-auth-code", stack.outputs["CallbackUrl"], s="ok", state=state)

        # 4. The morning login check with a wrong PIN (the stored access token made to look expired) on a trading
        #    day: Fyers refuses the refresh, so a login is needed and the notice with the login link goes out.
        good_tokens = stored_tokens()
        secrets_client.put_secret_value(SecretId=app_secret_arn, SecretString=json.dumps({**config, "pin": wrong_pin}))
        looks_expired = {**good_tokens, "access_expires_at": "2026-01-01T00:00:00+00:00"}
        secrets_client.put_secret_value(SecretId=token_arn, SecretString=json.dumps(looks_expired))
        sim.reset_stats()
        with time_machine.travel(datetime(2026, 12, 2, 8, 45, tzinfo=ZoneInfo("Asia/Kolkata")), tick=True):
            answer = stack.client("lambda").invoke(
                FunctionName=stack.physical_id("RefreshTokensFunction"), Payload=b'{"notice": "morning"}'
            )
        payload = answer["Payload"].read()
        (out / "http" / "refresh-tokens-invocation.txt").write_bytes(payload)  # what the scheduler is told
        facts["wrong_pin_refresh"] = json.loads(payload)
        facts["wrong_pin_refreshes_seen_by_fyers"] = sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0)
        secrets_client.put_secret_value(SecretId=app_secret_arn, SecretString=json.dumps(config))
        secrets_client.put_secret_value(SecretId=token_arn, SecretString=json.dumps(good_tokens))

        # 5. What a user asks afterwards.
        (out / "cli").mkdir()
        os.chdir(out / "cli")
        Path(".pricefeed").mkdir()
        Path(".pricefeed/local.json").write_text(
            json.dumps({"pid": 0, "endpoint": stack.endpoint_url, **stack.outputs})
        )
        facts["cli_exit_codes"] = []
        for name, args in (("status", ["status", "--last", "5"]),
                           ("status-refresh", ["status", "--execution", facts["runs"]["refresh"]["arn"]]),
                           ("status-outage", ["status", "--execution", facts["runs"]["outage"]["arn"]])):
            shown = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
            facts["cli_exit_codes"].append(shown.exit_code)
            Path(f"{name}.txt").write_text(shown.output)

        # Every token the token secret ever held.
        versions = secrets_client.list_secret_version_ids(SecretId=token_arn, IncludeDeprecated=True)["Versions"]
        for i, version in enumerate(versions):
            text = secrets_client.get_secret_value(SecretId=token_arn, VersionId=version["VersionId"])["SecretString"]
            data = json.loads(text) if text.strip() else {}
            for kind in ("access_token", "refresh_token"):
                if data.get(kind) and data[kind] not in named.values():
                    named[f"{kind.replace('_', ' ')} #{i}"] = data[kind]
        save_secrets()

        _collect(stack, out, facts)
        facts["refs"] = {k: v for k, v in stack.deployment.refs.items() if isinstance(v, str | int)}
        raw, processed = stack.outputs["RawBucketName"], stack.outputs["ProcessedBucketName"]
        table = stack.client("dynamodb").describe_table(TableName=stack.outputs["StateTableName"])["Table"]
        facts["atts"] = {
            "RawBucket.Arn": f"arn:aws:s3:::{raw}",
            "ProcessedBucket.Arn": f"arn:aws:s3:::{processed}",
            "StateTable.Arn": table["TableArn"],
            "TokenAlertTopic.TopicName": stack.outputs["TokenAlertTopicArn"].rsplit(":", 1)[1],
            "AWS::AccountId": ACCOUNT,
        }
        resources = stack.deployment.resources()
        facts["statements"] = {
            name: [st for pol in res["Properties"].get("Policies", []) for st in _statements(pol)]
            for name, res in resources.items()
            if res["Type"] == "AWS::IAM::Role"
        }
        facts["statements"] = json.loads(json.dumps(facts["statements"], default=str), object_hook=_rendered)
        facts["roles_of"] = {
            stack.physical_id(name): res["Properties"]["Role"]["Fn::GetAtt"][0]
            for name, res in resources.items()
            if res["Type"] == "AWS::Lambda::Function"
        }
        facts["roles_of"]["AggregateJob"] = resources["AggregateJob"]["Properties"]["Role"]["Fn::GetAtt"][0]
    (out / FACTS_FILE).write_text(json.dumps(facts, indent=1, default=str))
    (out / CALLS_FILE).write_text(json.dumps(calls))


def _statements(policy: dict) -> list[dict]:
    statement = policy["PolicyDocument"]["Statement"]
    return statement if isinstance(statement, list) else [statement]


def _rendered(node: dict):
    """Intrinsics in IAM statements as ``${...}`` text (the parent substitutes the deployed names)."""
    if len(node) == 1:
        (fn, arg), = node.items()
        if fn == "Ref":
            return "${" + arg + "}"
        if fn == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if fn == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            for name, inner in variables.items():
                text = text.replace("${" + name + "}", inner if isinstance(inner, str) else json.dumps(inner))
            return text
    return node


def _collect(stack, out: Path, facts: dict) -> None:
    """Everything readable after the runs, written under ``out`` for the parent to scan."""
    s3 = stack.client("s3")
    metadata = []
    for kind, bucket in (("raw", stack.outputs["RawBucketName"]), ("processed", stack.outputs["ProcessedBucketName"])):
        for pg in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in pg.get("Versions", []):
                key, vid = version["Key"], version["VersionId"]
                got = s3.get_object(Bucket=bucket, Key=key, **({"VersionId": vid} if vid != "null" else {}))
                target = out / "s3" / kind / f"{key}#{vid}"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(got["Body"].read())
                metadata.append({"key": key, "version": vid, "metadata": got.get("Metadata") or {},
                                 "content_type": got.get("ContentType")})
    (out / "s3_metadata.json").write_text(json.dumps(metadata))
    letters = []
    for path in (out / "s3" / "raw" / "ohlcv" / "errors").rglob("*"):
        if path.is_file():
            letters.append(json.loads(path.read_bytes()))
    facts["dead_letters"] = letters

    sfn = stack.client("stepfunctions")
    (out / "sfn").mkdir()
    executions = sfn.list_executions(stateMachineArn=stack.outputs["StateMachineArn"])["executions"]
    for execution in executions:
        arn = execution["executionArn"]
        history, token = [], None
        while True:
            more = {"nextToken": token} if token else {}
            page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **more)
            history += page["events"]
            token = page.get("nextToken")
            if not token:
                break
        describe = sfn.describe_execution(executionArn=arn)
        (out / "sfn" / f"{execution['name']}.json").write_text(
            json.dumps({"describe": describe, "history": history}, default=str)
        )

    dynamodb = stack.client("dynamodb")
    items = dynamodb.scan(TableName=stack.outputs["StateTableName"])["Items"]
    (out / "dynamodb.json").write_text(json.dumps(items))

    from moto.sns.models import sns_backends

    messages = [
        {"topic": topic.arn, "notification": list(n)}
        for backend in _backends(sns_backends)
        for topic in backend.topics.values()
        for n in getattr(topic, "sent_notifications", [])
    ]
    (out / "sns.json").write_text(json.dumps(messages, default=str))

    logs = stack.client("logs")
    events = []
    for group in logs.describe_log_groups()["logGroups"]:
        events += logs.filter_log_events(logGroupName=group["logGroupName"]).get("events", [])
    (out / "cloudwatch_logs.json").write_text(json.dumps(events, default=str))


def _backends(per_account) -> list:
    return [backend for regions in per_account.values() for backend in regions.values()]


if __name__ == "__main__":
    _scenario(Path(sys.argv[1]))
