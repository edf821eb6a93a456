"""Lambda handlers under test: ``functions/<name>/app.py`` loaded fresh (a cold start), a fake context, and the
sample events of ``events/``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType, SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


def lambda_context(name: str, *, memory_mb: int = 512, region: str = "ap-south-1") -> SimpleNamespace:
    """What Powertools reads from a Lambda context."""
    return SimpleNamespace(
        function_name=name,
        memory_limit_in_mb=memory_mb,
        invoked_function_arn=f"arn:aws:lambda:{region}:123456789012:function:{name}",
        aws_request_id="req-1",
    )


def load_handler(name: str, monkeypatch=None, env: dict[str, str] | None = None) -> ModuleType:
    """The module of ``functions/<name>/app.py``, imported anew. With ``monkeypatch``, the environment first:
    Powertools' service name, tracing off, and ``env`` (what template.yaml gives the function)."""
    if monkeypatch is not None:
        for key, value in {"POWERTOOLS_SERVICE_NAME": name, "POWERTOOLS_TRACE_DISABLED": "true", **(env or {})}.items():
            monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", ROOT / "functions" / name / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "metrics"):
        module.metrics.clear_metrics()  # Powertools keeps the metric set on the class: start from nothing
    return module


def sample_event(name: str) -> dict:
    """``events/<name>.json`` (what ``sam local invoke -e`` would send)."""
    return json.loads((EVENTS / f"{name}.json").read_text())
