"""The simulator's fixed configuration (one simulated Fyers app and its user)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SimulatorConfig:
    """One simulated Fyers app, its user and the account's rate budget.

    ``clock`` returns epoch seconds (float); it drives token lifetimes, rate windows and which
    candles exist ("now"). Tests pass a controllable clock instead of sleeping. Default: ``time.time``.
    ``secret_key`` and ``pin`` are kept out of ``repr`` so they never land in logs.
    """

    app_id: str = "PFSIM1-100"
    secret_key: str = field(default="sim-secret", repr=False)
    redirect_uri: str = "http://127.0.0.1:8765/oauth/callback"
    pin: str = field(default="1234", repr=False)
    fy_id: str = "XS00001"  # the Fyers client ID that logs in (the ``fy_id`` claim of every token)
    per_second: int = 10
    per_minute: int = 200
    per_day: int = 100_000
    window_s: float = 60.0  # length of the per-minute window; tests compress time with it (the second stays 1 s)
    unknown_symbols: frozenset[str] = frozenset()  # taken out of the universe (master and history): "delisted"
    master_column_order: tuple[int, ...] | None = None  # /sym_details/ column j = documented column order[j]
    seed: int = 0
    clock: Callable[[], float] | None = None
    #: False: generate-authcode redirects straight back with an auth code (the user is always logged in).
    #: True: it shows a login form like Fyers' (client ID / mobile, PIN) and redirects only after a POST with
    #: the right ``pin``; a wrong PIN shows the form again with the error.
    login_page: bool = False

    def now(self) -> float:
        """Current epoch seconds per the configured clock."""
        return float(self.clock()) if self.clock is not None else time.time()

    @property
    def app_id_hash(self) -> str:
        """What clients send as ``appIdHash``: sha256 hex of ``"<APP_ID>:<APP_SECRET>"``."""
        return hashlib.sha256(f"{self.app_id}:{self.secret_key}".encode()).hexdigest()
