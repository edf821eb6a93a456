"""``python -m pricefeed.simulator --port 8000``: run the simulator in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import threading

from .config import SimulatorConfig
from .server import SimulatorServer


def main(argv: list[str] | None = None) -> None:
    defaults = SimulatorConfig()
    p = argparse.ArgumentParser(prog="python -m pricefeed.simulator", description=__doc__)
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0 = any free port)")
    p.add_argument("--app-id", default=defaults.app_id)
    p.add_argument("--secret-key", default=defaults.secret_key)
    p.add_argument("--redirect-uri", default=defaults.redirect_uri)
    p.add_argument("--pin", default=defaults.pin)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--per-second", type=int, default=defaults.per_second)
    p.add_argument("--per-minute", type=int, default=defaults.per_minute)
    p.add_argument("--per-day", type=int, default=defaults.per_day)
    p.add_argument("--unknown-symbol", action="append", default=[], help="answer -300 for this symbol")
    p.add_argument(
        "--refresh",
        choices=("refused", "refused_400", "honoured"),
        default="refused",
        help="validate-refresh-token: refused (Fyers since April 2026: one login a trading day) or honoured (before)",
    )
    p.add_argument("--quiet", action="store_true", help="no access log")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = SimulatorConfig(
        app_id=args.app_id,
        secret_key=args.secret_key,
        redirect_uri=args.redirect_uri,
        pin=args.pin,
        seed=args.seed,
        per_second=args.per_second,
        per_minute=args.per_minute,
        per_day=args.per_day,
        unknown_symbols=frozenset(args.unknown_symbol),
    )
    # Ctrl-C may land anywhere from the "listening" line on, so the whole server lifetime is covered.
    try:
        with SimulatorServer(cfg, port=args.port, access_log=not args.quiet) as sim:
            sim.set_faults(refresh_policy=args.refresh)
            print(
                f"Fyers simulator at {sim.url}  (app id {cfg.app_id}, redirect {cfg.redirect_uri}); "
                "Ctrl-C to stop",
                flush=True,
            )
            threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping", flush=True)


if __name__ == "__main__":
    main()
