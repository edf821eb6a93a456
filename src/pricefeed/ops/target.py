"""Which stack a command talks to: the local one of `pricefeed local up`, or a deployed CloudFormation stack.

A deployed stack is found by name (``--stack`` or ``PRICEFEED_STACK``) with the usual AWS credential chain
(``--profile``/``AWS_PROFILE``, ``--region``/``AWS_REGION``); its outputs name the state machine, buckets,
secrets and table. ``AWS_ENDPOINT_URL`` is honoured by boto3 itself, which is how the tests aim ``--stack``
at the local stack's emulated CloudFormation.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pricefeed.errors import InvalidInput, PricefeedError

#: Written by `pricefeed local up` in the directory it runs from, removed when it stops.
STATE_FILE = Path(".pricefeed") / "local.json"
LOCAL_REGION = "ap-south-1"
#: The local stack's CloudFormation name when its state file does not say (LocalStack's default).
LOCAL_STACK_NAME = "pricefeed"
#: Outputs every command may rely on (template.yaml's Outputs).
REQUIRED_OUTPUTS = ("StateMachineArn", "RawBucketName", "ProcessedBucketName", "TokenSecretArn")


class StackNotFound(PricefeedError):
    """No such stack, or it lacks the outputs of a pricefeed stack."""


@dataclass(frozen=True)
class Target:
    """A stack and how to reach it. ``name`` is "local" for the stack of `pricefeed local up`."""

    name: str
    outputs: dict[str, str]
    session: Any = field(repr=False)
    endpoint_url: str | None = None
    stack_name: str = ""  # the CloudFormation stack's name (``name`` is "local" for the local stack)

    @property
    def local(self) -> bool:
        return self.name == "local"

    def client(self, service: str) -> Any:
        kw = {"endpoint_url": self.endpoint_url} if self.endpoint_url else {}
        return self.session.client(service, **kw)

    def parameters(self) -> dict[str, str]:
        """The stack's parameters, as CloudFormation has them (a botocore error when they cannot be read)."""
        described = self.client("cloudformation").describe_stacks(StackName=self.stack_name or self.name)
        return {p["ParameterKey"]: p["ParameterValue"] for p in described["Stacks"][0].get("Parameters") or []}

    def output(self, key: str) -> str:
        try:
            return self.outputs[key]
        except KeyError:
            raise StackNotFound(f"stack {self.name} has no output {key}: redeploy it from this version") from None


def resolve(
    stack: str | None = None,
    *,
    profile: str | None = None,
    region: str | None = None,
    state_file: Path = STATE_FILE,
) -> Target:
    """``stack`` (else ``PRICEFEED_STACK``) names a deployed stack; without one, the local stack is used."""
    import boto3

    stack = stack or os.environ.get("PRICEFEED_STACK") or None
    if stack is None:
        if not state_file.exists():
            raise StackNotFound(
                "no stack: start one with `pricefeed local up` (in another terminal), "
                "or name a deployed one with --stack NAME (and --profile/--region for its account)"
            )
        state = json.loads(state_file.read_text())
        session = boto3.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto takes any credentials
            region_name=LOCAL_REGION,
        )
        outputs = {k: v for k, v in state.items() if isinstance(v, str) and k not in ("endpoint", "stack_name")}
        stack_name = state.get("stack_name") or LOCAL_STACK_NAME
        return Target("local", outputs, session, endpoint_url=state["endpoint"], stack_name=stack_name)
    if not stack.replace("-", "").isalnum() or not stack[0].isalpha() or len(stack) > 128:
        raise InvalidInput(f"--stack {stack!r} is not a CloudFormation stack name")
    import botocore.exceptions

    try:
        session = boto3.Session(profile_name=profile, region_name=region or os.environ.get("AWS_REGION") or None)
    except botocore.exceptions.ProfileNotFound:
        raise InvalidInput(f"--profile {profile!r} is not in your AWS config (~/.aws/config)") from None
    if session.region_name is None:
        raise InvalidInput(f"no AWS region for stack {stack}: pass --region or set AWS_REGION")
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except botocore.exceptions.NoCredentialsError:
        raise StackNotFound("no AWS credentials: pass --profile or run `aws configure` / `aws sso login`") from None
    except botocore.exceptions.ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise StackNotFound(f"stack {stack} in {session.region_name}: {message or exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
    missing = [k for k in REQUIRED_OUTPUTS if k not in outputs]
    if missing:
        raise StackNotFound(f"stack {stack} is not a pricefeed stack (no output {', '.join(missing)})")
    return Target(stack, outputs, session, stack_name=stack)


def aws_reason(exc: Exception) -> str:
    """An AWS error in a few words for a message (the code and AWS's text), never a traceback."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")
    return type(exc).__name__
