"""The local stack's pieces: template intrinsics, and Lambda handlers run in-process like warm sandboxes."""

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import zipfile

import boto3
import pytest
from botocore.exceptions import ProfileNotFound

from pricefeed.local.intrinsics import Resolver, Unresolvable, substitute_definition
from pricefeed.local.lambda_runtime import FunctionSandbox, lambda_environment, run_argv

# --- DefinitionSubstitutions ----------------------------------------------------------------------------
ASL = json.dumps(
    {
        "StartAt": "Fetch",
        "States": {
            "Fetch": {
                "Type": "Map",
                "ItemReader": {"Parameters": {"Bucket": "${RawBucketName}", "Key.$": "$.items_key"}},
                "ItemSelector": {"symbol.$": "$$.Map.Item.Value.symbol", "date.$": "$.date"},
                "Parameters": {"FunctionName": "${IngestSymbolFunctionArn}", "Payload.$": "$"},
                "End": True,
            }
        },
    }
)
SUBS = {
    "RawBucketName": "pricefeed-raw-123",
    "IngestSymbolFunctionArn": "arn:aws:lambda:ap-south-1:123456789012:function:ingest",
}


def test_substitutions_replace_each_placeholder_exactly_and_leave_json_paths_alone():
    # When the definition is substituted
    definition = json.loads(substitute_definition(ASL, SUBS))
    # Then the placeholders hold their values
    fetch = definition["States"]["Fetch"]
    assert fetch["ItemReader"]["Parameters"]["Bucket"] == "pricefeed-raw-123"
    assert fetch["Parameters"]["FunctionName"] == SUBS["IngestSymbolFunctionArn"]
    # And the JSONPaths a string.Template would mangle are untouched
    assert fetch["ItemSelector"] == {"symbol.$": "$$.Map.Item.Value.symbol", "date.$": "$.date"}
    assert fetch["ItemReader"]["Parameters"]["Key.$"] == "$.items_key"
    assert fetch["Parameters"]["Payload.$"] == "$"


def test_a_key_that_prefixes_another_does_not_replace_inside_it():
    assert substitute_definition('"${Arn}|${ArnB}"', {"Arn": "one", "ArnB": "two"}) == '"one|two"'


def test_values_are_stringified():
    assert substitute_definition('{"MaxConcurrency": ${Limit}}', {"Limit": 10}) == '{"MaxConcurrency": 10}'


def test_an_unsubstituted_placeholder_fails_loudly_naming_it():
    # Given a template that forgot one DefinitionSubstitution
    with pytest.raises(Unresolvable, match=r"\['\$\{IngestSymbolFunctionArn\}'\]"):
        substitute_definition(ASL, {"RawBucketName": "b"})


def test_an_unknown_substitution_key_is_harmless():
    assert json.loads(substitute_definition(ASL, {**SUBS, "Unused": "x"}))["StartAt"] == "Fetch"


# --- intrinsics ----------------------------------------------------------------------------------------
ATTRS = {("IngestFunction", "Arn"): "arn:aws:lambda:ap-south-1:123456789012:function:ingest"}


def get_att(logical: str, attr: str):
    try:
        return ATTRS[(logical, attr)]
    except KeyError:
        raise Unresolvable(f"GetAtt {logical}.{attr}") from None


@pytest.fixture
def resolver() -> Resolver:
    refs = {
        "RawBucket": "pricefeed-raw-123",
        "Stage": "dev",
        "AWS::Region": "ap-south-1",
        "AWS::AccountId": "123456789012",
        "NotDeployedYet": None,
    }
    return Resolver(refs, get_att)


def test_ref_gives_the_value(resolver):
    assert resolver.resolve({"Ref": "RawBucket"}) == "pricefeed-raw-123"
    assert resolver.resolve({"Ref": "AWS::Region"}) == "ap-south-1"


@pytest.mark.parametrize("name", ["Nope", "NotDeployedYet"])
def test_ref_to_something_unknown_or_not_yet_deployed_is_unresolvable(resolver, name):
    with pytest.raises(Unresolvable, match=f"Ref {name}"):
        resolver.resolve({"Ref": name})


@pytest.mark.parametrize("arg", [["IngestFunction", "Arn"], "IngestFunction.Arn"])
def test_getatt_in_list_and_dotted_form(resolver, arg):
    assert resolver.resolve({"Fn::GetAtt": arg}) == ATTRS[("IngestFunction", "Arn")]


def test_sub_string_form_resolves_refs_pseudo_parameters_and_attributes(resolver):
    text = "arn:aws:s3:::${RawBucket}/* in ${AWS::Region}:${AWS::AccountId} calls ${IngestFunction.Arn}"
    assert resolver.resolve({"Fn::Sub": text}) == (
        "arn:aws:s3:::pricefeed-raw-123/* in ap-south-1:123456789012 "
        "calls arn:aws:lambda:ap-south-1:123456789012:function:ingest"
    )


def test_sub_list_form_uses_its_own_variables_first(resolver):
    node = {"Fn::Sub": ["${Bucket}-${Stage}", {"Bucket": {"Ref": "RawBucket"}, "Stage": "prod"}]}
    assert resolver.resolve(node) == "pricefeed-raw-123-prod"


def test_sub_keeps_an_escaped_placeholder_as_a_literal_as_cloudformation_does(resolver):
    node = {"Fn::Sub": "s3://${RawBucket}/timeframe=${!timeframe}/symbol=${!symbol}/"}
    assert resolver.resolve(node) == "s3://pricefeed-raw-123/timeframe=${timeframe}/symbol=${symbol}/"


def test_sub_of_an_unknown_name_is_unresolvable(resolver):
    with pytest.raises(Unresolvable):
        resolver.resolve({"Fn::Sub": "${Missing}"})


def test_join(resolver):
    node = {"Fn::Join": [":", ["arn", "aws", {"Ref": "AWS::Region"}, {"Ref": "AWS::NoValue"}, "x"]]}
    assert resolver.resolve(node) == "arn:aws:ap-south-1:x"


def test_no_value_removes_the_property_or_list_item(resolver):
    node = {
        "Environment": {"Variables": {"RAW_BUCKET": {"Ref": "RawBucket"}, "OPTIONAL": {"Ref": "AWS::NoValue"}}},
        "Layers": [{"Ref": "AWS::NoValue"}, "layer-arn"],
    }
    assert resolver.resolve(node) == {
        "Environment": {"Variables": {"RAW_BUCKET": "pricefeed-raw-123"}},
        "Layers": ["layer-arn"],
    }


def test_plain_values_pass_through(resolver):
    assert resolver.resolve({"Timeout": 30, "Name": "x", "Tags": [1, None, True]}) == {
        "Timeout": 30,
        "Name": "x",
        "Tags": [1, None, True],
    }


@pytest.mark.parametrize(
    "node",
    [
        {"Fn::If": ["IsProd", "a", "b"]},
        {"Fn::ImportValue": "shared-bucket"},
        {"Fn::Select": [0, ["a"]]},
        {"Condition": "IsProd"},
        {"Outer": {"Fn::FindInMap": ["M", "k", "v"]}},
    ],
)
def test_an_unsupported_intrinsic_fails_loudly(resolver, node):
    with pytest.raises(Unresolvable, match="not supported"):
        resolver.resolve(node)


# --- lambda_environment ------------------------------------------------------------------------------------
VAR = "PRICEFEED_TEST_OVERLAY"


def test_the_environment_is_visible_inside_only(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    with lambda_environment({VAR: "inside", "PRICEFEED_TEST_NUMBER": 7}):
        assert os.environ[VAR] == "inside"
        assert os.getenv("PRICEFEED_TEST_NUMBER") == "7"
        assert VAR in os.environ
        assert dict(os.environ)[VAR] == "inside"
    assert VAR not in os.environ
    assert os.getenv(VAR) is None


def test_the_overlay_shadows_a_host_value_and_restores_it(monkeypatch):
    monkeypatch.setenv(VAR, "host")
    with lambda_environment({VAR: "outer"}):
        with lambda_environment({VAR: "inner"}):
            assert os.environ[VAR] == "inner"
        assert os.environ[VAR] == "outer"
    assert os.environ[VAR] == "host"


def test_concurrent_invocations_each_see_their_own_environment(monkeypatch):
    # Given two functions running at the same time on two threads (as Map iterations do)
    monkeypatch.delenv(VAR, raising=False)
    both_inside = threading.Barrier(2, timeout=10)
    seen: dict[str, list] = {}

    def invocation(value: str) -> None:
        with lambda_environment({VAR: value}):
            both_inside.wait()  # neither reads before both have entered
            seen[value] = [os.environ.get(VAR), os.getenv(VAR), VAR in os.environ]
            both_inside.wait()  # neither leaves before both have read
        seen[value].append(os.environ.get(VAR))

    threads = [threading.Thread(target=invocation, args=(v,)) for v in ("plan", "ingest")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # Then each saw only its own value, and nothing is left behind
    assert seen == {"plan": ["plan", "plan", True, None], "ingest": ["ingest", "ingest", True, None]}
    assert VAR not in os.environ


def test_a_function_sees_its_own_variables_and_what_any_process_needs_never_the_deployers_settings(monkeypatch):
    # Given a deployer's shell with their Fyers app's redirect URI and a setting of this project's exported
    monkeypatch.setenv("FYERS_REDIRECT_URI", "https://abc.execute-api.ap-south-1.amazonaws.com/oauth/callback")
    monkeypatch.setenv(VAR, "host")
    # When a Lambda function reads its environment (a Glue job run is not isolated: it is the machine's process)
    with lambda_environment({"STAGE": "local"}, isolated=True):
        seen = dict(os.environ)
        redirect, path = os.getenv("FYERS_REDIRECT_URI"), os.environ.get("PATH")
    # Then it sees its own variables and PATH, as on Lambda, and none of the deployer's
    assert redirect is None and VAR not in seen and "FYERS_REDIRECT_URI" not in seen
    assert seen["STAGE"] == "local" and path == os.environ["PATH"]
    with lambda_environment({"STAGE": "local"}):
        assert os.environ["FYERS_REDIRECT_URI"].startswith("https://") and os.environ[VAR] == "host"
    assert os.environ[VAR] == "host"  # and the process keeps its own

def test_a_thread_outside_any_invocation_does_not_see_another_threads_environment(monkeypatch):
    monkeypatch.delenv(VAR, raising=False)
    entered, checked = threading.Event(), threading.Event()
    seen = []

    def bystander():
        entered.wait(10)
        seen.append(os.environ.get(VAR))
        checked.set()

    t = threading.Thread(target=bystander)
    t.start()
    with lambda_environment({VAR: "mine"}):
        entered.set()
        assert checked.wait(10)
    t.join(10)
    assert seen == [None]


def test_two_job_runs_at_once_each_parse_their_own_argv_and_the_process_keeps_its_own(tmp_path):
    # Given a script that reads sys.argv the way the Glue job does, run twice at the same time (as two job runs)
    import runpy

    script = tmp_path / "job.py"
    script.write_text("import sys, argparse\nRESULT = argparse.ArgumentParser().parse_known_args(sys.argv[1:])[1]\n")
    process_argv = list(sys.argv)
    both_inside = threading.Barrier(2, timeout=10)
    seen: dict[str, list] = {}

    def job_run(run: str) -> None:
        with run_argv([str(script), "--run", run]):
            both_inside.wait()
            seen[run] = [list(sys.argv), runpy.run_path(str(script))["RESULT"], "--run" in sys.argv]
            both_inside.wait()

    threads = [threading.Thread(target=job_run, args=(r,)) for r in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    # Then each saw only its own arguments, and the process's argv is untouched
    assert seen == {r: [[str(script), "--run", r], ["--run", r], True] for r in ("a", "b")}
    assert list(sys.argv) == process_argv and len(sys.argv) == len(process_argv)


def test_the_developers_aws_profile_is_invisible_inside(monkeypatch, tmp_path):
    # Given a developer shell pointing at a real AWS profile and config
    monkeypatch.setenv("AWS_PROFILE", "prod-admin")
    monkeypatch.setenv("AWS_DEFAULT_PROFILE", "prod-admin")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    with pytest.raises(ProfileNotFound):
        boto3.session.Session()
    # When a handler runs / Then none of it is visible, and boto3 uses the function's own settings
    with lambda_environment({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}):
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            assert name not in os.environ
            assert os.environ.get(name) is None
            assert name not in list(os.environ)
        session = boto3.session.Session(region_name="ap-south-1")
        assert session.get_credentials().access_key == "testing"
    assert os.environ["AWS_PROFILE"] == "prod-admin"


# --- FunctionSandbox ------------------------------------------------------------------------------------
HANDLER = textwrap.dedent(
    """
    import os

    from pricefeed.errors import InvalidInput

    calls = []


    def handler(event, context):
        calls.append(event)
        print("handling", event["n"])
        if event.get("fail") == "invalid":
            raise InvalidInput(f"bad n {event['n']}")
        if event.get("fail"):
            raise RuntimeError("boom")
        return {"double": event["n"] * 2, "stage": os.environ.get("STAGE"),
                "function": context.function_name, "calls": len(calls)}
    """
)


def code_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture
def sandbox(tmp_path):
    code = code_zip({"app.py": HANDLER})
    box = FunctionSandbox("PlanRun", "app.handler", code, tmp_path / "fn", tmp_path / "PlanRun.log")
    yield box
    box.close()


ARN = "arn:aws:lambda:ap-south-1:123456789012:function:plan"


def test_a_handler_result_comes_back_as_json_with_the_functions_environment(sandbox):
    payload, errored = sandbox.invoke({"n": 21}, {"STAGE": "local"}, ARN)
    assert errored is False
    assert json.loads(payload) == {"double": 42, "stage": "local", "function": "PlanRun", "calls": 1}


SLOW_HANDLER = """
import time


def handler(event, context):
    before = context.get_remaining_time_in_millis()
    time.sleep(event["sleep"])
    return {"remaining_ms": [before, context.get_remaining_time_in_millis()], "memory": context.memory_limit_in_mb}
"""


@pytest.mark.parametrize(("sleep", "timed_out"), [(0.0, False), (0.3, True)])
def test_an_invocation_past_the_functions_timeout_fails_as_lambda_says_it(tmp_path, sleep, timed_out):
    # Given a function declared with a 0.2-s Timeout and 256 MB
    code = code_zip({"app.py": SLOW_HANDLER})
    box = FunctionSandbox("Slow", "app.handler", code, tmp_path, tmp_path / "s.log", timeout_s=0.2, memory_mb=256)
    # When an invocation ends before its deadline, and when one runs past it
    payload, errored = box.invoke({"sleep": sleep}, {}, ARN)
    box.close()
    answer = json.loads(payload)
    # Then the first returns its result, having seen its time run down; the second is Lambda's timeout error
    assert errored is timed_out
    if timed_out:
        assert answer["errorType"] == "Sandbox.Timedout"
        assert answer["errorMessage"].endswith("Error: Task timed out after 0.20 seconds")
        assert "Task timed out after 0.20 seconds" in (tmp_path / "s.log").read_text()
    else:
        before, after = answer["remaining_ms"]
        assert 0 < after <= before <= 200 and answer["memory"] == 256


def test_the_module_stays_loaded_between_invocations_like_a_warm_sandbox(sandbox):
    sandbox.invoke({"n": 1}, {}, ARN)
    payload, _ = sandbox.invoke({"n": 2}, {}, ARN)
    assert json.loads(payload)["calls"] == 2


def test_a_raised_error_becomes_a_lambda_error_payload_named_by_its_class(sandbox):
    # When the handler raises one of the project's named errors
    payload, errored = sandbox.invoke({"n": 3, "fail": "invalid"}, {}, ARN)
    # Then the state machine gets Lambda's error shape, typed by the class name it routes on
    assert errored is True
    error = json.loads(payload)
    assert error["errorType"] == "InvalidInput"
    assert error["errorMessage"] == "bad n 3"
    assert "stackTrace" not in error


def test_the_traceback_goes_to_the_functions_log(sandbox, tmp_path):
    sandbox.invoke({"n": 4, "fail": "runtime"}, {}, ARN)
    sandbox.close()
    log = (tmp_path / "PlanRun.log").read_text()
    assert "Traceback" in log
    assert "RuntimeError: boom" in log


def test_an_import_error_in_the_handler_module_is_an_error_payload(tmp_path):
    code = code_zip({"app.py": "import not_a_module_xyz\n"})
    box = FunctionSandbox("Broken", "app.handler", code, tmp_path, tmp_path / "b.log")
    try:
        payload, errored = box.invoke({}, {}, ARN)
    finally:
        box.close()
    assert errored is True
    assert json.loads(payload)["errorType"] == "ModuleNotFoundError"


_RUN_IN_A_FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from pricefeed.local.lambda_runtime import FunctionSandbox

    work = Path(sys.argv[1])
    box = FunctionSandbox("PlanRun", "app.handler", (work / "code.zip").read_bytes(), work / "fn", work / "PlanRun.log")
    print("before")
    ok = box.invoke({"n": 5}, {}, "arn")
    failed = box.invoke({"n": 6, "fail": "runtime"}, {}, "arn")
    box.close()
    print("after", json.dumps([ok[1], failed[1]]))
    """
)


def test_what_a_handler_prints_goes_to_its_log_not_the_terminal(tmp_path):
    # Given a fresh process (as `pricefeed local run` is), so the terminal is really its stdout/stderr
    (tmp_path / "code.zip").write_bytes(code_zip({"app.py": HANDLER}))
    # When it invokes a handler that prints, and one that raises
    done = subprocess.run(
        [sys.executable, "-c", _RUN_IN_A_FRESH_PROCESS, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # Then the terminal only shows the process's own output
    assert done.returncode == 0, done.stderr
    assert done.stdout == "before\nafter [false, true]\n"
    assert done.stderr == ""
    # And the function's log has the prints and the traceback
    log = (tmp_path / "PlanRun.log").read_text()
    assert "handling 5\n" in log
    assert "handling 6\n" in log
    assert "RuntimeError: boom" in log


LOGGING_HANDLER = """
import logging


def handler(event, context):
    logging.getLogger("made_before").info("inside %s", event["n"])
    return {}
"""


def test_a_logger_configured_before_the_function_loaded_still_logs_to_the_functions_log(tmp_path):
    # Given a logger whose stream handler was made outside any function (as a service's Powertools Logger is,
    # once a process), writing to a stream of its own
    elsewhere = io.StringIO()
    logger = logging.getLogger("made_before")
    handler = logging.StreamHandler(elsewhere)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    box = FunctionSandbox("Logs", "app.handler", code_zip({"app.py": LOGGING_HANDLER}), tmp_path, tmp_path / "l.log")
    try:
        # When a function logs through it, and the test process logs through it too
        box.invoke({"n": 7}, {}, ARN)
        logger.info("outside")
    finally:
        box.close()
        logger.removeHandler(handler)
    # Then the function's line is in the function's log, as on Lambda; the process's own line where it was
    assert "inside 7" in (tmp_path / "l.log").read_text()
    assert elsewhere.getvalue() == "outside\n"
