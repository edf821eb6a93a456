"""Run Lambda handlers in this process, each with its own environment, like a warm Lambda sandbox.

Concurrent Map iterations run on threads, so each function's environment lives in a context
variable overlaid on ``os.environ`` (boto3, Powertools and our Settings all read ``os.environ``),
and whatever a handler prints or logs goes to its function's log file instead of the terminal. Glue job runs
(each its own process on AWS, up to the job's MaxConcurrentRuns at once) likewise see their own
``sys.argv`` (:func:`run_argv`), so they run side by side here too.
"""

from __future__ import annotations

import contextvars
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

_ENV: contextvars.ContextVar[dict[bytes, bytes | None] | None] = contextvars.ContextVar("lambda_env", default=None)
_LOG: contextvars.ContextVar[io.TextIOBase | None] = contextvars.ContextVar("lambda_log", default=None)
_ARGV: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("job_argv", default=None)
_MASKED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
#: What a Lambda function sees of this machine's environment besides its own variables: what any process needs to
#: run (Lambda's runtime sets PATH, LANG, TZ... too). Nothing else: a function on AWS never sees the deployer's
#: FYERS_REDIRECT_URI or PRICEFEED_* settings, so one here must not either.
_HOST_KEPT = frozenset(
    os.fsencode(k)
    for k in ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV",
              "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE")
)


class _OverlayData(dict):
    """``os.environ._data`` whose lookups see the current invocation's environment first."""

    def _overlay(self) -> dict[bytes, bytes | None] | None:
        return _ENV.get()

    def __getitem__(self, key):
        over = self._overlay()
        if over is not None and key in over:
            value = over[key]
            if value is None:
                raise KeyError(key)
            return value
        return super().__getitem__(key)

    def __contains__(self, key):
        over = self._overlay()
        if over is not None and key in over:
            return over[key] is not None
        return super().__contains__(key)

    def _keys(self) -> list:
        over = self._overlay()
        if over is None:
            return list(super().keys())
        keys = [k for k in super().keys() if k not in over]
        return keys + [k for k, v in over.items() if v is not None]

    def __iter__(self):
        return iter(self._keys())

    def __len__(self):
        return len(self._keys())

    def keys(self):
        return self._keys()


class _RoutedStream(io.TextIOBase):
    """sys.stdout/stderr stand-in: inside an invocation, writes go to the function's log."""

    def __init__(self, real):
        self.real = real

    def write(self, s: str) -> int:
        target = _LOG.get()
        return (target or self.real).write(s)

    def flush(self) -> None:
        target = _LOG.get()
        (target or self.real).flush()

    def isatty(self) -> bool:
        return _LOG.get() is None and self.real.isatty()

    @property
    def encoding(self):
        return getattr(self.real, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.real.fileno()


class _RoutedArgv(list):
    """sys.argv stand-in: inside a job run, that run's own arguments; elsewhere the process's."""

    def _view(self) -> list[str]:
        run = _ARGV.get()
        return run if run is not None else list(list.__iter__(self))

    def __getitem__(self, index):
        return self._view()[index]

    def __setitem__(self, index, value) -> None:  # runpy sets argv[0] to the script while it runs
        run = _ARGV.get()
        if run is not None:
            run[index] = value
        else:
            list.__setitem__(self, index, value)

    def __iter__(self):
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __contains__(self, item) -> bool:
        return item in self._view()

    def __repr__(self) -> str:
        return repr(self._view())


def _routed_emit(original):
    """``logging.StreamHandler.emit`` that, inside an invocation, writes to the function's log: a handler made
    before (Powertools' Logger for a service is configured once a process, with the stdout of that moment)
    would otherwise write an invocation's lines wherever that stream goes. On Lambda every line a function
    writes reaches its log. Only plain StreamHandlers: files and subclasses (pytest's capture) keep theirs."""

    def emit(self: logging.StreamHandler, record: logging.LogRecord) -> None:
        target = _LOG.get()
        if target is None or type(self) is not logging.StreamHandler:
            return original(self, record)
        try:
            target.write(self.format(record) + self.terminator)
        except Exception:  # noqa: BLE001 - as logging does: a failing handler reports, never raises
            self.handleError(record)
        return None

    return emit


_installed = threading.Lock()
_is_installed = False
_argv_installed = False


def install() -> None:
    """Once per process: overlay os.environ and route stdout/stderr. Harmless outside invocations."""
    global _is_installed
    with _installed:
        if _is_installed:
            return
        os.environ._data = _OverlayData(os.environ._data)  # type: ignore[attr-defined]
        sys.stdout = _RoutedStream(sys.stdout)
        sys.stderr = _RoutedStream(sys.stderr)
        logging.StreamHandler.emit = _routed_emit(logging.StreamHandler.emit)  # type: ignore[method-assign]
        _is_installed = True


@contextmanager
def lambda_environment(
    env: Mapping[str, str], log: io.TextIOBase | None = None, *, isolated: bool = False
) -> Iterator[None]:
    """Inside, ``os.environ`` reads ``env`` over this process's environment, and prints go to ``log``.
    ``isolated`` (a Lambda function): of this process's environment only what any process needs shows through."""
    install()
    over: dict[bytes, bytes | None] = {k.encode(): None for k in _MASKED}
    if isolated:
        over.update({k: None for k in dict.keys(os.environ._data) if k not in _HOST_KEPT})  # type: ignore[attr-defined]
    over.update({os.fsencode(k): os.fsencode(str(v)) for k, v in env.items()})
    env_token = _ENV.set(over)
    log_token = _LOG.set(log)
    try:
        yield
    finally:
        _ENV.reset(env_token)
        _LOG.reset(log_token)


@contextmanager
def run_argv(argv: list[str]) -> Iterator[None]:
    """Inside, ``sys.argv`` reads as ``argv`` on this thread (and the tasks it starts) only."""
    global _argv_installed
    with _installed:
        if not _argv_installed:
            sys.argv = _RoutedArgv(sys.argv)
            _argv_installed = True
    token = _ARGV.set(list(argv))
    try:
        yield
    finally:
        _ARGV.reset(token)


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    deadline: float | None = None  # time.monotonic() when the function's Timeout runs out

    def get_remaining_time_in_millis(self) -> int:
        if self.deadline is None:
            return 900_000
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class FunctionSandbox:
    """One function's unpacked code and loaded handler module (loaded on first invoke: a cold start)."""

    def __init__(
        self,
        name: str,
        handler: str,
        code_zip: bytes,
        workdir: Path,
        log_path: Path,
        *,
        timeout_s: float | None = None,
        memory_mb: int = 512,
    ):
        """``timeout_s``: the function's Timeout (None: none); an invocation that runs longer fails as on AWS."""
        self.name, self.timeout_s, self.memory_mb = name, timeout_s, memory_mb
        self.module_name, self.handler_name = handler.rsplit(".", 1)
        self.code_dir = workdir / name
        self.code_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(code_zip)) as zf:
            zf.extractall(self.code_dir)
        self.log_path = log_path
        self._log = open(log_path, "a", buffering=1)
        self._module: ModuleType | None = None
        self._lock = threading.Lock()

    def _load(self) -> ModuleType:
        with self._lock:
            if self._module is None:
                path = self.code_dir / (self.module_name.replace(".", "/") + ".py")
                spec = importlib.util.spec_from_file_location(f"_lambda_{uuid.uuid4().hex}", path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._module = module
            return self._module

    def invoke(self, event: Any, env: Mapping[str, str], arn: str) -> tuple[str, bool]:
        """(payload JSON, errored) — an error payload is shaped like Lambda's own. An invocation that ran past the
        function's Timeout fails with Lambda's ``Sandbox.Timedout`` whatever it returned (AWS would have stopped
        it there; here it runs to its end, so what it did after the deadline is the one difference)."""
        request_id = str(uuid.uuid4())
        with lambda_environment(env, self._log, isolated=True):
            deadline = None
            try:
                module = self._load()  # a cold start's init: on AWS its own phase, not counted against the Timeout
                if self.timeout_s is not None:
                    deadline = time.monotonic() + self.timeout_s
                context = LambdaContext(
                    self.name, self.memory_mb, aws_request_id=request_id, invoked_function_arn=arn, deadline=deadline
                )
                payload, errored = json.dumps(getattr(module, self.handler_name)(event, context)), False
            except Exception as exc:  # noqa: BLE001 - every handler error becomes a Lambda error payload
                print(f"[ERROR] {type(exc).__name__}: {exc}", file=self._log)  # as Lambda's Python runtime logs it
                traceback.print_exc(file=self._log)
                error = {"errorType": type(exc).__name__, "errorMessage": str(exc), "requestId": request_id}
                payload, errored = json.dumps(error), True
            if deadline is not None and time.monotonic() > deadline:
                timed_out = f"Task timed out after {self.timeout_s:.2f} seconds"
                message = f"RequestId: {request_id} Error: {timed_out}"
                print(message, file=self._log)
                error = {"errorType": "Sandbox.Timedout", "errorMessage": message, "requestId": request_id}
                return json.dumps(error), True
            return payload, errored

    def close(self) -> None:
        self._log.close()


def event_json(event: Any) -> Any:
    """An invocation's payload as the handler gets it: parsed JSON (moto passes bytes or text)."""
    if isinstance(event, (bytes, str)):
        return json.loads(event or "{}")
    return event
