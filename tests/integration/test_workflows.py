"""The CI/CD workflow and samconfig.toml as shipped: the workflow passes GitHub's workflow schema and keeps
the deployment policy (OIDC only, tests before deploy, non-interactive deploy, the Glue library uploaded),
and every parameter either of them sets is a real template.yaml Parameter with a value it accepts.

The schema check skips when check-jsonschema is missing (run `make venv`), except under CI=true or
PRICEFEED_REQUIRE_TOOLS=1, where a missing tool is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from pricefeed.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
DEPLOY = ROOT / ".github" / "workflows" / "deploy.yml"
SAMCONFIG = ROOT / "samconfig.toml"
# What `sam deploy --parameter-overrides` accepts: Key="value" (SAM CLI's CfnParameterOverridesType).
OVERRIDE = re.compile(r"""^\s*(?P<key>[A-Za-z0-9]+)=(?P<q>["'])(?P<value>.*)(?P=q)\s*$""")


def template_parameters() -> dict[str, dict]:
    return load_template()["Parameters"]


def check_jsonschema() -> str:
    found = Path(sys.executable).with_name("check-jsonschema")
    if found.is_file():
        return str(found)
    if on_path := shutil.which("check-jsonschema"):
        return on_path
    reason = "check-jsonschema is not installed: run `make venv`"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("PRICEFEED_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (required: CI=true or PRICEFEED_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def lint_workflows(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [check_jsonschema(), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load_workflow(path: Path = DEPLOY) -> dict:
    workflow = yaml.safe_load(path.read_text())
    if True in workflow:  # YAML 1.1 reads the bare key `on` as a boolean
        workflow["on"] = workflow.pop(True)
    return workflow


def steps_using(job: dict, action: str) -> list[dict]:
    return [step for step in job["steps"] if step.get("uses", "").split("@")[0] == action]


def step_running(job: dict, command: str) -> dict:
    matches = [step for step in job["steps"] if command in step.get("run", "")]
    assert len(matches) == 1, f"expected one step running {command!r}, found {len(matches)}"
    return matches[0]


def check_parameter_value(name: str, value: str, spec: dict) -> None:
    if allowed := spec.get("AllowedValues"):
        assert value in allowed, f"{name}={value!r} is not one of {allowed}"
    if spec["Type"] == "Number":
        number = float(value)
        assert number >= spec.get("MinValue", float("-inf")), f"{name}={value} is below MinValue"
        assert number <= spec.get("MaxValue", float("inf")), f"{name}={value} is above MaxValue"


# ------------------------------------------------------------------------------------------ lint


def test_there_is_a_deploy_workflow() -> None:
    assert DEPLOY in WORKFLOWS


def test_every_workflow_passes_the_github_workflow_schema() -> None:
    result = lint_workflows(WORKFLOWS)
    assert result.returncode == 0, f"workflow lint failed:\n{result.stdout}\n{result.stderr}"


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: 42\n")
    result = lint_workflows([broken])
    assert result.returncode != 0, result.stdout


# ------------------------------------------------------------------------------------------ policy


def test_workflow_runs_on_pushes_to_main_and_by_hand() -> None:
    triggers = load_workflow()["on"]
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_test_job_runs_the_readme_test_command_with_python_312_and_java_17() -> None:
    job = load_workflow()["jobs"]["test"]
    assert job["runs-on"] == "ubuntu-latest"
    assert [s["with"]["python-version"] for s in steps_using(job, "actions/setup-python")] == ["3.12"]
    assert [s["with"]["java-version"] for s in steps_using(job, "actions/setup-java")] == ["17"]
    assert step_running(job, "make test")["run"].strip() == "make test"


def test_deploy_waits_for_the_tests_and_runs_in_the_production_environment() -> None:
    job = load_workflow()["jobs"]["deploy"]
    needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
    assert "test" in needs
    assert job["environment"] == "production"


def test_deploy_assumes_a_role_through_oidc_and_stores_no_aws_keys() -> None:
    workflow = load_workflow()
    job = workflow["jobs"]["deploy"]
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    assert workflow["permissions"] == {"contents": "read"}  # every other job gets no token it does not need
    (credentials,) = steps_using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    for path in WORKFLOWS:
        text = path.read_text()
        for forbidden in ("aws-access-key-id", "aws-secret-access-key", "aws-session-token", "secrets.AWS_"):
            assert forbidden not in text, f"{path.name} uses {forbidden}: deploy through OIDC only"


def test_every_action_is_pinned_to_a_version() -> None:
    for path in WORKFLOWS:
        for job in load_workflow(path)["jobs"].values():
            for step in job["steps"]:
                if "uses" in step:
                    assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"]), step["uses"]


def test_deploy_builds_then_deploys_without_asking() -> None:
    job = load_workflow()["jobs"]["deploy"]
    assert steps_using(job, "aws-actions/setup-sam")
    steps = job["steps"]
    build, deploy = step_running(job, "sam build"), step_running(job, "sam deploy")
    assert steps.index(build) < steps.index(deploy)
    assert "--no-confirm-changeset" in deploy["run"]
    assert "--no-fail-on-empty-changeset" in deploy["run"]
    assert "--guided" not in deploy["run"]


def test_deploy_uploads_the_glue_library_where_the_job_reads_it() -> None:
    job = load_workflow()["jobs"]["deploy"]
    upload = step_running(job, "_artifacts/pricefeed.zip")
    assert job["steps"].index(upload) > job["steps"].index(step_running(job, "sam deploy"))
    assert "OutputKey=='RawBucketName'" in upload["run"]
    assert "RawBucketName" in load_template()["Outputs"]
    extra_py_files = load_template()["Resources"]["AggregateJob"]["Properties"]["DefaultArguments"]["--extra-py-files"]
    assert extra_py_files == {"Fn::Sub": "s3://${RawBucket}/_artifacts/pricefeed.zip"}
    # and the script itself, from the repo to where the template's ScriptLocation points
    script = load_template()["Resources"]["AggregateJob"]["Properties"]["Command"]["ScriptLocation"]
    assert script == {"Fn::Sub": "s3://${RawBucket}/_artifacts/aggregate_bars.py"}
    assert 'aws s3 cp glue/aggregate_bars.py "s3://${raw_bucket}/_artifacts/aggregate_bars.py"' in upload["run"]


def workflow_parameter_overrides() -> dict[str, str]:
    """The deploy step's overrides, each `${VAR}` replaced by the default its env gives when unset."""
    deploy = step_running(load_workflow()["jobs"]["deploy"], "sam deploy")
    defaults = {}
    for var, expression in deploy["env"].items():
        fallback = re.search(r"\|\|\s*'([^']*)'", expression)
        defaults[var] = fallback.group(1) if fallback else ""
    overrides = {}
    for key, var in re.findall(r'"(\w+)=\\"\$(\w+)\\""', deploy["run"]):
        assert var in defaults, f"{key} reads ${var}, which the step's env does not set"
        overrides[key] = defaults[var]
    assert overrides, "the sam deploy step passes no --parameter-overrides"
    return overrides


def test_workflow_overrides_name_real_parameters_and_default_to_samconfig() -> None:
    params = template_parameters()
    overrides = workflow_parameter_overrides()
    for key, value in overrides.items():
        assert key in params, f"the workflow overrides {key}, which template.yaml does not declare"
        check_parameter_value(key, value, params[key])
    # --parameter-overrides replaces samconfig's list, so CI must set the same parameters, to the same defaults.
    assert overrides == samconfig_overrides()


# ------------------------------------------------------------------------------------------ samconfig


def samconfig_overrides() -> dict[str, str]:
    raw = tomllib.loads(SAMCONFIG.read_text())["default"]["deploy"]["parameters"]["parameter_overrides"]
    pairs = raw if isinstance(raw, list) else re.findall(r"""\S+=(?:"[^"]*"|'[^']*')""", raw)
    overrides = {}
    for pair in pairs:
        match = OVERRIDE.match(pair)
        assert match, f'samconfig.toml: cannot parse override {pair!r} (want Key="value")'
        overrides[match["key"]] = match["value"]
    return overrides


def test_samconfig_deploys_to_mumbai_and_asks_a_human_before_changing_the_stack() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    deploy = config["default"]["deploy"]["parameters"]
    assert config["default"]["global"]["parameters"]["stack_name"] == "pricefeed"
    assert deploy["region"] == "ap-south-1"
    assert deploy["confirm_changeset"] is True
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()


def test_samconfig_overrides_name_real_parameters_with_accepted_values() -> None:
    params = template_parameters()
    overrides = samconfig_overrides()
    for key, value in overrides.items():
        assert key in params, f"samconfig.toml overrides {key}, which template.yaml does not declare"
        check_parameter_value(key, value, params[key])
    expected = {
        "MapConcurrency",
        "ScheduleExpression",
        "RefreshScheduleExpression",
        "FyersRequestsPerSecond",
        "FyersRequestsPerMinute",
        "FyersRequestsPerDay",
        "LogLevel",
        "TokenAlertEmail",
    }
    assert expected <= set(overrides)
    assert overrides["TokenAlertEmail"] == ""  # no e-mail subscription unless the operator asks for one
