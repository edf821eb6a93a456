"""A Fyers API v3 simulator on 127.0.0.1 for the offline demo, the tests and development.

``SimulatorServer(SimulatorConfig(...), port=0)`` serves ``/api/v3/generate-authcode``,
``/api/v3/validate-authcode``, ``/api/v3/validate-refresh-token``, ``/api/v3/logout`` and
``/data/history`` with Fyers' shapes, codes, token lifetimes and rate limits, deterministic candles,
and fault knobs. ``python -m pricefeed.simulator --port 8000`` runs it in the foreground.
"""

from .config import SimulatorConfig
from .faults import Knobs
from .server import SimulatorServer

__all__ = ["Knobs", "SimulatorConfig", "SimulatorServer"]
