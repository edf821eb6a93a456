"""A Distributed Map's ResultWriter as AWS writes it: moto writes only ``manifest.json``, naming no result file.

AWS puts the child executions' results under ``<Prefix>/<map run id>/``: ``SUCCEEDED_<n>.json`` (``FAILED_<n>`` and
``PENDING_<n>`` when there are such children), each a JSON array with one entry per child (``Input``, ``Output``,
``Status``, ...), and ``manifest.json`` listing them with their sizes; the Map state's result is then only
``{"MapRunArn", "ResultWriterDetails": {"Bucket", "Key"}}``, whatever the number of children. The writer's
``Parameters`` paths (``"Prefix.$"``) read the Map state's input, as on AWS (moto read the children's results).
Here every child's output becomes an entry of ``SUCCEEDED_0.json`` (moto keeps outputs only: ``Input`` is not
written; a child that failed fails the whole Map in moto, which ignores ``ToleratedFailurePercentage``).
"""

from __future__ import annotations

import json
from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import resource_eval_s3
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

ResourceEvalS3 = resource_eval_s3.ResourceEvalS3


def _put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
    parameters = env.stack.pop()
    results = env.stack.pop()
    s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
    map_run_arn = env.map_run_record_pool_manager.get_all().pop().map_run_arn
    bucket, prefix = parameters["Bucket"], parameters.get("Prefix", "")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    folder = f"{prefix}{map_run_arn.split(':')[-1]}/"
    entries = [{"Output": json.dumps(r), "OutputDetails": {"Included": True}, "Status": "SUCCEEDED"} for r in results]
    body = json.dumps(entries).encode()
    s3.put_object(Bucket=bucket, Key=folder + "SUCCEEDED_0.json", Body=body)
    succeeded = [{"Key": folder + "SUCCEEDED_0.json", "Size": len(body)}]
    files = {"FAILED": [], "PENDING": [], "SUCCEEDED": succeeded}
    manifest = {"DestinationBucket": bucket, "MapRunArn": map_run_arn, "ResultFiles": files}
    s3.put_object(Bucket=bucket, Key=folder + "manifest.json", Body=json.dumps(manifest, indent=2).encode())
    details = {"Bucket": bucket, "Key": folder + "manifest.json"}
    env.stack.append({"MapRunArn": map_run_arn, "ResultWriterDetails": details})


def _eval_body(self: Any, env: Any) -> None:
    env.stack.append(env.states.get_input())  # what the Parameters' paths read (the top of the stack)
    self.parargs.eval(env=env)
    parameters = env.stack.pop()
    env.stack.pop()
    env.stack.append(parameters)
    self.resource_eval.eval_resource(env=env)


def install() -> None:
    """Idempotent: ``s3:putObject`` ResultWriters write AWS's files, their paths read the Map's input."""
    ResourceEvalS3._handle_put_object = staticmethod(_put_object)
    result_writer_decl.ResultWriter._eval_body = _eval_body
