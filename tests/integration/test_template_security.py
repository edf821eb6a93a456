"""Data at rest, logs, the public HTTP API and the login pages: the security settings template.yaml must keep;
checkov's CloudFormation checks (as `make lint` runs them) pass, each check skipped with its reason; and what a
schedule invokes (asynchronously) keeps its failed events in a queue that alarms.

Pure checks on the SAM-translated template (``translated``), plus the OAuth routes exercised through the
local stack's HTTP API (the session ``pipeline``): no page ever carries a token, and a callback with
missing parameters or a replayed state is a 400.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pricefeed.auth.store import APP_CONFIG_ENV
from pricefeed.local.template import load_template

ENCRYPTION_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}
ROOT = Path(__file__).resolve().parents[2]


def resources(cfn: dict, kind: str) -> dict[str, dict]:
    return {name: res for name, res in cfn["Resources"].items() if res["Type"] == kind}


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------------------------------ storage


@pytest.mark.parametrize("bucket", ["RawBucket", "ProcessedBucket"])
def test_buckets_block_public_access_encrypt_by_default_and_refuse_plain_http(translated, bucket):
    props = translated["Resources"][bucket]["Properties"]
    block = props["PublicAccessBlockConfiguration"]
    for setting in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
        assert block.get(setting) is True, f"{bucket}: {setting}"
    rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rules and all(r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ENCRYPTION_ALGORITHMS for r in rules)
    policies = [
        p["Properties"]["PolicyDocument"]
        for p in resources(translated, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": bucket}
    ]
    denies = [
        st
        for doc in policies
        for st in as_list(doc["Statement"])
        if st["Effect"] == "Deny"
        and st.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in as_list(st["Action"])
        and str(st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
    ]
    assert denies, f"{bucket}: no statement denying every request made without TLS"
    covered = {json.dumps(r, sort_keys=True) for st in denies for r in as_list(st["Resource"])}
    assert covered >= {
        json.dumps({"Fn::GetAtt": [bucket, "Arn"]}, sort_keys=True),
        json.dumps({"Fn::Sub": "${" + bucket + ".Arn}/*"}, sort_keys=True),
    }, f"{bucket}: the TLS-only deny must cover the bucket and its objects"
    # No statement of a bucket policy grants anything to anyone.
    assert all(st["Effect"] == "Deny" for doc in policies for st in as_list(doc["Statement"]))


def test_the_raw_bucket_keeps_every_version(translated):
    assert translated["Resources"]["RawBucket"]["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_the_state_table_and_the_alert_topic_are_encrypted(translated):
    (table,) = resources(translated, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True
    for topic in resources(translated, "AWS::SNS::Topic").values():
        assert topic["Properties"].get("KmsMasterKeyId")


def test_secrets_are_encrypted_and_the_template_holds_no_secret_value(translated):
    secrets = resources(translated, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"AppConfigSecret", "TokenSecret"}
    keys = resources(translated, "AWS::KMS::Key")
    for name, secret in secrets.items():
        kms = secret["Properties"].get("KmsKeyId")
        # Secrets Manager always encrypts; without KmsKeyId it uses the account's AWS-managed
        # aws/secretsmanager key (the case today). A customer key, when set, must be one of ours.
        assert kms is None or kms.get("Ref") in keys or kms.get("Fn::GetAtt", [None])[0] in keys, name
    config = json.loads(secrets["AppConfigSecret"]["Properties"]["SecretString"])
    assert set(config) == {"app_id", "secret_key", "redirect_uri", "pin"}
    assert all(value == "" for value in config.values()), "the template must not carry app credentials"
    assert json.loads(secrets["TokenSecret"]["Properties"]["SecretString"]) == {}


def test_functions_get_secrets_by_id_never_as_environment_values(translated):
    for name, fn in resources(translated, "AWS::Lambda::Function").items():
        env = (fn["Properties"].get("Environment") or {}).get("Variables") or {}
        overrides = set(env) & set(APP_CONFIG_ENV.values())
        assert not overrides, f"{name}: {sorted(overrides)} would put app credentials in the function's config"
        for var, value in env.items():
            if "SECRET" in var or "TOKEN" in var:
                assert var.endswith(("_SECRET_ID", "_TOPIC_ARN")), f"{name}: {var}"
                assert isinstance(value, dict) and "Ref" in value, f"{name}: {var} is not a reference"


# ------------------------------------------------------------------------------------------ logs


def test_every_function_has_its_own_log_group_with_a_retention(translated):
    groups = resources(translated, "AWS::Logs::LogGroup")
    by_name = {json.dumps(g["Properties"].get("LogGroupName"), sort_keys=True): g for g in groups.values()}
    functions = resources(translated, "AWS::Lambda::Function")
    assert functions
    for name, fn in functions.items():
        assert "FunctionName" not in fn["Properties"], f"{name}: the log group name assumes a generated name"
        logging_config = fn["Properties"].get("LoggingConfig") or {}
        if "LogGroup" in logging_config:
            group = groups[logging_config["LogGroup"]["Ref"]]
        else:
            group = by_name.get(json.dumps({"Fn::Sub": f"/aws/lambda/${{{name}}}"}, sort_keys=True))
        assert group is not None, f"{name}: no log group /aws/lambda/<function> in the template"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    retention = translated["Parameters"]["LogRetentionDays"]
    assert retention["Default"] in retention["AllowedValues"]
    assert all(g["Properties"].get("RetentionInDays") for g in groups.values()), "a log group kept forever"


# ------------------------------------------------------------------------------------------ HTTP API


def test_the_http_api_is_throttled(translated):
    stages = resources(translated, "AWS::ApiGatewayV2::Stage")
    assert stages
    for name, stage in stages.items():
        props = stage["Properties"]
        default = props.get("DefaultRouteSettings") or {}
        routes = props.get("RouteSettings") or {}
        throttled = [default, *routes.values()]
        assert any(s.get("ThrottlingBurstLimit") and s.get("ThrottlingRateLimit") for s in throttled), name
        limits = default or next(iter(routes.values()))
        assert 0 < limits["ThrottlingRateLimit"] <= 50 and 0 < limits["ThrottlingBurstLimit"] <= 100, name


# ------------------------------------------------------------------------------------------ asynchronous invocations


def test_what_a_schedule_invokes_keeps_its_failed_events_in_a_queue_that_alarms(translated):
    """A schedule invokes a function asynchronously: an event that fails every attempt must land somewhere a person
    hears of (the morning login check: otherwise nobody gets the login link and nobody knows why)."""
    res = translated["Resources"]
    functions = resources(translated, "AWS::Lambda::Function")
    targets = [s["Properties"]["Target"]["Arn"] for s in resources(translated, "AWS::Scheduler::Schedule").values()]
    scheduled = {t["Fn::GetAtt"][0] for t in targets if "Fn::GetAtt" in t and t["Fn::GetAtt"][0] in functions}
    assert "RefreshTokensFunction" in scheduled
    alarms = resources(translated, "AWS::CloudWatch::Alarm").values()
    for name in scheduled:
        target = res[name]["Properties"].get("DeadLetterConfig", {}).get("TargetArn")
        assert target and target["Fn::GetAtt"][1] == "Arn", f"{name}: no dead-letter queue for its failed events"
        queue = target["Fn::GetAtt"][0]
        assert res[queue]["Type"] == "AWS::SQS::Queue" and res[queue]["Properties"]["SqsManagedSseEnabled"] is True
        assert res[queue]["Properties"]["MessageRetentionPeriod"] == 14 * 86_400
        dimension = {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        watching = [a["Properties"] for a in alarms if dimension in a["Properties"].get("Dimensions", [])]
        assert len(watching) == 1, f"{queue}: no alarm watches it"
        alarm = watching[0]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "NumberOfMessagesSent")
        assert alarm["Statistic"] == "Sum"  # each new dead letter alarms again; a queue depth would stay in ALARM
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": "TokenAlertTopic"}]
        role = res[res[name]["Properties"]["Role"]["Fn::GetAtt"][0]]["Properties"]
        statements = [s for p in role.get("Policies", []) for s in as_list(p["PolicyDocument"]["Statement"])]
        assert any("sqs:SendMessage" in as_list(s["Action"]) and s["Resource"] == target for s in statements), name


# ------------------------------------------------------------------------------------------ checkov


def checkov_binary() -> str:
    configured = os.environ.get("PRICEFEED_CHECKOV") or str(ROOT / ".venv-checkov" / "bin" / "checkov")
    if Path(configured).is_file():
        return configured
    reason = f"no checkov at {configured}: run `make checkov-venv`"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("PRICEFEED_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (required: CI=true or PRICEFEED_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def checkov(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([checkov_binary(), "--config-file", ".checkov.yaml"], cwd=where, capture_output=True,
                          text=True, timeout=300, check=False)


def test_checkov_passes_and_would_catch_a_scheduled_function_without_a_dead_letter_queue(tmp_path):
    found = checkov(ROOT)
    assert found.returncode == 0 and "Failed checks: 0" in found.stdout, found.stdout + found.stderr
    assert "Parsing errors" not in found.stdout and "Passed checks: 0," not in found.stdout  # it read the template

    shutil.copy(ROOT / ".checkov.yaml", tmp_path)
    template = (ROOT / "template.yaml").read_text()
    queue = r"\n      DeadLetterQueue:\n        Type: SQS\n        TargetArn: !GetAtt LoginCheckDeadLetterQueue.Arn"
    without = re.sub(queue, "", template)
    assert without != template
    (tmp_path / "template.yaml").write_text(without)
    found = checkov(tmp_path)
    assert found.returncode != 0 and "CKV_AWS_116" in found.stdout and "RefreshTokensFunction" in found.stdout


def test_every_skipped_check_says_why():
    config = yaml.safe_load((ROOT / ".checkov.yaml").read_text())
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    assert config["skip-check"], "nothing skipped: then drop this test"
    for check in config["skip-check"]:
        [line] = [line for line in lines if re.match(rf"\s*- {check}\b", line)]
        assert len(line.partition("#")[2].strip()) > 20, f"{check}: no reason"
    for name, res in load_template()["Resources"].items():
        for skip in (res.get("Metadata") or {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]) and len(skip.get("comment", "")) > 20, (name, skip)
