"""``SimulatorServer``: the app on 127.0.0.1 in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from typing import Any

from aiohttp import web

from pricefeed.trading_calendar import DEFAULT_CALENDAR

from .app import build_app
from .config import SimulatorConfig
from .state import SimState

log = logging.getLogger("pricefeed.simulator")


class SimulatorServer:
    """A Fyers API v3 simulator on loopback only; never touches the network.

    ``with SimulatorServer(cfg, port=0) as sim:`` starts it (port 0 = any free port) and stops it on
    exit; ``sim.url`` is ``http://127.0.0.1:<port>``. ``stats()``, ``set_faults(**knobs)``,
    ``expire_tokens_in(seconds)`` and ``reset_stats()`` are safe to call from any thread and are also
    reachable over HTTP under ``/_sim/``. ``stop()`` is idempotent, returns within a few seconds even with
    requests in flight, and frees the port.
    """

    def __init__(self, config: SimulatorConfig | None = None, port: int = 0, *, access_log: bool = False):
        self.config = config or SimulatorConfig()
        self._requested_port = port
        self._access_log = access_log
        self._state = SimState(self.config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port = 0

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        """Bind, start serving in a daemon thread, and return once requests are accepted."""
        if self._thread is not None:
            return self
        # Fyers stamps a request when it arrives: the calendar's first read would hold this server's one
        # loop for ~0.7 s inside the first history request, and requests sent meanwhile would all be
        # stamped at once when it ends, a burst the clients never sent
        DEFAULT_CALENDAR.load()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self._requested_port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name=f"fyers-sim-{self.port}", daemon=True
        )
        self._thread.start()
        self._ready.wait(timeout=10)
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error
        log.info("Fyers simulator listening on %s (app id %s)", self.url, self.config.app_id)
        return self

    def _run(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            kwargs: dict[str, Any] = {} if self._access_log else {"access_log": None}
            # a short shutdown grace keeps stop() quick even with a latency-knob request in flight
            self._runner = web.AppRunner(
                build_app(self._state), handle_signals=False, shutdown_timeout=0.25, **kwargs
            )
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.SockSite(self._runner, sock).start())
        except Exception as e:  # noqa: BLE001 - surfaced to start() in the caller's thread
            self._error = e
            sock.close()
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        """Stop serving, close every connection and free the port. Safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- knobs and counters -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (use it for both ``/api/v3`` and ``/data``)."""
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict[str, Any]:
        """Snapshot: ``requests`` (per path), ``total``, ``accepted``, ``rate_limited``, ``per_second_max``,
        ``per_minute_max``, ``per_day_max``, ``history_requests_by_symbol``, ``faults``, and per window:
        ``window_s``, ``windows``, ``max_in_any_sliding_window``, ``history_arrivals``, ``breached_minutes``,
        ``blocked`` (see ``Stats``)."""
        return self._state.stats.snapshot()

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Change any subset of the knobs (see ``pricefeed.simulator.faults.Knobs``); returns all knobs."""
        return self._state.faults.set(**knobs)

    def expire_tokens_in(self, seconds: float) -> None:
        """Every access token issued so far expires ``seconds`` from now (per the clock)."""
        self._state.accounts.expire_tokens_in(seconds, self._state.now())

    def expire_tokens_after(self, history_requests: int) -> None:
        """Every access token issued so far expires once ``history_requests`` more history answers were served
        (a deterministic "the token dies mid-run" for tests; tokens issued later are unaffected)."""
        self._state.expire_tokens_after(history_requests)

    def reset_stats(self) -> None:
        """Zero the counters and maxima and give every app a fresh rate budget."""
        self._state.reset()
