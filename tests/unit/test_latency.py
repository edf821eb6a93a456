"""The local stack's latency model: every AWS call waits its service's latency while injected, none otherwise."""

import io
import json
import zipfile

import boto3
import pytest
from moto import mock_aws

from pricefeed.local import latency
from pricefeed.local.lambda_runtime import FunctionSandbox


@pytest.fixture
def s3(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="latency")
        yield client


def test_calls_wait_the_models_latency_for_their_operation_only_while_injected(s3):
    with latency.injected(0.01) as totals:  # a hundredth of the model: the test stays fast, the arithmetic the same
        s3.put_object(Bucket="latency", Key="k", Body=b"x")
        s3.get_object(Bucket="latency", Key="k")["Body"].read()
        s3.list_objects_v2(Bucket="latency")
    model = sum(latency.LATENCY_MS[name] for name in ("s3:PutObject", "s3:GetObject", "s3:ListObjectsV2"))
    assert totals["calls"] == 3 and totals["injected_s"] == pytest.approx(model / 1000 * 0.01)

    s3.get_object(Bucket="latency", Key="k")
    assert totals["calls"] == 3  # outside the block, nothing is added


def test_an_operation_without_its_own_figure_takes_its_services_then_the_default():
    assert latency.latency_ms("glue:BatchCreatePartition") == latency.LATENCY_MS["glue:*"]
    assert latency.latency_ms("kinesis:PutRecord") == latency.LATENCY_MS["*"]


def test_a_negative_scale_is_refused():
    with pytest.raises(ValueError, match="latency scale"), latency.injected(-1):
        pass


PAGING_HANDLER = """
import boto3


def handler(event, context):
    s3 = boto3.client("s3", region_name="us-east-1")
    for _ in range(event["gets"]):
        s3.get_object(Bucket="latency", Key="k")["Body"].read()
    return {"gets": event["gets"]}
"""


@pytest.mark.parametrize(("scale", "timed_out"), [(0.0, False), (1.0, True)])
def test_a_function_whose_calls_outlast_its_timeout_at_aws_latency_times_out_here_too(s3, tmp_path, scale, timed_out):
    """100 GETs at the model's 30 ms are 3 s: past a 1.5-s Timeout on AWS, well inside it on bare moto (a few ms a
    GET in process, so the margin holds on a loaded machine). The cold start's import is not counted, as on AWS."""
    s3.put_object(Bucket="latency", Key="k", Body=b"x")
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("app.py", PAGING_HANDLER)
    box = FunctionSandbox("Pager", "app.handler", code.getvalue(), tmp_path, tmp_path / "p.log", timeout_s=1.5)
    try:
        with latency.injected(scale):
            payload, errored = box.invoke({"gets": 100}, {}, "arn:aws:lambda:us-east-1:123456789012:function:pager")
    finally:
        box.close()

    assert errored is timed_out
    answer = json.loads(payload)
    assert answer.get("errorType") == "Sandbox.Timedout" if timed_out else answer == {"gets": 100}
