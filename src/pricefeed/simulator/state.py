"""The simulator's shared state: its accounts, rate limits, statistics and fault knobs."""

from __future__ import annotations

import threading

from .accounts import Accounts
from .config import SimulatorConfig
from .faults import Faults
from .limits import RateLimiter
from .stats import Stats


class SimState:
    """Everything the handlers share; also what ``SimulatorServer`` exposes."""

    def __init__(self, cfg: SimulatorConfig):
        self.cfg = cfg
        self.accounts = Accounts(cfg)
        self.limiter = RateLimiter(cfg.per_second, cfg.per_minute, cfg.per_day, cfg.window_s)
        self.stats = Stats(self.limiter, cfg.now)
        self.faults = Faults(cfg.seed)
        self._expiry_lock = threading.Lock()
        self._expire_after: int | None = None

    def now(self) -> float:
        return self.cfg.now()

    def expire_tokens_after(self, history_requests: int) -> None:
        """Tokens issued so far expire after this many more served history answers (see SimulatorServer)."""
        with self._expiry_lock:  # 0: expire now, once; tokens issued afterwards are not touched
            self._expire_after = int(history_requests) if history_requests > 0 else None
        if history_requests <= 0:
            self.accounts.expire_tokens_in(0, self.now())

    def served_history(self) -> None:
        """Count one served history answer against a pending ``expire_tokens_after``."""
        with self._expiry_lock:
            if self._expire_after is None:
                return
            self._expire_after -= 1
            due = self._expire_after <= 0
            if due:
                self._expire_after = None
        if due:
            self.accounts.expire_tokens_in(0, self.now())

    def reset(self) -> None:
        """Zero the counters and give every app a fresh rate budget (tokens and knobs stay)."""
        self.stats.reset()
        self.limiter.reset()
