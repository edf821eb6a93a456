"""Deploy the translated template onto moto: CloudFormation first, then whatever moto silently skipped.

Nothing here lists resources by hand: every resource comes from the template, and a resource that
neither moto's CloudFormation nor a provisioner below created fails the deployment loudly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from pricefeed.local.intrinsics import Resolver, Unresolvable

ACCOUNT = "123456789012"


class DeployError(RuntimeError):
    """The local deployment does not match the template."""


def _arn(clients, region: str, kind: str, physical: str) -> str:
    if kind == "AWS::Lambda::Function":
        return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{physical}"
    if kind == "AWS::S3::Bucket":
        return f"arn:aws:s3:::{physical}"
    if kind == "AWS::Logs::LogGroup":
        return f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{physical}:*"  # CloudFormation's form, with ":*"
    if kind == "AWS::SQS::Queue":  # moto's physical id is the queue URL
        return clients("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
    if kind == "AWS::IAM::Role":
        return clients("iam").get_role(RoleName=physical)["Role"]["Arn"]
    if kind in ("AWS::StepFunctions::StateMachine", "AWS::SecretsManager::Secret", "AWS::Lambda::LayerVersion"):
        return physical
    raise Unresolvable(f"GetAtt Arn of {kind}")


class Deployment:
    """What got deployed: logical id → physical id, plus a resolver over the live stack."""

    def __init__(self, cfn: dict, clients: Callable[[str], Any], *, stack: str, region: str, parameters: dict):
        self.cfn = cfn
        self.clients = clients
        self.stack = stack
        self.region = region
        self.physical: dict[str, str] = {}
        self.extra_atts: dict[tuple[str, str], str] = {}
        params = {k: str(v.get("Default", "")) for k, v in (cfn.get("Parameters") or {}).items()}
        params.update({k: str(v) for k, v in parameters.items()})
        self.refs: dict[str, Any] = {
            **params,
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": stack,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT}:stack/{stack}/local",
        }
        self.resolver = Resolver(self.refs, self._get_att)

    def resources(self) -> dict[str, dict]:
        return self.cfn["Resources"]

    def _get_att(self, logical: str, attr: str) -> Any:
        if (logical, attr) in self.extra_atts:
            return self.extra_atts[(logical, attr)]
        if logical not in self.physical:
            raise Unresolvable(f"GetAtt {logical}.{attr}")
        kind = self.resources()[logical]["Type"]
        if attr == "Arn":
            return _arn(self.clients, self.region, kind, self.physical[logical])
        if attr == "QueueName" and kind == "AWS::SQS::Queue":
            return self.physical[logical].rsplit("/", 1)[-1]
        if attr == "Name" and kind == "AWS::StepFunctions::StateMachine":
            return self.physical[logical].rsplit(":", 1)[-1]
        raise Unresolvable(f"GetAtt {logical}.{attr}")

    def record(self, logical: str, physical: str) -> None:
        self.physical[logical] = physical
        self.refs[logical] = physical

    def props(self, logical: str) -> dict:
        return self.resolver.resolve(self.resources()[logical].get("Properties") or {})

    # ------------------------------------------------------------------ CloudFormation
    def create_stack(self, parameters: dict) -> None:
        cf = self.clients("cloudformation")
        cf.create_stack(
            StackName=self.stack,
            TemplateBody=json.dumps(self.cfn),
            Parameters=[{"ParameterKey": k, "ParameterValue": str(v)} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        status = cf.describe_stacks(StackName=self.stack)["Stacks"][0]["StackStatus"]
        if status != "CREATE_COMPLETE":
            raise DeployError(f"stack {self.stack} ended {status}")
        for page in cf.get_paginator("list_stack_resources").paginate(StackName=self.stack):
            for r in page["StackResourceSummaries"]:
                if r.get("PhysicalResourceId"):
                    self.record(r["LogicalResourceId"], r["PhysicalResourceId"])

    # ------------------------------------------------------------------ what moto skipped
    def fill_gaps(self) -> list[str]:
        """Provision every resource moto's CloudFormation skipped; returns their logical ids."""
        conditions = self.cfn.get("Conditions") or {}
        pending = [
            k
            for k, r in self.resources().items()
            if k not in self.physical
            and r["Type"] not in _PERMISSIONLESS
            and ("Condition" not in r or self.resolver.condition(r["Condition"], conditions))
        ]
        for logical, res in self.resources().items():
            if res["Type"] in _PERMISSIONLESS and logical not in self.physical:
                self.record(logical, f"{self.stack}-{logical}")  # Lambda permissions have no physical id
        created: list[str] = []
        while pending:
            progress = False
            for logical in list(pending):
                kind = self.resources()[logical]["Type"]
                provision = PROVISIONERS.get(kind)
                if provision is None:
                    raise DeployError(f"{logical} ({kind}) was not created by moto and the local stack cannot make it")
                try:
                    props = self.props(logical)
                except Unresolvable:
                    continue  # depends on something not made yet
                self.record(logical, provision(self, logical, props))
                pending.remove(logical)
                created.append(logical)
                progress = True
            if not progress:
                raise DeployError(f"cannot resolve references of {pending}")
        return created

    def restore_dropped_properties(self) -> None:
        """Apply properties moto's CloudFormation accepts but ignores (today: a DynamoDB table's TTL)."""
        for logical, res in self.resources().items():
            if res["Type"] != "AWS::DynamoDB::Table" or logical not in self.physical:
                continue
            ttl = self.props(logical).get("TimeToLiveSpecification")
            if ttl and ttl.get("Enabled"):
                self.clients("dynamodb").update_time_to_live(
                    TableName=self.physical[logical],
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )

    def unique_name(self, logical: str) -> str:
        return f"{self.stack}-{logical}-{uuid.uuid4().hex[:8]}"


def _secret(d: Deployment, logical: str, p: dict) -> str:
    kwargs = {"Name": p.get("Name") or d.unique_name(logical), "Description": p.get("Description", "")}
    if "SecretString" in p:
        kwargs["SecretString"] = p["SecretString"]
    elif "GenerateSecretString" in p:
        kwargs["SecretString"] = json.dumps({"password": uuid.uuid4().hex})
    return d.clients("secretsmanager").create_secret(**kwargs)["ARN"]


def _bucket_policy(d: Deployment, logical: str, p: dict) -> str:
    # moto enforces bucket policies, and the local endpoint is plain HTTP on loopback (the ASL interpreter
    # only speaks http://localhost), so a TLS-only Deny would refuse every local request: leave it out here.
    document = dict(p["PolicyDocument"])
    document["Statement"] = [
        s for s in document.get("Statement", []) if "aws:SecureTransport" not in json.dumps(s.get("Condition", {}))
    ]
    if document["Statement"]:
        d.clients("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(document))
    return f"{p['Bucket']}-policy"


def _glue_database(d: Deployment, logical: str, p: dict) -> str:
    d.clients("glue").create_database(DatabaseInput=p["DatabaseInput"])
    return p["DatabaseInput"]["Name"]


def _glue_table(d: Deployment, logical: str, p: dict) -> str:
    d.clients("glue").create_table(DatabaseName=p["DatabaseName"], TableInput=p["TableInput"])
    return p["TableInput"]["Name"]


def _athena_workgroup(d: Deployment, logical: str, p: dict) -> str:
    config = dict(p.get("WorkGroupConfiguration") or {})
    if "BytesScannedCutoffPerQuery" in config:  # a Number parameter arrives as a string
        config["BytesScannedCutoffPerQuery"] = int(config["BytesScannedCutoffPerQuery"])
    name = p.get("Name") or d.unique_name(logical)
    d.clients("athena").create_work_group(Name=name, Description=p.get("Description", ""), Configuration=config)
    return name


def _glue_job(d: Deployment, logical: str, p: dict) -> str:
    name = p.pop("Name", None) or d.unique_name(logical)
    d.clients("glue").create_job(Name=name, **p)
    return name


def _schedule(d: Deployment, logical: str, p: dict) -> str:
    name = p.pop("Name", None) or d.unique_name(logical)
    d.clients("scheduler").create_schedule(Name=name, **p)
    return name


def _http_api(d: Deployment, logical: str, p: dict) -> str:
    api = d.clients("apigatewayv2").create_api(Name=p.get("Name") or d.unique_name(logical), ProtocolType="HTTP")
    d.extra_atts[(logical, "ApiEndpoint")] = api["ApiEndpoint"]
    d.api_bodies = {**getattr(d, "api_bodies", {}), logical: p.get("Body") or {}}
    return api["ApiId"]


def _http_stage(d: Deployment, logical: str, p: dict) -> str:
    d.clients("apigatewayv2").create_stage(
        ApiId=p["ApiId"], StageName=p["StageName"], AutoDeploy=bool(p.get("AutoDeploy"))
    )
    return p["StageName"]


def _alarm(d: Deployment, logical: str, p: dict) -> str:
    name = p.pop("AlarmName", None) or d.unique_name(logical)
    # A !Ref to a Number parameter resolves to its string form; the API wants numbers.
    for field in ("Threshold", "Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if isinstance(p.get(field), str):
            p[field] = float(p[field]) if field == "Threshold" else int(p[field])
    d.clients("cloudwatch").put_metric_alarm(AlarmName=name, **p)
    return name


def _dashboard(d: Deployment, logical: str, p: dict) -> str:
    name = p.get("DashboardName") or d.unique_name(logical)
    d.clients("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=p["DashboardBody"])
    return name


def _log_group(d: Deployment, logical: str, p: dict) -> str:
    name = p.get("LogGroupName") or d.unique_name(logical)
    logs = d.clients("logs")
    logs.create_log_group(logGroupName=name)
    if p.get("RetentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(p["RetentionInDays"]))
    return name


PROVISIONERS: dict[str, Callable[[Deployment, str, dict], str]] = {
    "AWS::SecretsManager::Secret": _secret,
    "AWS::S3::BucketPolicy": _bucket_policy,
    "AWS::Glue::Database": _glue_database,
    "AWS::Glue::Table": _glue_table,
    "AWS::Glue::Job": _glue_job,
    "AWS::Athena::WorkGroup": _athena_workgroup,
    "AWS::Scheduler::Schedule": _schedule,
    "AWS::ApiGatewayV2::Api": _http_api,
    "AWS::ApiGatewayV2::Stage": _http_stage,
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::CloudWatch::Dashboard": _dashboard,
    "AWS::Logs::LogGroup": _log_group,
}
# moto "creates" these without a physical id. Permissions: IAM is not enforced locally. Layers: moto
# drops them; locally the functions import the same library from this process's environment.
_PERMISSIONLESS = {"AWS::Lambda::Permission", "AWS::Lambda::LayerVersion"}
