"""Glue job runs that run the real job script, held to their Timeout as on AWS.

moto records a job run and reports it SUCCEEDED at once. Here a run of a job the local stack registered runs its
script (the stack's runner) on a thread of its own, side by side with other runs as on AWS, and ends SUCCEEDED or
FAILED with the script's error as ``ErrorMessage``. A run is held to its Timeout (StartJobRun's, else the job's,
else Glue's default): at the deadline it is reported TIMEOUT, which the ``.sync`` task fails on; the script runs on
to its end without changing that, where AWS stops it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from moto.glue import models as glue_models

#: Glue's Timeout when neither StartJobRun nor the job sets one (minutes)
DEFAULT_TIMEOUT_MIN = 2880

# job name → callable(arguments) -> error message or None
GlueRunner = Callable[[dict[str, str]], str | None]
_runners: dict[str, GlueRunner] = {}
# job name → the Timeout its runs get instead of the one declared (seconds; tests shorten it)
_timeouts_s: dict[str, float] = {}
_scripts: list[threading.Thread] = []


def apply() -> None:
    glue_models.FakeJob.start_job_run = _start_job_run(glue_models.FakeJob.start_job_run)
    glue_models.FakeJobRun.as_dict = _job_run_as_dict(glue_models.FakeJobRun.as_dict)


def register_glue_job(name: str, runner: GlueRunner) -> None:
    """Runs of job ``name`` run ``runner`` (None back: SUCCEEDED; an error message: FAILED with it)."""
    _runners[name] = runner


def set_glue_timeout(name: str, seconds: float | None) -> None:
    """Runs of job ``name`` started from now on time out after ``seconds`` (None: their declared Timeout)."""
    if seconds is None:
        _timeouts_s.pop(name, None)
    else:
        _timeouts_s[name] = seconds


def wait_for_glue_scripts(timeout_s: float = 300) -> None:
    """Until every job script started has ended (a timed-out run's script runs on after its TIMEOUT)."""
    deadline = time.monotonic() + timeout_s
    for thread in list(_scripts):
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise TimeoutError(f"a Glue job script still running after {timeout_s:.0f} s")


def _start_job_run(original):
    def start_job_run(self, *args: Any, **kwargs: Any) -> str:
        run_id = original(self, *args, **kwargs)
        runner = _runners.get(self.name)
        if runner is None:
            return run_id
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        run._transitions, run._status, run.completed_on = [("RUNNING", "RUNNING")], "RUNNING", None
        ended = threading.Lock()

        def end(state: str, error: str | None) -> None:
            with ended:  # the first of the script's end and the deadline decides
                if run._status == "RUNNING":
                    run.error_message, run.completed_on = error, glue_models.utcnow()
                    run._transitions, run._status = [(state, state)], state

        minutes = run.timeout or DEFAULT_TIMEOUT_MIN
        timeout_s = _timeouts_s.get(self.name, minutes * 60.0)
        deadline = threading.Timer(timeout_s, end, ("TIMEOUT", f"Job run timed out after its Timeout of {minutes} min"))
        deadline.daemon = True

        def work() -> None:
            try:
                error = runner(dict(run.arguments or {}))
            except Exception as exc:  # noqa: BLE001 - any failure of the job script is a FAILED run
                error = f"{type(exc).__name__}: {exc}"
            deadline.cancel()
            end("FAILED" if error else "SUCCEEDED", error)

        script = threading.Thread(target=work, name=f"glue-{self.name}", daemon=True)
        _scripts[:] = [*(t for t in _scripts if t.is_alive()), script]
        deadline.start()
        script.start()
        return run_id

    return start_job_run


def _job_run_as_dict(original):
    def as_dict(self) -> dict[str, Any]:
        out = original(self)
        if getattr(self, "error_message", None):
            out["ErrorMessage"] = self.error_message
        if self.completed_on is None:  # still running: AWS gives no end
            del out["CompletedOn"]
        return out

    return as_dict
