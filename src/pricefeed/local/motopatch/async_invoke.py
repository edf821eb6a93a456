"""Lambda's asynchronous invocation (``InvocationType=Event``: how EventBridge Scheduler invokes a function).

moto runs an Event invocation like a synchronous one, in the caller's request, and answers with the function's
payload; a failure is never tried again and goes nowhere. As on AWS here: the caller gets 202 with an empty body at
once; the event runs on a thread of its own; a failed attempt (an error or a timeout) is tried again twice, after
about 1 and 2 minutes (Lambda's defaults; the waits are scaled like Step Functions' Retry intervals); an event that
failed every attempt goes to the function's dead-letter queue as Lambda sends it (the event as the body; the
attributes ``RequestID``, ``ErrorCode`` and ``ErrorMessage``, the error's first 1 KB), or is dropped when the function
has none. moto keeps no ``DeadLetterConfig``, so the local stack registers each function's queue here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from moto.awslambda import models as lambda_models
from moto.sqs.models import sqs_backends

#: Lambda's defaults for an asynchronous event: the attempts after the first, and the wait before each.
RETRY_WAITS_S = (60.0, 120.0)
#: Lambda puts the first 1 KB of the error into the dead letter's ErrorMessage attribute.
ERROR_MESSAGE_BYTES = 1024

log = logging.getLogger(__name__)
_dead_letters: dict[str, str] = {}  # function ARN or name -> queue ARN
_in_flight: set[threading.Thread] = set()
_lock = threading.Lock()


def register_dead_letter_queue(arn: str, name: str, queue_arn: str | None) -> None:
    for key in (arn, name):
        if queue_arn:
            _dead_letters[key] = queue_arn
        else:
            _dead_letters.pop(key, None)


def wait_for_events(timeout: float = 60.0) -> bool:
    """Wait until every asynchronous event started so far has finished (its retries included); False on timeout."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_in_flight)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _error_message(payload: str) -> str:
    try:
        answer = json.loads(payload)
        message = answer.get("errorMessage") if isinstance(answer, dict) else None
    except ValueError:
        message = None
    text = str(message if message is not None else payload)
    return text.encode()[:ERROR_MESSAGE_BYTES].decode(errors="ignore")


def _send_dead_letter(queue_arn: str, body: str, request_id: str, error: str) -> None:
    _, _, _, region, account, name = queue_arn.split(":", 5)
    try:
        sqs_backends[account][region].send_message(
            queue_name=name,
            message_body=body,
            message_attributes={
                "RequestID": {"DataType": "String", "StringValue": request_id},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error or "Unhandled"},
            },
        )
    except Exception:  # AWS drops the event when its queue is gone (the DeadLetterErrors metric)
        log.warning("dead letter of %s dropped: queue %s refused it", request_id, queue_arn, exc_info=True)


def install(scale: list[float]) -> None:
    original = lambda_models.LambdaFunction.invoke

    def invoke(self, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        if request_headers.get("x-amz-invocation-type", "RequestResponse") != "Event":
            return original(self, body, request_headers, response_headers)
        event = json.loads(body) if body else {}
        queue = _dead_letters.get(self.function_arn) or _dead_letters.get(self.function_name)
        request_id = str(uuid.uuid4())

        def run() -> None:
            try:
                payload, errored = "", True
                for wait in (0.0, *RETRY_WAITS_S):
                    time.sleep(wait * scale[0])
                    payload, errored, _ = self._invoke_lambda(event=event)
                    if not errored:
                        return
                if queue:
                    _send_dead_letter(queue, body or "{}", request_id, _error_message(payload))
            finally:
                with _lock:
                    _in_flight.discard(threading.current_thread())

        thread = threading.Thread(target=run, name=f"lambda-event-{self.function_name}", daemon=True)
        with _lock:
            _in_flight.add(thread)
        thread.start()
        return b""

    invoke.__wrapped__ = original  # type: ignore[attr-defined]
    lambda_models.LambdaFunction.invoke = invoke

