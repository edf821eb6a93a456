"""Data at rest, logs, the public HTTP API and the login pages: the security settings template.yaml must keep.

Pure checks on the SAM-translated template (``translated``), plus the OAuth routes exercised through the
local stack's HTTP API (the session ``pipeline``): no page ever carries a token, and a callback with
missing parameters or a replayed state is a 400.
"""

from __future__ import annotations

import json

import pytest

from pricefeed.auth.store import APP_CONFIG_ENV

ENCRYPTION_ALGORITHMS = {"AES256", "aws:kms", "aws:kms:dsse"}


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
