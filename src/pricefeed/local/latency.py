"""Per-call latency for the local stack, from a documented model, so a local run takes AWS's time where it matters.

Every AWS call made in this process (the handlers, the Glue job, the state machine's own calls: all in-process
here) waits ``LATENCY_MS`` for its service and operation, times ``scale``, before it is sent. The model is an
assumption, not a measurement of AWS: S3's performance guidelines give 100-200 ms first-byte latency for small
objects at the cold end; same-region calls from compute typically answer in tens of ms, used here. Catalog and
Step Functions control-plane calls are slower. ``make bench-scale`` models AWS with the same table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.endpoint

LATENCY_MS: dict[str, float] = {
    "s3:GetObject": 30, "s3:PutObject": 40, "s3:ListObjectsV2": 40, "s3:DeleteObjects": 40, "s3:DeleteObject": 30,
    "s3:HeadObject": 20, "dynamodb:*": 8, "secretsmanager:*": 30, "glue:*": 150, "states:*": 50, "lambda:*": 30,
    "monitoring:*": 20, "sns:*": 30, "*": 50,
}
#: A Lambda's first invocation (a cold start): not injected here (the local runtime loads the handler once).
LAMBDA_COLD_START_MS = 800

_lock = threading.Lock()
_state = {"scale": 0.0, "injected_s": 0.0, "calls": 0}


def latency_ms(name: str) -> float:
    """The model's latency of ``service:Operation`` (botocore's endpoint prefix and operation name)."""
    return LATENCY_MS.get(name) or LATENCY_MS.get(name.split(":")[0] + ":*") or LATENCY_MS["*"]


def _install() -> None:
    original = botocore.endpoint.Endpoint.make_request
    if getattr(original, "__pricefeed_latency__", False):
        return

    def make_request(endpoint, operation_model, request_dict):
        scale = _state["scale"]
        if scale > 0:
            name = f"{operation_model.service_model.endpoint_prefix}:{operation_model.name}"
            wait = latency_ms(name) / 1000 * scale
            with _lock:
                _state["injected_s"] += wait
                _state["calls"] += 1
            time.sleep(wait)
        return original(endpoint, operation_model, request_dict)

    make_request.__pricefeed_latency__ = True
    make_request.__wrapped__ = original
    botocore.endpoint.Endpoint.make_request = make_request


@contextmanager
def injected(scale: float = 1.0) -> Iterator[dict]:
    """Within the block, every AWS call in this process waits the model's latency x ``scale``. Yields the running
    totals ``{"injected_s", "calls"}`` (what was added, not what the calls took)."""
    if not isinstance(scale, (int, float)) or scale < 0:
        raise ValueError(f"latency scale {scale!r} must be a non-negative number")
    _install()
    with _lock:
        before, _state["scale"] = _state["scale"], float(scale)
        _state["injected_s"], _state["calls"] = 0.0, 0
    try:
        yield _state
    finally:
        with _lock:
            _state["scale"] = before
