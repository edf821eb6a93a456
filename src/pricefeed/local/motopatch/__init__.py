"""Every reach into moto's internals, in this package (moto is pinned; tests/unit/test_motopatch.py fails
loudly when an upgrade moves any of these).

1. Lambda: moto runs functions in Docker; we route ``LambdaFunction._invoke_lambda`` to an in-process
   invoker instead (the real handler, its own environment).
2. Glue: moto's job runs tick through states, "completed" as they start; we run the real script, note outcome and end.
3. Step Functions: ``glue:startJobRun.sync`` needs a callback endpoint to clean up; the interpreter
   sleeps for real through Retry intervals, so we scale those sleeps (the production policy in the
   ASL file is untouched); and we create state machines in the executing backend (CloudFormation
   puts them in the non-executing one); an execution started without a name gets a UUID, as on AWS.
4. DynamoDB: moto's server handles requests on many threads and does not apply a conditional write
   atomically, which real DynamoDB does per item; the account-wide rate budget and the refresh lease
   rely on that, so DynamoDB actions run one at a time.
5. S3: ``S3Backend.put_object`` refuses a key over 1,024 bytes with HTTP 400 ``KeyTooLongError`` as S3 does
   (moto stores it), and (a fault hook for tests) keys matching a pattern given to :func:`fail_s3_writes`
   with HTTP 500 ``InternalError``, as S3 itself would (SDKs retry it, then fail).
6. Emulator overhead no AWS service has (:func:`speed_up`, also for tests' in-process ``mock_aws``): the
   server's request handler leaves Nagle's algorithm on, so a response written in pieces waits for the
   client's delayed ACK; it lists moto's package folder on every request to find the service; S3 reloads
   its URL module on every request; and every backend lookup compares the registry of backends by value
   under a global lock. Measured on one in-process server (GET/PUT of a 5 KB object): 21/28 ms a request
   before, 9/9 ms after. And a prefixed LIST copied and scanned the whole bucket (~190 ms at 150,000 keys):
   ``s3_index`` keeps each bucket's key names sorted. Behaviour is unchanged; only the waiting goes.
7. Secrets Manager (:func:`make_faithful`, also for tests' ``mock_aws``): after ``UpdateSecretVersionStage`` moved
   ``AWSCURRENT``, moto's ``GetSecretValue`` answers the old version; AWS the new (the refresh's compare-and-set).
8. Step Functions' Distributed Map ResultWriter writes the result files AWS writes (``result_writer``).
9. Glue's batch catalog calls refuse more entries than AWS takes (``limits``: BatchCreatePartition 100, ...).
10. Lambda's asynchronous invocation (``async_invoke``): 202 at once, the event on its own thread, two retries, then
    the function's dead-letter queue.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from moto.awslambda import models as lambda_models
from moto.core.config import default_user_config
from moto.dynamodb import responses as dynamodb_responses
from moto.s3 import models as s3_models
from moto.secretsmanager import models as secretsmanager_models
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback,
    state_task_service_glue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from werkzeug.exceptions import HTTPException

from pricefeed.local.motopatch import async_invoke, athena, glue_runs, history, limits, result_writer
from pricefeed.local.motopatch.speed import speed_up
from pricefeed.local.motopatch.state_machines import create_executable_state_machine as create_executable_state_machine

# (function ARN or name) → callable(event) -> (payload JSON, errored)
LambdaInvoker = Callable[[Any], tuple[str, bool]]
_lambda_invokers: dict[str, LambdaInvoker] = {}
_retry_scale = [1.0]
_applied = threading.Lock()
_applied_speed = threading.Lock()
_is_applied = False
_dynamodb_lock = threading.RLock()
# (bucket or None for any, compiled key pattern) → how many PutObject calls it refused
_s3_write_faults: dict[tuple[str | None, re.Pattern[str]], int] = {}
_s3_faults_lock = threading.Lock()
#: S3 refuses longer keys (UTF-8 bytes) with HTTP 400 ``KeyTooLongError``; moto stores them.
S3_MAX_KEY_BYTES = 1024


class S3Error(HTTPException):
    """An S3 error answer: HTTP ``status`` with S3's XML error document."""

    def __init__(self, key: str, *, status: int, code: str, message: str):
        self.code = status
        super().__init__(
            description=f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><Key>{xml_escape(key[:S3_MAX_KEY_BYTES])}</Key>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
        )

    def get_body(self, *args: Any, **kwargs: Any) -> str:
        return str(self.description)

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [("Content-Type", "application/xml")]


class _ScaledTime:
    """Stands in for the ``time`` module inside moto's retrier: same API, shorter sleeps."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * _retry_scale[0])


def _invoke_lambda(self, event: str | None = None) -> tuple[str, bool, str]:
    invoker = _lambda_invokers.get(self.function_arn) or _lambda_invokers.get(self.function_name)
    if invoker is None:
        return '{"errorType": "ResourceNotFoundException", "errorMessage": "no local runtime"}', True, ""
    payload, errored = invoker(event)
    return payload, errored, ""


def _named_execution(original):
    # AWS names an execution with a UUID when the caller gives none; moto leaves it None, so
    # $$.Execution.Name (our run id) would be null.
    def start_execution(self, state_machine_arn: str, name: str | None = None, *args: Any, **kwargs: Any):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    return start_execution


def _serialized(original):
    def call_action(self, *args: Any, **kwargs: Any):
        with _dynamodb_lock:
            return original(self, *args, **kwargs)

    call_action.__wrapped__ = original
    return call_action


def _checked_put_object(original):
    """PutObject as S3 checks it: the key length limit, then the test hook's refusals (docstring, item 5)."""

    def put_object(self, bucket_name: str, key_name: str, *args: Any, **kwargs: Any):
        if len(key_name.encode("utf-8")) > S3_MAX_KEY_BYTES:  # moto stores any length; S3 refuses
            raise S3Error(key_name, status=400, code="KeyTooLongError", message="Your key is too long")
        with _s3_faults_lock:
            for (bucket, pattern), refused in _s3_write_faults.items():
                if (bucket is None or bucket == bucket_name) and pattern.search(key_name):
                    _s3_write_faults[(bucket, pattern)] = refused + 1
                    message = "We encountered an internal error. Please try again."
                    raise S3Error(key_name, status=500, code="InternalError", message=message)
        return original(self, bucket_name, key_name, *args, **kwargs)

    put_object.__wrapped__ = original
    return put_object


def apply(*, retry_time_scale: float = 1.0) -> None:
    """Idempotent. Also turns on real ASL execution for the whole process."""
    global _is_applied
    with _applied:
        _retry_scale[0] = retry_time_scale
        default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True
        if _is_applied:
            return
        lambda_models.LambdaFunction._invoke_lambda = _invoke_lambda
        glue_runs.apply()
        StepFunctionsParserBackend.start_execution = _named_execution(StepFunctionsParserBackend.start_execution)
        retrier_decl.time = _ScaledTime()
        dynamodb_responses.DynamoHandler.call_action = _serialized(dynamodb_responses.DynamoHandler.call_action)
        s3_models.S3Backend.put_object = _checked_put_object(s3_models.S3Backend.put_object)
        # .sync tasks poll every 0.5 s; a tenth is plenty for a local job and keeps runs snappy.
        state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = 0.05
        # glue:startJobRun.sync crashes in moto's callback clean-up ('NoneType' has no 'interrupt_all') because
        # Glue tasks get no callback endpoint; listing the pattern gives them one (our ASL never uses it).
        state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS.add(ResourceCondition.WaitForTaskToken)
        speed_up()
        make_faithful()
        result_writer.install()
        limits.install()
        history.install()
        athena.install()
        async_invoke.install(_retry_scale)
        _is_applied = True


def make_faithful() -> None:
    """Where moto answers unlike AWS in a way this project relies on (docstring, item 7). Idempotent."""
    with _applied_speed:
        if getattr(make_faithful, "done", False):
            return
        backend = secretsmanager_models.SecretsManagerBackend
        update = backend.update_secret_version_stage

        def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
            answer = update(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
            if version_stage == "AWSCURRENT" and move_to_version_id:  # moto keys these by the keyword names
                self.secrets[secret_id].set_default_version_id(move_to_version_id)
            return answer

        backend.update_secret_version_stage = update_secret_version_stage
        make_faithful.done = True  # type: ignore[attr-defined]


def register_lambda(arn: str, name: str, invoker: LambdaInvoker, *, dead_letter_queue: str | None = None) -> None:
    """Route the function's invocations to ``invoker``; ``dead_letter_queue``: the ARN of the SQS queue its failed
    asynchronous events go to (its ``DeadLetterConfig``)."""
    _lambda_invokers[arn] = invoker
    _lambda_invokers[name] = invoker
    async_invoke.register_dead_letter_queue(arn, name, dead_letter_queue)


def fail_s3_writes(pattern: str, *, bucket: str | None = None) -> tuple[str | None, re.Pattern[str]]:
    """From now on PutObject of any key matching ``pattern`` (``re.search``; in ``bucket`` only, when given)
    fails with HTTP 500 InternalError; returns the handle :func:`stop_failing_s3_writes` takes."""
    handle = (bucket, re.compile(pattern))
    with _s3_faults_lock:
        _s3_write_faults[handle] = 0
    return handle


def stop_failing_s3_writes(handle: tuple[str | None, re.Pattern[str]]) -> int:
    """End one :func:`fail_s3_writes`; returns how many PutObject calls it refused."""
    with _s3_faults_lock:
        return _s3_write_faults.pop(handle, 0)


def publish_stack_outputs(*, account: str, region: str, stack_name: str, outputs: dict[str, str]) -> None:
    """Make DescribeStacks report the outputs the local stack resolved, as CloudFormation would: moto leaves
    out outputs that refer to resources it skipped (the secrets, the HTTP API...), which the stack makes itself.
    Lets `pricefeed --stack NAME` find the local stack exactly as it finds a deployed one."""
    from moto.cloudformation.models import cloudformation_backends
    from moto.cloudformation.parsing import Output

    stacks = cloudformation_backends[account][region].stacks.values()
    stack = next(s for s in stacks if s.name == stack_name and s.status != "DELETE_COMPLETE")
    for key, value in outputs.items():
        stack.output_map._parsed_outputs[key] = Output(key, value, "")


def quiet_moto() -> None:
    """moto narrates every request and every resource type it skips; the deploy checks those itself."""
    import logging
    import warnings

    for name in ("moto", "werkzeug", "moto.stepfunctions", "moto.cloudformation"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation.*")
