"""The CI/CD workflow and samconfig.toml as shipped: the workflow passes GitHub's workflow schema and keeps
the deployment policy (OIDC only, tests before deploy, non-interactive deploy, the Glue library uploaded),
and every parameter either of them sets is a real template.yaml Parameter with a value it accepts.
Its supply chain: every action pinned to a commit SHA (zizmor finds nothing at medium or above), Dependabot
keeping the pins current, and an SBOM of every pinned dependency set.

The schema check skips when check-jsonschema is missing (run `make venv`), except under CI=true or
PRICEFEED_REQUIRE_TOOLS=1, where a missing tool is a failure; so do zizmor and cyclonedx-py.
"""

from __future__ import annotations

import json
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


def tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.is_file():
        return str(found)
    if on_path := shutil.which(name):
        return on_path
    reason = f"{name} is not installed: run `make venv`"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("PRICEFEED_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{reason} (required: CI=true or PRICEFEED_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def lint_workflows(paths: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
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


def test_every_action_is_pinned_to_a_commit_sha_with_its_version_beside_it() -> None:
    for path in WORKFLOWS:
        uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(.+)$", path.read_text(), flags=re.M)
        assert uses, path
        for line in uses:  # a tag can be moved to other code; a commit cannot
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+", line.strip()), line


def test_checkout_leaves_no_credentials_in_the_clone() -> None:
    for path in WORKFLOWS:
        for job in load_workflow(path)["jobs"].values():
            for step in steps_using(job, "actions/checkout"):
                assert step.get("with", {}).get("persist-credentials") is False, f"{path.name}: {step}"


def zizmor(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool("zizmor"), "--offline", "--min-severity", "medium", "--no-progress", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)


def test_zizmor_finds_nothing_at_medium_or_above_and_would_find_an_unpinned_action(tmp_path: Path) -> None:
    for path in WORKFLOWS:
        found = zizmor(path)
        assert found.returncode == 0, found.stdout + found.stderr
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    loose = tmp_path / ".github" / "workflows" / "loose.yml"
    loose.write_text("on: push\npermissions: {}\njobs:\n  t:\n    name: t\n    runs-on: ubuntu-latest\n    steps:\n"
                     "      - uses: actions/checkout@v4\n")
    found = zizmor(loose)
    assert found.returncode != 0 and "unpinned-uses" in found.stdout + found.stderr


def test_dependabot_keeps_the_actions_and_every_pinned_requirements_file_current_weekly() -> None:
    config_path = ROOT / ".github" / "dependabot.yml"
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(config_path)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    updates = yaml.safe_load(config_path.read_text())["updates"]
    covered = {(u["package-ecosystem"], u["directory"]) for u in updates}
    assert covered == {("github-actions", "/"), ("pip", "/requirements"), ("pip", "/src")}
    for update in updates:
        assert update["schedule"]["interval"] == "weekly"
        assert [group["patterns"] for group in update["groups"].values()] == [["*"]]  # one pull request a week
    # Dependabot's pip support reads *.txt and *.in files: every pinned set is one
    assert {p.name for p in (ROOT / "requirements").iterdir()} >= {"dev.in", "dev-lock.txt", "sam.txt", "checkov.txt"}
    assert (ROOT / "src" / "requirements.txt").is_file()


def test_the_sbom_lists_every_pinned_package(tmp_path: Path) -> None:
    lock = ROOT / "requirements" / "dev-lock.txt"
    out = tmp_path / "dev.cdx.json"
    done = subprocess.run(
        [tool("cyclonedx-py"), "requirements", "--pyproject", str(ROOT / "pyproject.toml"), "--output-reproducible",
         "--of", "JSON", "-o", str(out), str(lock)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    bom = json.loads(out.read_text())
    pins = {line.split("==")[0].lower().replace("_", "-") for line in lock.read_text().splitlines() if "==" in line}
    assert bom["bomFormat"] == "CycloneDX" and bom["metadata"]["component"]["name"] == "pricefeed"
    assert {c["name"].lower().replace("_", "-") for c in bom["components"]} == pins
    assert all(c["purl"].startswith("pkg:pypi/") and c["version"] for c in bom["components"])
    job = load_workflow()["jobs"]["test"]
    (upload,) = steps_using(job, "actions/upload-artifact")
    assert job["steps"].index(step_running(job, "make sbom")) < job["steps"].index(upload)
    assert upload["with"]["path"] == "sbom/"  # kept with the run: anyone can audit a deployed version later


def test_deploy_builds_then_deploys_without_asking() -> None:
    job = load_workflow()["jobs"]["deploy"]
    steps = job["steps"]
    # the SAM CLI the tests use (requirements/sam.txt), not an action installing software beside the deploy role
    sam = step_running(job, "make sam-venv")
    build, deploy = step_running(job, "sam build"), step_running(job, "sam deploy")
    assert steps.index(sam) < steps.index(build) < steps.index(deploy)
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
