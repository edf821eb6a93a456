"""Step Functions execution histories as AWS keeps and serves them; moto keeps every event and serves them all.

- A Standard execution's history holds at most 25,000 events: the execution that reaches it fails with
  ``States.Runtime`` and AWS's cause ("Step Functions service quotas"; seen in the wild as "The execution reached
  the maximum number of history events (25000)."). Neither Retry nor Catch sees it (``States.ALL`` does not match
  ``States.Runtime``), so the execution fails whatever state is running. A Distributed Map's child executions have
  their own histories, as on AWS.
- GetExecutionHistory pages: ``maxResults`` 1..1,000 (100 when omitted; 0 means the default), ``nextToken``,
  ``reverseOrder``. moto answers every event in one page whatever was asked, which hides a reader that forgets to
  page, and deep-copies the whole history on every call (seconds at 25,000 events).
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

from moto.stepfunctions import exceptions as sfn_exceptions
from moto.stepfunctions import responses as sfn_responses
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
from moto.stepfunctions.parser.asl.eval import environment as sfn_environment
from moto.stepfunctions.parser.asl.eval.event import event_manager as sfn_events

from pricefeed.local.motopatch.wrapping import wrap_once

HISTORY_EVENT_LIMIT = 25_000
HISTORY_LIMIT_ERROR = "States.Runtime"
HISTORY_LIMIT_CAUSE = f"The execution reached the maximum number of history events ({HISTORY_EVENT_LIMIT})."
PAGE_DEFAULT, PAGE_MAX = 100, 1000


def _history_full_error() -> ExecutionFailedEventDetails:
    return ExecutionFailedEventDetails(error=HISTORY_LIMIT_ERROR, cause=HISTORY_LIMIT_CAUSE)


def _owning_environment(original):
    """Each execution's event manager knows its execution (frames share the manager, and so the execution)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.event_manager.pricefeed_execution = weakref.ref(self)

    __init__.__wrapped__ = original
    return __init__


def _counted(original):
    """The event that reaches the limit fails the execution once; its terminal event is still recorded."""

    def add_event(self, *args: Any, **kwargs: Any) -> int:
        event_id = original(self, *args, **kwargs)
        execution = getattr(self, "pricefeed_execution", lambda: None)()
        if event_id >= HISTORY_EVENT_LIMIT and execution is not None and not getattr(self, "history_full", False):
            self.history_full = True
            execution.set_error(_history_full_error())
        return event_id

    add_event.__wrapped__ = original
    return add_event


def _history_error_wins(original):
    """Once the history is full, whatever else a running state then fails with (moto raises when a state that was
    running sets its next state on a failed execution) is not the execution's error: the full history is."""

    def set_error(self, error: ExecutionFailedEventDetails) -> None:
        if getattr(self.event_manager, "history_full", False):
            error = _history_full_error()
        original(self, error)

    set_error.__wrapped__ = original
    return set_error


def _paged(original):
    def get_execution_history(self) -> Any:
        arn = self._get_param("executionArn")
        size = self._get_param("maxResults") or PAGE_DEFAULT
        if not 0 < int(size) <= PAGE_MAX:
            raise sfn_exceptions.ValidationException(
                f"1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: "
                f"Member must have value less than or equal to {PAGE_MAX}"
            )
        start = _offset(self._get_param("nextToken"))
        execution = self.stepfunction_backend.describe_execution(execution_arn=arn)
        if not hasattr(execution, "exec_worker"):  # moto's non-executing backend: its canned history
            return original(self)
        env = execution.exec_worker.env if execution.exec_worker is not None else None
        events: list[Any] = []
        more = False
        if env is not None:
            manager = env.event_manager
            with manager._mutex:
                ordered = manager._history_event_list
                if self._get_param("reverseOrder"):
                    ordered = ordered[::-1]
                events = copy.deepcopy(ordered[start : start + int(size)])
                more = start + int(size) < len(ordered)
        answer: dict[str, Any] = {"events": events}
        if events and more:
            answer["nextToken"] = f"pricefeed-history-{start + int(size)}"
        return sfn_responses.ActionResult(answer)

    get_execution_history.__wrapped__ = original
    return get_execution_history


def _offset(token: str | None) -> int:
    if not token:
        return 0
    prefix = "pricefeed-history-"
    if not token.startswith(prefix) or not token[len(prefix) :].isdigit():
        raise sfn_exceptions.InvalidToken(f"{token!r} is not a token this service gave")
    return int(token[len(prefix) :])


def install() -> None:
    """Idempotent."""
    wrap_once(sfn_environment.Environment, "__init__", _owning_environment)
    wrap_once(sfn_environment.Environment, "set_error", _history_error_wins)
    wrap_once(sfn_events.EventManager, "add_event", _counted)
    wrap_once(sfn_responses.StepFunctionResponse, "get_execution_history", _paged)
