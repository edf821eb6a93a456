"""The stack's Glue jobs, run for real: each run executes the job's script from `glue/` in this process, with its
own arguments as ``sys.argv`` and the stack's AWS environment, side by side with other runs as on AWS. Tests use
the context managers to make runs fail, start together, or time out early."""

from __future__ import annotations

import runpy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pricefeed.local.lambda_runtime import lambda_environment, run_argv
from pricefeed.local.motopatch import glue_runs


class GlueJobs:
    def __init__(self, logs: Path, aws_env: Callable[[], dict[str, str]]):
        self._logs, self._aws_env = logs, aws_env
        self._fault: str | None = None
        self._together: threading.Barrier | None = None
        self._names: list[str] = []
        self._open_logs: list = []

    def register(self, logical: str, name: str, script: Path) -> None:
        """Runs of the job ``name`` (the template's ``logical``) run ``script``; it logs to ``<logical>.log``."""
        log = open(self._logs / f"{logical}.log", "a", buffering=1)
        self._open_logs.append(log)
        self._names.append(name)

        def run(arguments: dict[str, str]) -> str | None:
            if self._fault is not None:
                return self._fault
            if self._together is not None:
                self._together.wait()
            argv = [str(script), "--JOB_NAME", name, "--JOB_RUN_ID", "local"]
            argv += [part for pair in arguments.items() for part in pair]
            # runs side by side, as on AWS (up to the job's MaxConcurrentRuns, which moto enforces)
            with run_argv(argv), lambda_environment(self._aws_env(), log):
                try:
                    runpy.run_path(str(script), run_name="__main__")
                except SystemExit as exc:
                    if exc.code not in (0, None):
                        return f"job script exited with {exc.code}"
            return None

        glue_runs.register_glue_job(name, run)

    def close(self) -> None:
        for log in self._open_logs:
            log.close()
        self._open_logs.clear()

    @contextmanager
    def fail(self, message: str) -> Iterator[None]:
        """While inside, every job run FAILS with ``message`` (its script does not run)."""
        self._fault = message
        try:
            yield
        finally:
            self._fault = None

    @contextmanager
    def together(self, runs: int) -> Iterator[None]:
        """While inside, each job run waits (60 s at most) until ``runs`` of them started, then all run at once."""
        self._together = threading.Barrier(runs, timeout=60)
        try:
            yield
        finally:
            self._together = None

    @contextmanager
    def timeout(self, seconds: float) -> Iterator[None]:
        """While inside, job runs time out after ``seconds`` instead of their declared Timeout (as if declared so);
        on leaving, waits for the scripts of timed-out runs to end."""
        for name in self._names:
            glue_runs.set_glue_timeout(name, seconds)
        try:
            yield
        finally:
            for name in self._names:
                glue_runs.set_glue_timeout(name, None)
            glue_runs.wait_for_glue_scripts()
