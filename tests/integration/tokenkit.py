"""Helpers for the token tests: a simulator on a shared clock, moto resources, a real login, keepers."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import requests

from awskit import Serialized, create_state_table
from pricefeed.auth.callback import complete_login, login_location
from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.store import AppConfig, TokenStore
from pricefeed.istime import IST
from pricefeed.simulator import SimulatorConfig, SimulatorServer

APP_ID, SECRET_KEY, PIN = "PFSIM1-100", "sim-secret-KEY-42", "4821"
REDIRECT = "https://abc123.execute-api.ap-south-1.amazonaws.com/oauth/callback"
APP = AppConfig(app_id=APP_ID, secret_key=SECRET_KEY, redirect_uri=REDIRECT, pin=PIN)
TOKEN_SECRET, STATE_TABLE = "pricefeed/fyers-tokens", "pricefeed-state"
#: Tue 2026-11-24 17:30 IST: after the close, the way a person logs in.
LOGIN_AT = datetime(2026, 11, 24, 17, 30, tzinfo=IST)


def leaked(text: str, *secrets: str) -> list[str]:
    """The ``secrets`` found in ``text``. A secret of digits (the PIN) counts only standing alone: "4821" inside a
    log line's epoch milliseconds (1796338482190) is the clock, not a leak."""
    return [
        s for s in secrets
        if (re.search(rf"(?<!\d){re.escape(s)}(?!\d)", text) if s.isdigit() else s in text)
    ]


class Clock:
    """One clock for the simulator and every keeper; ``sleep`` moves it instead of waiting."""

    def __init__(self, start: datetime):
        self.t = start.timestamp()
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.t

    def set(self, moment: datetime) -> None:
        self.t = moment.timestamp()

    async def sleep(self, seconds: float) -> None:
        with self._lock:
            self.t += seconds
        await asyncio.sleep(0)



async def brief_pause(seconds: float) -> None:
    """A waiting worker's poll interval: real but tiny, and the shared clock stands still (no lease runs out)."""
    await asyncio.sleep(0.002)


def start_simulator(clock: Clock, *, refresh_policy: str = "honoured", **overrides: Any) -> SimulatorServer:
    """A simulator of this module's app. ``refresh_policy``: these tests are about the refresh where Fyers still
    honours it (the simulator's default is Fyers' 2026 rule: refused)."""
    config = SimulatorConfig(
        app_id=APP_ID, secret_key=SECRET_KEY, redirect_uri=REDIRECT, pin=PIN, clock=clock, **overrides
    )
    server = SimulatorServer(config, port=0).start()
    server.set_faults(refresh_policy=refresh_policy)
    return server


def create_resources(region: str) -> tuple[Any, Any]:
    """The token secret (empty: nobody logged in yet) and the state table; ``(secrets, dynamodb)``."""
    secrets = Serialized(boto3.client("secretsmanager", region_name=region))
    dynamodb = Serialized(boto3.client("dynamodb", region_name=region))
    secrets.create_secret(Name=TOKEN_SECRET, SecretString="{}")
    create_state_table(dynamodb, STATE_TABLE)
    return secrets, dynamodb


def fyers_redirect(sim: SimulatorServer, app: AppConfig = APP, *, now: float | None = None) -> dict[str, str]:
    """Follow /oauth/login's redirect to (simulated) Fyers; the query Fyers sends to our callback."""
    answer = requests.get(login_location(app, sim.url, now=now), allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text[:300]
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def login(sim: SimulatorServer, clock: Clock, secrets: Any, dynamodb: Any) -> None:
    """The whole login flow, storing tokens in the secret."""
    query = fyers_redirect(sim, now=clock())
    asyncio.run(
        complete_login(
            query,
            app=APP,
            base_url=sim.url,
            store=TokenStore(secrets, TOKEN_SECRET),
            dynamodb_client=dynamodb,
            table_name=STATE_TABLE,
            clock=clock,
        )
    )


def keeper(sim: SimulatorServer, clock: Clock, secrets: Any, dynamodb: Any, **overrides: Any) -> TokenKeeper:
    """A keeper as one Lambda would build it (its own cache)."""
    values: dict[str, Any] = dict(
        secrets_client=secrets,
        token_secret_id=TOKEN_SECRET,
        app=APP,
        base_url=sim.url,
        dynamodb_client=dynamodb,
        table_name=STATE_TABLE,
        clock=clock,
        sleep=brief_pause,
        poll_s=0.05,
    )
    values.update(overrides)
    return TokenKeeper(**values)


def stored_secret(secrets: Any) -> str:
    return secrets.get_secret_value(SecretId=TOKEN_SECRET)["SecretString"]


def refresh_calls(sim: SimulatorServer) -> int:
    return sim.stats()["requests"].get("/api/v3/validate-refresh-token", 0)


def history_window(clock: Clock) -> tuple[int, int]:
    """The last three days up to the clock, as history range bounds."""
    end = datetime.fromtimestamp(clock(), UTC) - timedelta(minutes=1)
    return int((end - timedelta(days=3)).timestamp()), int(end.timestamp())
