"""The local stack's state machines in moto's executing backend, created as CloudFormation would create them."""

from __future__ import annotations

from moto.stepfunctions.parser.models import stepfunctions_parser_backends


def create_executable_state_machine(
    *, account: str, region: str, name: str, definition: str, role_arn: str, properties: dict | None = None
) -> str:
    """Create (or replace) the state machine in moto's executing backend; returns its ARN. ``properties``: the
    template's CloudFormation properties, whose logging and tracing settings it keeps (DescribeStateMachine shows
    them as on AWS; moto writes no log and no trace)."""
    backend = stepfunctions_parser_backends[account][region]
    for existing in list(backend.state_machines):
        if existing.name == name:
            backend.state_machines.remove(existing)
    logging_config, tracing = _api_settings(properties or {})
    machine = backend.create_state_machine(
        name=name, definition=definition, roleArn=role_arn, loggingConfiguration=logging_config,
        tracingConfiguration=tracing,
    )
    return machine.arn


def _api_settings(properties: dict) -> tuple[dict | None, dict | None]:
    """CloudFormation's LoggingConfiguration / TracingConfiguration in the API's spelling."""
    logs = properties.get("LoggingConfiguration")
    logging_config = None
    if isinstance(logs, dict):
        destinations = [
            {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
            for d in logs.get("Destinations") or []
            if isinstance((d.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn"), str)
        ]
        logging_config = {
            "level": logs.get("Level", "OFF"),
            "includeExecutionData": bool(logs.get("IncludeExecutionData")),
            "destinations": destinations,
        }
    tracing = properties.get("TracingConfiguration")
    return logging_config, ({"enabled": bool(tracing.get("Enabled"))} if isinstance(tracing, dict) else None)
