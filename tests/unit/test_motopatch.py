"""motopatch reaches into moto's internals: these tests fail loudly when a moto upgrade moves them.

Two kinds of test:
- shape: every attribute motopatch replaces still exists, in a fresh interpreter (unpatched moto),
  with the kind and signature the patch assumes;
- behaviour: after ``motopatch.apply(retry_time_scale=0.0)``, under ``mock_aws`` with real ASL
  execution, the patched paths do what the local stack relies on.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable

import boto3
import pytest
from aslkit import DEADLINE_S, REGION, Script, account_id, create_function, make_role, wait_for

from pricefeed.local import motopatch
from pricefeed.local.motopatch import glue_runs

# Runs in a fresh interpreter, so it sees moto exactly as installed (this process may already be patched).
_PROBE = r"""
import inspect, json, time
from moto.awslambda import models as lambda_models
from moto.core.config import default_user_config
from moto.glue import models as glue_models
from moto.moto_api._internal.managed_state_model import ManagedState
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_callback, state_task_service_glue,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import resource_eval_s3
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser import models as sfn_parser_models
from moto.s3 import models as s3_models
from moto.sqs import models as sqs_models
from moto.moto_server import threaded_moto_server, werkzeug_app
from moto import backends
from moto.core.base_backend import BackendDict
import socketserver
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser.asl.eval import environment as sfn_environment
from moto.stepfunctions.parser.asl.eval.event import event_manager as sfn_events
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path
from moto.stepfunctions.parser.asl.component.common.path import result_path as sfn_result_path


def params(func):
    return [
        {"name": p.name, "kind": p.kind.name, "has_default": p.default is not inspect.Parameter.empty,
         "default": repr(p.default) if p.default is not inspect.Parameter.empty else None}
        for p in inspect.signature(func).parameters.values()
    ]


backend_cls = sfn_parser_models.StepFunctionsParserBackend
backend = sfn_parser_models.stepfunctions_parser_backends["123456789012"]["ap-south-1"]
glue_service = state_task_service_glue.StateTaskServiceGlue()
run = glue_models.FakeJobRun(job_name="probe")
out = {
    "invoke_lambda": params(lambda_models.LambdaFunction._invoke_lambda),
    "invoke_lambda_is_function": inspect.isfunction(lambda_models.LambdaFunction.__dict__.get("_invoke_lambda")),
    "invoke_calls_invoke_lambda": "self._invoke_lambda(event="
        in inspect.getsource(lambda_models.LambdaFunction.invoke),
    "lambda_invoke": params(lambda_models.LambdaFunction.invoke),
    "invoke_reads_the_invocation_type": 'request_headers.get("x-amz-invocation-type"'
        in inspect.getsource(lambda_models.LambdaFunction.invoke),
    "sqs_send_message": params(sqs_models.SQSBackend.send_message),
    "sqs_backends_type": type(sqs_models.sqs_backends).__name__,
    "start_job_run": params(glue_models.FakeJob.start_job_run),
    "start_job_run_is_function": inspect.isfunction(glue_models.FakeJob.__dict__.get("start_job_run")),
    "job_runs_attr": "self.job_runs" in inspect.getsource(glue_models.FakeJob.__init__),
    "run_timeout_is_effective": "timeout=timeout or self.timeout" in inspect.getsource(
        glue_models.FakeJob.start_job_run
    ) and "self.timeout = timeout" in inspect.getsource(glue_models.FakeJobRun.__init__),
    "job_run_as_dict": params(glue_models.FakeJobRun.as_dict),
    "job_run_is_managed_state": issubclass(glue_models.FakeJobRun, ManagedState),
    "job_run_attrs": {
        a: hasattr(run, a) for a in ("job_run_id", "arguments", "_transitions", "_status", "completed_on")
    },
    "job_run_completed_on_shown": run.as_dict().get("CompletedOn") is run.completed_on,
    "glue_utcnow": callable(getattr(glue_models, "utcnow", None)),
    "job_run_state_from_status": run.as_dict().get("JobRunState") == run.status,
    "retrier_time_is_time_module": retrier_decl.time is time,
    "retrier_sleeps_via_module_time": "time.sleep(" in inspect.getsource(retrier_decl.RetrierDecl._eval_body),
    "sync_delay": state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK,
    "sync_loop_reads_module_delay": "time.sleep(_DELAY_SECONDS_SYNC_CONDITION_CHECK)" in inspect.getsource(
        state_task_service_callback.StateTaskServiceCallback._eval_sync),
    "glue_patterns_type": type(state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS).__name__,
    "glue_patterns": sorted(str(c) for c in state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS),
    "glue_service_shares_pattern_set": glue_service._supported_integration_patterns
        is state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS,
    "wait_for_task_token": str(ResourceCondition.WaitForTaskToken),
    "result_writer_put_object": params(resource_eval_s3.ResourceEvalS3._handle_put_object),
    "result_writer_pops_parameters_then_results": inspect.getsource(
        resource_eval_s3.ResourceEvalS3._handle_put_object).count("env.stack.pop()") == 2,
    "result_writer_map_run_record": "map_run_record_pool_manager.get_all().pop()" in inspect.getsource(
        resource_eval_s3.ResourceEvalS3._handle_put_object),
    "result_writer_body": [l.strip() for l in inspect.getsource(
        result_writer_decl.ResultWriter._eval_body).splitlines()[1:]],
    "parser_backends_type": type(sfn_parser_models.stepfunctions_parser_backends).__name__,
    "parser_backend_is_class": type(backend) is backend_cls,
    "create_state_machine": params(backend_cls.create_state_machine),
    "state_machines_is_list": isinstance(backend.state_machines, list),
    "start_execution": params(backend_cls.start_execution),
    "default_user_config_is_dict": isinstance(default_user_config, dict),
    "glue_batch_calls": {name: params(getattr(glue_models.GlueBackend, name)) for name in (
        "batch_create_partition", "batch_update_partition", "batch_get_partition", "batch_delete_partition")},
    "s3_put_object": params(s3_models.S3Backend.put_object),
    "s3_put_object_is_function": inspect.isfunction(s3_models.S3Backend.__dict__.get("put_object")),
    "handler_is_a_stream_handler": issubclass(werkzeug_app.MotoRequestHandler, socketserver.StreamRequestHandler),
    "handler_nagle": werkzeug_app.MotoRequestHandler.disable_nagle_algorithm,
    "server_uses_the_handler": "request_handler=MotoRequestHandler"
        in inspect.getsource(threaded_moto_server.ThreadedMotoServer._server_entry),
    "dispatcher_reads_the_module_list": "backends.list_of_moto_modules()"
        in inspect.getsource(werkzeug_app.DomainDispatcherApplication.get_backend_for_host),
    "moto_modules": list(backends.list_of_moto_modules()),
    "s3_url_module_reloads": "reload(" in inspect.getsource(s3_models.S3Backend._url_module.fget),
    "create_account_backend": params(BackendDict._create_account_specific_backend),
    "backend_registry_is_a_list": isinstance(BackendDict._instances, list),
    "event_manager_keeps_a_list_under_a_mutex": ["self._history_event_list.append", "with self._mutex"]
        == [x for x in ["self._history_event_list.append", "with self._mutex"]
            if x in inspect.getsource(sfn_events.EventManager)],
    "add_event_returns_the_id": "return event_id" in inspect.getsource(sfn_events.EventManager.add_event),
    "environment_makes_its_event_manager": "self.event_manager = EventManager("
        in inspect.getsource(sfn_environment.Environment.__init__),
    "set_error": params(sfn_environment.Environment.set_error),
    "history_response_reads_the_whole_list": "get_execution_history(" in inspect.getsource(
        sfn_responses.StepFunctionResponse.get_execution_history),
    "paths_parse_through_module_names": ["parse(path)" in inspect.getsource(sfn_json_path.extract_json),
        "parse(self.result_path_src)" in inspect.getsource(sfn_result_path)],
}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def unpatched() -> dict:
    """What moto's internals look like before motopatch touches them."""
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"moto moved something motopatch relies on:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def names(params: list[dict]) -> list[str]:
    return [p["name"] for p in params]


# ---------------------------------------------------------------------------------------------- shape


def test_lambda_invoke_lambda_takes_an_event_and_is_what_invoke_calls(unpatched):
    assert unpatched["invoke_lambda_is_function"]
    assert names(unpatched["invoke_lambda"]) == ["self", "event"]
    assert unpatched["invoke_lambda"][1]["default"] == "None"
    assert unpatched["invoke_calls_invoke_lambda"], "LambdaFunction.invoke no longer calls self._invoke_lambda(event=…)"
    # our replacement must accept what moto passes
    ours = inspect.signature(motopatch._invoke_lambda)
    assert list(ours.parameters) == names(unpatched["invoke_lambda"])


def test_lambda_invoke_and_sqs_send_message_are_as_the_asynchronous_invocation_expects(unpatched):
    assert names(unpatched["lambda_invoke"]) == ["self", "body", "request_headers", "response_headers"]
    assert unpatched["invoke_reads_the_invocation_type"]
    assert names(unpatched["sqs_send_message"])[:4] == ["self", "queue_name", "message_body", "message_attributes"]
    assert unpatched["sqs_backends_type"] == "BackendDict"


def test_the_result_writer_is_called_as_our_stand_in_expects(unpatched):
    # a static handler taking (env, resource_runtime_part, state_credentials), which pops the writer's parameters
    # and then the Map's results, and reads the map run record the stand-in reads
    assert [p["name"] for p in unpatched["result_writer_put_object"]] == [
        "env", "resource_runtime_part", "state_credentials"
    ]
    assert unpatched["result_writer_pops_parameters_then_results"] and unpatched["result_writer_map_run_record"]
    # what our _eval_body replaces: the Parameters evaluated on the stack's top, then the resource
    assert unpatched["result_writer_body"] == [
        "self.parargs.eval(env=env)", "self.resource_eval.eval_resource(env=env)"
    ]


def test_glue_start_job_run_has_the_parameters_the_wrapper_passes_through(unpatched):
    assert unpatched["start_job_run_is_function"]
    # GlueBackend.start_job_run calls FakeJob.start_job_run with exactly these keywords
    assert set(names(unpatched["start_job_run"])) == {
        "self",
        "allocated_capacity",
        "max_capacity",
        "timeout",
        "worker_type",
        "security_configuration",
        "number_of_workers",
        "notification_property",
        "previous_run_id",
        "arguments",
    }
    assert unpatched["job_runs_attr"], "FakeJob no longer keeps its runs in self.job_runs"
    # the deadline is the run's Timeout: StartJobRun's, else the job's (moto resolves it into run.timeout)
    assert unpatched["run_timeout_is_effective"], "FakeJobRun.timeout is no longer StartJobRun's or the job's"


def test_glue_job_run_keeps_the_state_the_patch_rewrites(unpatched):
    assert names(unpatched["job_run_as_dict"]) == ["self"]
    assert unpatched["job_run_is_managed_state"]
    assert unpatched["job_run_attrs"] == dict.fromkeys(
        ("job_run_id", "arguments", "_transitions", "_status", "completed_on"), True
    )
    assert unpatched["job_run_completed_on_shown"] and unpatched["glue_utcnow"]
    assert unpatched["job_run_state_from_status"]


def test_retrier_sleeps_through_its_module_level_time(unpatched):
    assert unpatched["retrier_time_is_time_module"]
    assert unpatched["retrier_sleeps_via_module_time"], "RetrierDecl no longer sleeps via time.sleep: scaling is void"


def test_sync_poll_delay_is_a_module_float_read_by_the_sync_loop(unpatched):
    assert isinstance(unpatched["sync_delay"], float)
    assert unpatched["sync_loop_reads_module_delay"]


def test_glue_integration_patterns_are_a_shared_mutable_set(unpatched):
    assert unpatched["glue_patterns_type"] == "set"
    assert unpatched["glue_patterns"] == ["sync"], "moto changed Glue's patterns: is the patch still needed?"
    assert unpatched["glue_service_shares_pattern_set"], "adding to the module set would no longer reach the service"
    assert unpatched["wait_for_task_token"] == "waitForTaskToken"


def test_stepfunctions_parser_backend_can_create_and_start_executable_machines(unpatched):
    assert unpatched["parser_backends_type"] == "BackendDict"
    assert unpatched["parser_backend_is_class"]
    assert names(unpatched["create_state_machine"])[:4] == ["self", "name", "definition", "roleArn"]
    assert unpatched["state_machines_is_list"]
    # the execution-name wrapper passes (arn, name, *rest) positionally
    assert names(unpatched["start_execution"])[:3] == ["self", "state_machine_arn", "name"]
    assert unpatched["default_user_config_is_dict"]


def test_s3_put_object_takes_the_bucket_and_key_first(unpatched):
    assert unpatched["s3_put_object_is_function"]
    assert names(unpatched["s3_put_object"])[:4] == ["self", "bucket_name", "key_name", "value"]


def test_glue_batch_calls_take_database_table_and_entries_first(unpatched):
    for name, params in unpatched["glue_batch_calls"].items():
        assert names(params)[:3] == ["self", "database_name", "table_name"] and len(params) == 4, name


def test_the_history_patches_hook_where_moto_keeps_and_serves_events(unpatched):
    assert unpatched["event_manager_keeps_a_list_under_a_mutex"] and unpatched["add_event_returns_the_id"]
    assert unpatched["environment_makes_its_event_manager"]
    assert names(unpatched["set_error"]) == ["self", "error"]
    assert unpatched["history_response_reads_the_whole_list"]
    assert unpatched["paths_parse_through_module_names"] == [True, True], "the JSONPath parse cache hooks nothing"


def test_the_server_handler_and_dispatcher_read_what_the_speed_patches_set(unpatched):
    assert unpatched["handler_is_a_stream_handler"] and unpatched["server_uses_the_handler"]
    assert unpatched["handler_nagle"] is False, "moto now turns Nagle off itself: drop that patch"
    assert unpatched["dispatcher_reads_the_module_list"]
    assert {"s3", "dynamodb", "stepfunctions", "glue", "awslambda"} <= set(unpatched["moto_modules"])
    assert unpatched["s3_url_module_reloads"], "moto's S3 no longer reloads its URL module: drop that patch"
    assert names(unpatched["create_account_backend"]) == ["self", "account_id"]
    assert unpatched["backend_registry_is_a_list"]


GLUE_SYNC = {
    "StartAt": "Run the job",
    "States": {
        "Run the job": {
            "Type": "Task",
            "Resource": "arn:aws:states:::glue:startJobRun.sync",
            "Parameters": {"JobName": "j", "Arguments": {"--day.$": "$.day"}},
            "ResultSelector": {"job_run_id.$": "$.Id", "state.$": "$.JobRunState"},
            "ResultPath": "$.job",
            "End": True,
        }
    },
}


_UNPATCHED_GLUE_SYNC = r"""
import json, sys, time
import boto3
from moto import mock_aws

with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
    role = boto3.client("iam", region_name="ap-south-1").create_role(
        RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("glue", region_name="ap-south-1").create_job(
        Name="j", Role=role, Command={"Name": "glueetl", "ScriptLocation": "s3://b/x.py"})
    sfn = boto3.client("stepfunctions", region_name="ap-south-1")
    arn = sfn.create_state_machine(name="sm", definition=sys.argv[1], roleArn=role)["stateMachineArn"]
    run = sfn.start_execution(stateMachineArn=arn, name="e", input='{"day": "2025-11-25"}')["executionArn"]
    deadline = time.monotonic() + 20
    while sfn.describe_execution(executionArn=run)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    print(json.dumps({k: str(v) for k, v in sfn.describe_execution(executionArn=run).items()}))
"""


def test_unpatched_moto_still_crashes_on_glue_sync():
    """The Glue pattern patch exists because of this crash (moto 5.2.5); when moto fixes it, drop the patch."""
    proc = subprocess.run(
        [sys.executable, "-c", _UNPATCHED_GLUE_SYNC, json.dumps(GLUE_SYNC)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outcome = json.loads(proc.stdout.strip().splitlines()[-1])
    assert outcome["status"] == "FAILED", "moto now runs glue:startJobRun.sync unpatched: drop that patch"
    assert "interrupt_all" in outcome["cause"]


# ---------------------------------------------------------------------------------------------- behaviour


def test_apply_replaces_each_internal_once(aws):
    from moto.awslambda import models as lambda_models
    from moto.glue import models as glue_models
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback,
        state_task_service_glue,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition

    wrapped_start = glue_models.FakeJob.start_job_run
    motopatch.apply(retry_time_scale=0.0)  # idempotent: a second apply must not wrap again
    assert glue_models.FakeJob.start_job_run is wrapped_start
    assert lambda_models.LambdaFunction._invoke_lambda is motopatch._invoke_lambda
    assert isinstance(retrier_decl.time, motopatch._ScaledTime)
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK < 0.5
    assert ResourceCondition.WaitForTaskToken in state_task_service_glue._SUPPORTED_INTEGRATION_PATTERNS


def test_the_server_answers_without_waiting_on_nagle_or_a_folder_listing(aws, unpatched):
    from moto import backends
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    motopatch.apply(retry_time_scale=0.0)
    assert MotoRequestHandler.disable_nagle_algorithm is True
    assert list(backends.list_of_moto_modules()) == unpatched["moto_modules"]
    s3 = boto3.client("s3", region_name=REGION)  # the S3 URL module and the backend lookup, still answering
    s3.create_bucket(Bucket="speed", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="speed", Key="k", Body=b"v")
    assert s3.get_object(Bucket="speed", Key="k")["Body"].read() == b"v"


def test_lambda_invoke_reaches_the_registered_invoker(aws):
    script = Script()
    create_function("echo", script)

    lam = boto3.client("lambda", region_name=REGION)
    answer = lam.invoke(FunctionName="echo", Payload=b'{"symbol": "NSE:SBIN-EQ"}')

    assert script.events == [{"symbol": "NSE:SBIN-EQ"}]
    assert "FunctionError" not in answer
    assert json.loads(answer["Payload"].read()) == {"echo": {"symbol": "NSE:SBIN-EQ"}}


def test_an_errored_payload_sets_function_error(aws):
    create_function("fails", Script("InvalidSymbol"))

    answer = boto3.client("lambda", region_name=REGION).invoke(FunctionName="fails", Payload=b"{}")

    assert answer["FunctionError"] == "Handled"
    assert json.loads(answer["Payload"].read())["errorType"] == "InvalidSymbol"


def dead_letter_queue(name: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def invoke_event(name: str, payload: bytes) -> dict:
    answer = boto3.client("lambda", region_name=REGION).invoke(FunctionName=name, InvocationType="Event",
                                                               Payload=payload)
    assert answer["StatusCode"] == 202 and answer["Payload"].read() == b""  # queued: the caller learns nothing more
    assert motopatch.async_invoke.wait_for_events(DEADLINE_S)
    return answer


def test_an_event_that_fails_every_attempt_goes_to_the_dead_letter_queue_as_lambda_sends_it(aws):
    url, arn = dead_letter_queue("async-dlq")
    script = Script("Boom", "Boom", "Boom")
    fn = create_function("async-fails", script)
    motopatch.register_lambda(fn, "async-fails", script, dead_letter_queue=arn)

    invoke_event("async-fails", b'{"notice": "morning"}')

    assert script.events == [{"notice": "morning"}] * 3  # the event and Lambda's two retries
    [letter] = boto3.client("sqs", region_name=REGION).receive_message(
        QueueUrl=url, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    assert json.loads(letter["Body"]) == {"notice": "morning"}
    attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
    assert attributes.pop("RequestID") and attributes == {"ErrorCode": "200", "ErrorMessage": "scripted Boom"}


def test_an_event_that_succeeds_on_a_retry_leaves_no_dead_letter_and_one_without_a_queue_is_dropped(aws):
    url, arn = dead_letter_queue("async-dlq-2")
    flaky = Script("Boom", "Boom")
    create_function("async-flaky", flaky)
    motopatch.register_lambda(f"arn:aws:lambda:{REGION}:{account_id()}:function:async-flaky", "async-flaky", flaky,
                              dead_letter_queue=arn)
    invoke_event("async-flaky", b"{}")
    assert len(flaky.events) == 3
    assert "Messages" not in boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=url)

    lost = Script("Boom", "Boom", "Boom", "Boom")
    create_function("async-no-dlq", lost)
    invoke_event("async-no-dlq", b"{}")
    assert len(lost.events) == 3  # tried three times, then dropped as on AWS


def test_a_function_without_an_invoker_errors_instead_of_reaching_for_docker(aws):
    lam = boto3.client("lambda", region_name=REGION)
    create_function("orphan", Script())
    motopatch._lambda_invokers.pop(lam.get_function(FunctionName="orphan")["Configuration"]["FunctionArn"])
    motopatch._lambda_invokers.pop("orphan")

    answer = lam.invoke(FunctionName="orphan", Payload=b"{}")

    assert answer["FunctionError"] == "Handled"
    assert json.loads(answer["Payload"].read())["errorType"] == "ResourceNotFoundException"


def create_glue_job(runner: Callable[[dict], str | None], *, timeout_min: int | None = None) -> None:
    boto3.client("glue", region_name=REGION).create_job(
        Name="j",
        Role=make_role(),
        Command={"Name": "glueetl", "ScriptLocation": "s3://bucket/aggregate_bars.py"},
        DefaultArguments={"--raw_bucket": "raw"},
        ExecutionProperty={"MaxConcurrentRuns": 4},
        **({"Timeout": timeout_min} if timeout_min else {}),
    )
    glue_runs.register_glue_job("j", runner)


def wait_for_job_run(run_id: str) -> dict:
    glue = boto3.client("glue", region_name=REGION)
    deadline = time.monotonic() + DEADLINE_S
    while True:
        run = glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING"):
            return run
        assert time.monotonic() < deadline, f"job run still {run['JobRunState']} after {DEADLINE_S}s"
        time.sleep(0.02)


def test_a_registered_glue_runner_makes_the_run_succeed_with_merged_arguments(aws):
    calls: list[dict] = []
    create_glue_job(lambda args: calls.append(args) or None)

    run_id = boto3.client("glue", region_name=REGION).start_job_run(JobName="j", Arguments={"--dates": "2025-11-25"})[
        "JobRunId"
    ]
    run = wait_for_job_run(run_id)

    assert run["JobRunState"] == "SUCCEEDED"
    assert "ErrorMessage" not in run
    assert calls == [{"--raw_bucket": "raw", "--dates": "2025-11-25"}]  # exactly once, defaults merged


def test_a_glue_runner_that_reports_an_error_fails_the_run_with_its_message(aws):
    create_glue_job(lambda args: "no raw objects for 2025-11-25")

    run_id = boto3.client("glue", region_name=REGION).start_job_run(JobName="j")["JobRunId"]
    run = wait_for_job_run(run_id)

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "no raw objects for 2025-11-25"


def test_a_glue_runner_that_raises_fails_the_run(aws):
    def explode(args):
        raise ValueError("bad --dates")

    create_glue_job(explode)

    run = wait_for_job_run(boto3.client("glue", region_name=REGION).start_job_run(JobName="j")["JobRunId"])

    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: bad --dates"


@pytest.mark.parametrize("declared", ["job", "run"])
def test_a_glue_run_past_its_timeout_is_timeout_at_the_deadline_whatever_its_script_does_after(aws, declared):
    # Given a job whose script holds until the test lets it go, and a Timeout of 5 minutes on the job or the run
    release = threading.Event()
    create_glue_job(lambda args: release.wait(30) and None, timeout_min=5 if declared == "job" else None)
    glue_runs.set_glue_timeout("j", 0.05)  # those 5 minutes, shortened for the test
    try:
        extra = {"Timeout": 5} if declared == "run" else {}
        run_id = boto3.client("glue", region_name=REGION).start_job_run(JobName="j", **extra)["JobRunId"]
        # When the deadline passes with the script still running
        run = wait_for_job_run(run_id)
        # Then the run is TIMEOUT, naming the Timeout it had, while its script still runs
        assert (run["JobRunState"], run["ErrorMessage"]) == ("TIMEOUT", "Job run timed out after its Timeout of 5 min")
        assert not release.is_set()
    finally:
        glue_runs.set_glue_timeout("j", None)
        release.set()
        glue_runs.wait_for_glue_scripts()
    # and the script's end afterwards does not change that
    assert wait_for_job_run(run_id)["JobRunState"] == "TIMEOUT"


def retrying_machine(function_arn: str, max_attempts: int) -> str:
    # IntervalSeconds 100 and backoff 2: unscaled, even one retry outlives DEADLINE_S
    definition = {
        "StartAt": "Fetch",
        "States": {
            "Fetch": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload.$": "$"},
                "OutputPath": "$.Payload",
                "Retry": [
                    {
                        "ErrorEquals": ["TransientFyersError"],
                        "IntervalSeconds": 100,
                        "MaxAttempts": max_attempts,
                        "BackoffRate": 2.0,
                    }
                ],
                "End": True,
            }
        },
    }
    return motopatch.create_executable_state_machine(
        account=account_id(),
        region=REGION,
        name=f"retry-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        role_arn=make_role(),
    )


def run_machine(machine_arn: str, payload: dict, name: str | None = "run") -> dict:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    kwargs = {"name": name} if name else {}
    execution = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(payload), **kwargs)
    return wait_for(sfn, execution["executionArn"], DEADLINE_S)


def test_retries_with_long_intervals_run_without_waiting_them_out(aws):
    script = Script("TransientFyersError", "TransientFyersError")
    machine = retrying_machine(create_function("flaky", script), max_attempts=3)

    outcome = run_machine(machine, {"symbol": "NSE:SBIN-EQ"})

    assert outcome["status"] == "SUCCEEDED", outcome
    assert json.loads(outcome["output"]) == {"echo": {"symbol": "NSE:SBIN-EQ"}}
    assert len(script.events) == 3


def test_exhausted_retries_fail_with_the_functions_error(aws):
    script = Script(*["TransientFyersError"] * 5)
    machine = retrying_machine(create_function("down", script), max_attempts=2)

    outcome = run_machine(machine, {})

    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "TransientFyersError"
    assert len(script.events) == 3  # the first attempt and two retries


def test_an_error_the_retrier_does_not_name_is_not_retried(aws):
    script = Script("InvalidSymbol")
    machine = retrying_machine(create_function("permanent", script), max_attempts=3)

    outcome = run_machine(machine, {})

    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "InvalidSymbol"
    assert len(script.events) == 1


def test_an_execution_started_without_a_name_is_named(aws):
    machine = retrying_machine(create_function("named", Script()), max_attempts=1)

    outcome = run_machine(machine, {}, name=None)

    assert outcome["status"] == "SUCCEEDED"
    assert outcome["name"] not in (None, "None")
    uuid.UUID(outcome["name"])


def test_creating_a_machine_again_replaces_it(aws):
    first = retrying_machine(create_function("v1", Script()), max_attempts=1)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"v": 2}, "End": True}}}
    name = first.rsplit(":", 1)[1]

    second = motopatch.create_executable_state_machine(
        account=account_id(), region=REGION, name=name, definition=json.dumps(definition), role_arn=make_role()
    )

    assert second == first
    assert json.loads(run_machine(second, {})["output"]) == {"v": 2}


def test_glue_sync_task_with_a_result_selector_completes(aws):
    calls: list[dict] = []
    create_glue_job(lambda args: calls.append(args) or None)
    machine = motopatch.create_executable_state_machine(
        account=account_id(), region=REGION, name="aggregate", definition=json.dumps(GLUE_SYNC), role_arn=make_role()
    )

    outcome = run_machine(machine, {"day": "2025-11-25"})

    assert outcome["status"] == "SUCCEEDED", outcome
    job = json.loads(outcome["output"])["job"]
    assert job["state"] == "SUCCEEDED"
    runs = boto3.client("glue", region_name=REGION).get_job_runs(JobName="j")["JobRuns"]
    assert [r["Id"] for r in runs] == [job["job_run_id"]]
    assert calls == [{"--raw_bucket": "raw", "--day": "2025-11-25"}]


def test_glue_sync_task_fails_when_the_job_fails(aws):
    create_glue_job(lambda args: "aggregation failed")
    machine = motopatch.create_executable_state_machine(
        account=account_id(), region=REGION, name="aggregate", definition=json.dumps(GLUE_SYNC), role_arn=make_role()
    )

    outcome = run_machine(machine, {"day": "2025-11-25"})

    assert outcome["status"] == "FAILED"
    assert outcome["error"] == "States.TaskFailed"
    assert json.loads(outcome["cause"])["ErrorMessage"] == "aggregation failed"



def test_every_dynamodb_action_runs_under_one_lock_so_conditional_writes_are_atomic(aws, monkeypatch):
    """Real DynamoDB applies a conditional write atomically per item; moto's threads do not, so motopatch
    serializes DynamoDB actions. Proven by looking from inside moto's own put_item."""
    from moto.dynamodb.models import DynamoDBBackend

    seen: list[bool] = []
    original = DynamoDBBackend.put_item

    def spying_put_item(self, *args, **kwargs):
        seen.append(motopatch._dynamodb_lock._is_owned())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "put_item", spying_put_item)
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t", Item={"pk": {"S": "c"}}, ConditionExpression="attribute_not_exists(pk)")

    assert seen == [True]


def _s3_bucket() -> object:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="raw", CreateBucketConfiguration={"LocationConstraint": REGION})
    return s3


def test_a_failing_s3_write_answers_500_internal_error_for_matching_keys_only(aws):
    from botocore.config import Config
    from botocore.exceptions import ClientError

    s3 = _s3_bucket()
    once = boto3.client("s3", region_name=REGION, config=Config(retries={"max_attempts": 1}))
    handle = motopatch.fail_s3_writes(r"^ohlcv/raw/symbol=SBIN-EQ/", bucket="raw")
    try:
        with pytest.raises(ClientError) as refused:
            once.put_object(Bucket="raw", Key="ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/x.json", Body=b"{}")
        s3.put_object(Bucket="raw", Key="ohlcv/raw/symbol=INFY-EQ/exchange=NSE/x.json", Body=b"{}")
        s3.put_object(Bucket="raw", Key="elsewhere/ohlcv/raw/symbol=SBIN-EQ/x.json", Body=b"{}")
    finally:
        assert motopatch.stop_failing_s3_writes(handle) >= 1  # how many attempts it refused

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert refused.value.response["Error"]["Code"] == "InternalError"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="raw")["Contents"]]
    assert keys == ["elsewhere/ohlcv/raw/symbol=SBIN-EQ/x.json", "ohlcv/raw/symbol=INFY-EQ/exchange=NSE/x.json"]
    # once stopped, the same key is written again
    s3.put_object(Bucket="raw", Key="ohlcv/raw/symbol=SBIN-EQ/exchange=NSE/x.json", Body=b"{}")


def test_a_key_longer_than_s3_allows_is_refused_as_s3_refuses_it(aws):
    from botocore.exceptions import ClientError

    s3 = _s3_bucket()
    longest = "k/" + "é" * 511  # 2 + 1,022 bytes: the longest key S3 takes
    s3.put_object(Bucket="raw", Key=longest, Body=b"{}")
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="raw", Key=longest + "x", Body=b"{}")

    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert refused.value.response["Error"]["Code"] == "KeyTooLongError"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="raw")["Contents"]] == [longest]


def test_the_s3_write_hook_wraps_put_object_once(aws):
    from moto.s3 import models as s3_models

    motopatch.apply(retry_time_scale=0.0)
    wrapped = s3_models.S3Backend.put_object.__wrapped__
    assert not hasattr(wrapped, "__wrapped__") and wrapped.__qualname__ == "S3Backend.put_object"


def test_a_failing_s3_write_is_limited_to_its_bucket(aws):
    s3 = _s3_bucket()
    s3.create_bucket(Bucket="other", CreateBucketConfiguration={"LocationConstraint": REGION})
    handle = motopatch.fail_s3_writes(r"\.json$", bucket="other")
    try:
        s3.put_object(Bucket="raw", Key="a.json", Body=b"{}")
    finally:
        assert motopatch.stop_failing_s3_writes(handle) == 0
    assert s3.get_object(Bucket="raw", Key="a.json")["Body"].read() == b"{}"


def test_moving_awscurrent_makes_that_version_the_answer_as_on_aws(mocked_aws):
    client = boto3.client("secretsmanager")
    client.create_secret(Name="tokens", SecretString="old")
    old = client.get_secret_value(SecretId="tokens")["VersionId"]
    new = client.put_secret_value(SecretId="tokens", SecretString="new", VersionStages=["staged"])["VersionId"]
    assert client.get_secret_value(SecretId="tokens")["SecretString"] == "old"  # staged, not current yet
    client.update_secret_version_stage(
        SecretId="tokens", VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
    )
    assert client.get_secret_value(SecretId="tokens")["SecretString"] == "new"
    with pytest.raises(client.exceptions.InvalidParameterException):  # the compare-and-set refuses a stale move
        client.update_secret_version_stage(
            SecretId="tokens", VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
        )


def test_glue_batch_partition_calls_refuse_more_entries_than_aws_takes(aws):
    from botocore.exceptions import ClientError

    glue = boto3.client("glue", region_name=REGION)
    glue.create_database(DatabaseInput={"Name": "db"})
    keys = [{"Name": "day", "Type": "string"}]
    glue.create_table(DatabaseName="db", TableInput={"Name": "t", "PartitionKeys": keys, "StorageDescriptor": {}})
    entries = [{"Values": [str(i)], "StorageDescriptor": {"Location": f"s3://b/day={i}/"}} for i in range(101)]

    with pytest.raises(ClientError) as refused:
        glue.batch_create_partition(DatabaseName="db", TableName="t", PartitionInputList=entries)
    assert refused.value.response["Error"]["Code"] == "InvalidInputException"
    assert "less than or equal to 100" in refused.value.response["Error"]["Message"]
    assert glue.get_partitions(DatabaseName="db", TableName="t")["Partitions"] == []  # nothing of it was created
    glue.batch_create_partition(DatabaseName="db", TableName="t", PartitionInputList=entries[:100])
    with pytest.raises(ClientError, match="less than or equal to 1000"):
        glue.batch_get_partition(DatabaseName="db", TableName="t", PartitionsToGet=[{"Values": ["1"]}] * 1001)
    wanted = [{"Values": [str(i)]} for i in range(1000)]
    assert len(glue.batch_get_partition(DatabaseName="db", TableName="t", PartitionsToGet=wanted)["Partitions"]) == 100


def test_a_prefixed_listing_through_the_index_answers_exactly_as_moto_does(aws):
    import random

    from moto.s3 import models as s3_models

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="listing", CreateBucketConfiguration={"LocationConstraint": REGION})
    rng = random.Random(7)
    names = [f"p/{a}/{b}/k{c}.json" for a in "xyz" for b in range(5) for c in range(8)] + ["p/x", "q/1", "p/x/"]
    for step in range(600):  # puts, overwrites and deletes, interleaved with listings that build the index
        name = rng.choice(names)
        if rng.random() < 0.3:
            s3.delete_object(Bucket="listing", Key=name)
        else:
            s3.put_object(Bucket="listing", Key=name, Body=str(step).encode())
        if step % 50 == 0:
            s3.list_objects_v2(Bucket="listing", Prefix="p/")
    backend = s3_models.s3_backends[account_id()]["aws"]
    bucket = backend.get_bucket("listing")
    indexed = s3_models.S3Backend.list_objects
    assert hasattr(indexed, "__wrapped__")
    for prefix in ("p/", "p/x", "p/x/", "p/y/3/", "q", "nothing/"):
        for delimiter in (None, "/"):
            for marker, max_keys in ((None, None), (None, 7), ("p/y/1/k3.json", 5)):
                ours = indexed(backend, bucket, prefix, delimiter, marker, max_keys)
                theirs = indexed.__wrapped__(backend, bucket, prefix, delimiter, marker, max_keys)
                assert [k.name for k in ours[0]] == [k.name for k in theirs[0]], (prefix, delimiter, marker)
                assert [k.value for k in ours[0]] == [k.value for k in theirs[0]]  # the newest version of each
                assert ours[1:] == theirs[1:], (prefix, delimiter, marker)
    assert list(bucket.keys.__dict__["_pricefeed_names"]) == sorted(dict.keys(bucket.keys))  # kept in step
