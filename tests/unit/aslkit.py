"""A harness for running ASL on patched moto in-process: scripted Lambdas, a role, a poller.

Shared by tests/unit/test_motopatch.py and tests/unit/test_error_routing.py.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable

import boto3

from pricefeed.local import motopatch

REGION = "ap-south-1"
DEADLINE_S = 20.0  # generous: every run finishes in well under a second once patched


def make_role() -> str:
    iam = boto3.client("iam", region_name=REGION)
    try:
        return iam.get_role(RoleName="pricefeed-test")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return iam.create_role(RoleName="pricefeed-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def wait_for(sfn, execution_arn: str, deadline_s: float = DEADLINE_S) -> dict:
    """Poll until the execution leaves RUNNING; the deadline turns a hang (e.g. an unscaled retry) into a failure."""
    deadline = time.monotonic() + deadline_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return {k: described.get(k) for k in ("status", "output", "error", "cause", "name")}
        assert time.monotonic() < deadline, f"execution still RUNNING after {deadline_s}s: {execution_arn}"
        time.sleep(0.02)


def account_id() -> str:
    return boto3.client("sts", region_name=REGION).get_caller_identity()["Account"]


def create_function(name: str, invoker: Callable) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    raise RuntimeError('must not run')\n")
    fn = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=make_role(),
        Handler="app.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    motopatch.register_lambda(fn["FunctionArn"], name, invoker)
    return fn["FunctionArn"]


class Script:
    """An in-process Lambda: answers with the scripted errors in turn, then echoes the event; records calls."""

    def __init__(self, *error_types: str):
        self.errors = list(error_types)
        self.events: list = []

    def __call__(self, event) -> tuple[str, bool]:
        self.events.append(event)
        if self.errors:
            kind = self.errors.pop(0)
            return json.dumps({"errorType": kind, "errorMessage": f"scripted {kind}"}), True
        return json.dumps({"echo": event}), False


