"""The local stack: moto on loopback with template.yaml deployed on it, functions and the Glue job
running for real in this process, and the HTTP API's routes served on loopback.

    with LocalStack.start() as stack:
        stack.client("s3") ...; stack.outputs["StateMachineArn"]; stack.api_url
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from pricefeed.local import motopatch
from pricefeed.local.bundle import zip_part
from pricefeed.local.deploy import ACCOUNT, DeployError, Deployment
from pricefeed.local.glue_jobs import GlueJobs
from pricefeed.local.http_api import HttpApiServer
from pricefeed.local.intrinsics import substitute_definition
from pricefeed.local.lambda_runtime import FunctionSandbox, event_json
from pricefeed.local.template import PROJECT_ROOT, load_template, package, translate

REGION = "ap-south-1"
_one_at_a_time = threading.Lock()


class LocalStack:
    def __init__(
        self, *, port: int = 0, api_port: int = 0, workdir: Path | None = None, retry_time_scale: float = 0.01
    ):
        self.port = port
        self.api_port = api_port
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="pricefeed-local-"))
        self.retry_time_scale = retry_time_scale
        self._server: ThreadedMotoServer | None = None
        self._api: HttpApiServer | None = None
        self.sandboxes: dict[str, FunctionSandbox] = {}
        self.deployment: Deployment | None = None
        self.outputs: dict[str, str] = {}
        self.endpoint_url = ""
        self.api_url = ""
        self.stack_name = "pricefeed"
        self.glue = GlueJobs(self.workdir / "logs", self._aws_env)  # the Glue jobs, run for real

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls, *, parameters: dict[str, str] | None = None, stack_name: str = "pricefeed", **kw: Any) -> LocalStack:
        stack = cls(**kw)
        stack.up(parameters or {}, stack_name=stack_name)
        return stack

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self, parameters: dict[str, str], *, stack_name: str = "pricefeed") -> None:
        if not _one_at_a_time.acquire(blocking=False):
            raise RuntimeError("one local stack per process: stop the other one first")
        try:
            self._up(parameters, stack_name)
        except BaseException:
            self.down()
            raise

    def _up(self, parameters: dict[str, str], stack_name: str) -> None:
        self.stack_name = stack_name
        motopatch.quiet_moto()
        motopatch.apply(retry_time_scale=self.retry_time_scale)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        # moto's ASL interpreter calls the other services on localhost:$MOTO_PORT.
        os.environ["MOTO_PORT"] = str(self.port)
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

        artifacts = "pricefeed-local-artifacts"
        self.client("s3").create_bucket(Bucket=artifacts, CreateBucketConfiguration={"LocationConstraint": REGION})
        packaged = translate(
            package(load_template(), s3=self.client("s3"), bucket=artifacts), parameters, region=REGION
        )
        d = Deployment(packaged.cfn, self.client, stack=stack_name, region=REGION, parameters=parameters)
        d.create_stack(parameters)
        d.fill_gaps()
        d.restore_dropped_properties()
        self.deployment = d
        self._restore_function_configs(packaged)
        self._start_functions(packaged)
        for logical, script in packaged.scripts.items():
            self.glue.register(logical, self.physical_id(logical), script)
        self._recreate_state_machines(packaged)
        self._start_http_api()
        self.outputs = {k: str(d.resolver.resolve(v["Value"])) for k, v in (packaged.cfn.get("Outputs") or {}).items()}
        if self.api_url:
            for key in ("LoginUrl", "CallbackUrl"):
                if key in self.outputs:
                    self.outputs[key] = self.api_url + "/oauth/" + self.outputs[key].rsplit("/oauth/", 1)[1]
        motopatch.publish_stack_outputs(account=ACCOUNT, region=REGION, stack_name=stack_name, outputs=self.outputs)
        self._upload_glue_library()

    def down(self) -> None:
        if self._api:
            self._api.stop()
            self._api = None
        for box in self.sandboxes.values():
            box.close()
        self.sandboxes.clear()
        self.glue.close()
        if self._server:
            self._server.stop()
            self._server = None
            _one_at_a_time.release()
        elif _one_at_a_time.locked() and self.deployment is None:
            _one_at_a_time.release()

    def client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto accepts any credentials
            config=Config(retries={"max_attempts": 2}),
        )

    def physical_id(self, logical: str) -> str:
        assert self.deployment
        return self.deployment.physical[logical]

    def function_env(self, logical: str) -> dict[str, str]:
        return dict(self._aws_env(), **self._declared_env(logical))

    # ------------------------------------------------------------------ fault hooks (tests)
    @contextmanager
    def fail_s3_writes(self, pattern: str, *, bucket: str | None = None) -> Iterator[dict[str, int]]:
        """While inside, S3 answers PutObject of keys matching ``pattern`` (``re.search``; in ``bucket``
        only, when given) with HTTP 500 InternalError, whoever writes. Yields ``{"refused": n}``, filled
        in on exit with how many writes were refused."""
        handle = motopatch.fail_s3_writes(pattern, bucket=bucket)
        counts = {"refused": 0}
        try:
            yield counts
        finally:
            counts["refused"] = motopatch.stop_failing_s3_writes(handle)

    def cold_start(self, *logical: str) -> None:
        """The next invocation of these functions (default: all) loads the handler afresh, as a new Lambda
        container would: whatever the warm one cached (app config, tokens) is gone."""
        for name in logical or tuple(self.sandboxes):
            box = self.sandboxes[name]
            with box._lock:
                box._module = None

    # ------------------------------------------------------------------ pieces
    def _aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon locally
            "POWERTOOLS_DEV": "false",
        }

    def _declared_env(self, logical: str) -> dict[str, str]:
        assert self.deployment
        props = self.deployment.props(logical)
        return {k: str(v) for k, v in ((props.get("Environment") or {}).get("Variables") or {}).items()}

    def _functions(self, packaged) -> list[str]:
        return [k for k, r in packaged.cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"]

    def _restore_function_configs(self, packaged) -> None:
        """moto drops environment variables whose Ref it could not resolve: put the template's back."""
        lam = self.client("lambda")
        for logical in self._functions(packaged):
            name, wanted = self.physical_id(logical), self._declared_env(logical)
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": wanted})
            got = lam.get_function_configuration(FunctionName=name).get("Environment", {}).get("Variables", {})
            if got != wanted:
                raise DeployError(f"{logical}: environment differs from the template after deploy")

    def _start_functions(self, packaged) -> None:
        lam, s3 = self.client("lambda"), self.client("s3")
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for logical in self._functions(packaged):
            conf = lam.get_function_configuration(FunctionName=self.physical_id(logical))
            code = packaged.cfn["Resources"][logical]["Properties"]["Code"]
            zip_bytes = s3.get_object(Bucket=code["S3Bucket"], Key=code["S3Key"])["Body"].read()
            limits = {"timeout_s": conf.get("Timeout", 3), "memory_mb": conf.get("MemorySize", 128)}  # else Lambda's
            where = (self.workdir / "functions", logs / f"{logical}.log")
            box = FunctionSandbox(logical, conf["Handler"], zip_bytes, *where, **limits)
            self.sandboxes[logical] = box
            env = dict(
                self._aws_env(), **conf["Environment"]["Variables"], AWS_LAMBDA_FUNCTION_NAME=conf["FunctionName"]
            )
            arn = conf["FunctionArn"]
            dead_letters = (self.deployment.props(logical).get("DeadLetterConfig") or {}).get("TargetArn")
            motopatch.register_lambda(
                arn, conf["FunctionName"], lambda event, b=box, e=env, a=arn: b.invoke(event_json(event), e, a),
                dead_letter_queue=dead_letters,
            )

    def _recreate_state_machines(self, packaged) -> None:
        assert self.deployment
        for logical, res in packaged.cfn["Resources"].items():
            if res["Type"] != "AWS::StepFunctions::StateMachine":
                continue
            props = self.deployment.props(logical)
            sam_logical = logical  # SAM keeps the logical id of the state machine
            definition = packaged.definitions.get(sam_logical)
            if definition is None:
                raise DeployError(f"{logical}: no DefinitionUri file to execute")
            text = substitute_definition(definition, props.get("DefinitionSubstitutions") or {})
            arn = motopatch.create_executable_state_machine(
                account=ACCOUNT, region=REGION, name=props["StateMachineName"], definition=text,
                role_arn=props["RoleArn"], properties=props,
            )
            if arn != self.physical_id(logical):
                raise DeployError(
                    f"{logical}: executable ARN {arn} differs from the stack's {self.physical_id(logical)}"
                )

    def _start_http_api(self) -> None:
        assert self.deployment
        bodies = getattr(self.deployment, "api_bodies", {})
        if not bodies:
            return
        routes = {}
        for body in bodies.values():
            for path, methods in (body.get("paths") or {}).items():
                for method, op in methods.items():
                    uri = op["x-amazon-apigateway-integration"]["uri"]
                    function_arn = uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
                    routes[(method.upper(), path)] = function_arn
        self._api = HttpApiServer(routes, port=self.api_port)
        self.api_url = self._api.start()

    def _upload_glue_library(self) -> None:
        """What the deploy uploads after `sam deploy` (the Glue script and its --extra-py-files library)."""
        raw = self.outputs.get("RawBucketName")
        if not raw:
            return
        archive = zip_part("glue", self.workdir / "pricefeed.zip")
        self.client("s3").upload_file(str(archive), raw, "_artifacts/pricefeed.zip")
        for script in sorted((PROJECT_ROOT / "glue").glob("*.py")):  # the job's ScriptLocation, as deployed
            self.client("s3").upload_file(str(script), raw, f"_artifacts/{script.name}")
