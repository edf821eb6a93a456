"""Read template.yaml, package its local artefacts into an S3 bucket (what `sam package` does), and
translate it to plain CloudFormation with the SAM translator."""

from __future__ import annotations

import copy
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import boto3
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

from pricefeed.errors import InvalidInput

PROJECT_ROOT = Path(__file__).resolve().parents[3]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"


class _NoManagedPolicies:
    """The translator only needs AWS managed policy ARNs for `Policies: [PolicyName]` entries; we use none."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass(frozen=True)
class Packaged:
    sam: dict  # the SAM template with local paths replaced by S3 URIs
    cfn: dict  # the translated CloudFormation template
    code_dirs: dict  # logical id → local directory of a function's code (for the in-process runtime)
    definitions: dict  # logical id → state machine definition text (from its DefinitionUri file)
    scripts: dict  # logical id → local Glue script path


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    try:
        return yaml_parse(path.read_text())
    except OSError as exc:
        raise InvalidInput(f"cannot read template {path}: {exc.strerror}") from None


def zip_dir(directory: Path) -> bytes:
    """A deterministic zip of a directory (sorted, fixed timestamps), like `sam package` uploads."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            info = zipfile.ZipInfo(str(file.relative_to(directory)), date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, file.read_bytes())
    return buf.getvalue()


#: A Glue script the template reads from the raw bucket's ``_artifacts/`` (what the deploy uploads).
ARTIFACT_SCRIPT = "s3://${RawBucket}/_artifacts/"


def package(template: dict, *, s3, bucket: str, root: Path = PROJECT_ROOT) -> Packaged:
    """Upload every local CodeUri/ContentUri/DefinitionUri/ScriptLocation to ``bucket`` and point at it."""
    code_dirs: dict[str, Path] = {}
    definitions: dict[str, str] = {}
    scripts: dict[str, Path] = {}

    def upload(body: bytes, suffix: str) -> str:
        key = f"artifacts/{hashlib.sha256(body).hexdigest()}{suffix}"
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        return f"s3://{bucket}/{key}"

    for name, res in template.get("Resources", {}).items():
        props = res.get("Properties") or {}
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            directory = root / props["CodeUri"]
            code_dirs[name] = directory
            props["CodeUri"] = upload(zip_dir(directory), ".zip")
        elif kind == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri"), str):
            props["ContentUri"] = upload(zip_dir(root / props["ContentUri"]), ".zip")
        elif kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            text = (root / props["DefinitionUri"]).read_text()
            definitions[name] = text
            props["DefinitionUri"] = upload(text.encode(), ".asl.json")
        elif kind == "AWS::Glue::Job":
            command = props.get("Command") or {}
            location = command.get("ScriptLocation")
            if isinstance(location, str) and not location.startswith("s3://"):
                scripts[name] = root / location
                command["ScriptLocation"] = upload((root / location).read_bytes(), ".py")
            elif isinstance(location, dict) and str(location.get("Fn::Sub", "")).startswith(ARTIFACT_SCRIPT):
                # Deployed beside the library (``_artifacts/<script>``, uploaded after `sam deploy`): the script
                # is glue/<script> here, and the stack uploads it where the template says (see LocalStack).
                scripts[name] = root / "glue" / location["Fn::Sub"][len(ARTIFACT_SCRIPT) :]
    return Packaged(template, {}, code_dirs, definitions, scripts)


def translate(packaged: Packaged, parameters: dict[str, str], *, region: str) -> Packaged:
    """SAM → CloudFormation, offline: the region is given, no managed-policy lookup happens."""
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    cfn = translator.translate(
        copy.deepcopy(packaged.sam), dict(parameters), get_managed_policy_map=_NoManagedPolicies().load
    )
    return Packaged(packaged.sam, cfn, packaged.code_dirs, packaged.definitions, packaged.scripts)
