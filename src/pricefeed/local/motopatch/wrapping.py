"""How every motopatch module installs its wrappers: once, however often ``install`` is called."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def wrap_once(owner: Any, name: str, wrap: Callable[[Callable], Callable]) -> None:
    """Replace ``owner.name`` with ``wrap(original)`` unless it is wrapped already (the wrapper sets
    ``__wrapped__``)."""
    method = getattr(owner, name)
    if not hasattr(method, "__wrapped__"):
        setattr(owner, name, wrap(method))
