"""Fyers tokens for workers: a cached read of the token secret, and a refresh that happens once.

Every worker (Lambda) shares one Fyers login. ``TokenKeeper.access_token()`` reads the token secret
through a Powertools cache; when Fyers answers "token expired", every worker holding that token calls
``replace_expired`` at about the same time, and exactly one of them refreshes: it holds the lease
(``pricefeed.auth.refresh_lease``) while the others poll the secret until the new token appears. The lease
item remembers which token was replaced or why its refresh failed, so nobody refreshes twice or asks Fyers
again for a refresh it refused. Since April 2026 Fyers may refuse every refresh (one 2FA login a trading
day): a refused refresh is ``NotLoggedIn``, and :meth:`TokenKeeper.usable` says whether a login valid now
exists (``pricefeed.auth.daily_login``). The morning check lives in ``pricefeed.auth.renewal``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from pricefeed.auth import fyers_oauth
from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.auth.refresh_lease import RefreshLease, fingerprint, shared_error
from pricefeed.auth.store import AppConfig, TokenStore, load_app_config, tokens_from_secret
from pricefeed.config import Settings
from pricefeed.errors import FyersError, NotLoggedIn, PricefeedError, TransientFyersError
from pricefeed.istime import IST

log = logging.getLogger(__name__)

RELOGIN = "log in again at /oauth/login"


def _not_found(exc: GetParameterError) -> bool:
    cause = exc.__context__
    return isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


class TokenKeeper:
    """The current Fyers access token for one app, shared safely by many concurrent workers.

    ``cache_s``: how long a read of the secret is reused. ``lease_s``: how long one worker may hold the
    refresh lease before another takes over. ``poll_s``: how often a waiting worker re-reads the secret.
    ``clock``/``sleep`` are injectable so tests control time. Errors: ``NotLoggedIn`` (no tokens, or the
    refresh token expired or was refused: log in again), Fyers' named error when a refresh is refused
    (e.g. ``BadRequest`` for a wrong PIN), ``TransientFyersError`` when waiting for another worker's
    refresh timed out.
    """

    def __init__(
        self,
        *,
        secrets_client: Any,
        token_secret_id: str,
        app: AppConfig,
        base_url: str,
        dynamodb_client: Any,
        table_name: str,
        cache_s: float = 300.0,
        lease_s: float = 30.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        session: aiohttp.ClientSession | None = None,
        poll_s: float = 0.5,
    ):
        self.app = app
        self.base_url = base_url
        self.secret_id = token_secret_id
        self._provider = SecretsProvider(boto3_client=secrets_client)
        self._store = TokenStore(secrets_client, token_secret_id)
        self._lease = RefreshLease(dynamodb_client, table_name, app.app_id, clock=clock, lease_s=lease_s)
        self._cache_s, self._lease_s, self._poll_s = cache_s, lease_s, poll_s
        self._clock, self._sleep, self._session = clock, sleep, session
        self._latest: Tokens | None = None
        self._replaced: list[str] = []  # fingerprints of access tokens this keeper saw replaced

    def __repr__(self) -> str:
        return f"TokenKeeper(app_id={self.app.app_id!r}, secret_id={self.secret_id!r})"

    def now(self) -> datetime:
        """The keeper's clock as a UTC datetime."""
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- reading -----------------------------------------------------------------------------------
    async def tokens(self, *, force: bool = False) -> Tokens:
        """The stored tokens: from the cache (up to ``cache_s`` old) unless ``force``; never an access
        token this keeper already saw replaced. ``NotLoggedIn`` if none are stored."""
        tokens = await asyncio.to_thread(self._read, force)
        if self._latest is not None and fingerprint(tokens.access_token) in self._replaced:
            return self._latest  # a cached (or not yet consistent) read of the old secret
        self._latest = tokens
        return tokens

    def _saw_replaced(self, failed: str, tokens: Tokens) -> str:
        if failed not in self._replaced:
            self._replaced = [*self._replaced[-15:], failed]
        self._latest = tokens
        return tokens.access_token

    def _read(self, force: bool) -> Tokens:
        try:
            text = self._provider.get(self.secret_id, max_age=max(0, int(self._cache_s)), force_fetch=force)
        except GetParameterError as exc:
            if not _not_found(exc):
                raise
            text = None
        try:
            return tokens_from_secret(text, self.secret_id)
        except NotLoggedIn:
            if force:
                raise
            return self._read(True)  # a cached "not logged in" may predate the login

    async def usable(self, *, force: bool = True) -> Tokens | None:
        """The stored tokens if they may be sent now: not past their expiry (refreshed first where Fyers still
        honours the refresh) and not refused by Fyers with a refused refresh on record. ``None``: a login is
        needed (since April 2026 Fyers wants one 2FA login a trading day)."""
        try:
            tokens = await self.tokens(force=force)
            if tokens.access_expired(self.now(), margin=timedelta(0)):
                await self.replace_expired(tokens.access_token)
                return await self.tokens(force=True)
            refused = await asyncio.to_thread(self.refused, tokens.access_token)
        except NotLoggedIn:
            refused = "no login"
        if refused and not force:
            return await self.usable(force=True)  # a cached read may predate the new login
        return None if refused else tokens

    def refused(self, access_token: str) -> str | None:
        """Why Fyers refused ``access_token`` and then its refresh (recorded by the worker that tried; only a new
        login helps), or ``None``."""
        lease = self._lease.read()
        if lease.get("failed", {}).get("S") != fingerprint(access_token):
            return None
        if lease.get("error_type", {}).get("S") != NotLoggedIn.__name__:
            return None
        return lease.get("error_message", {}).get("S") or f"Fyers refused the token and its refresh: {RELOGIN}"

    async def access_token(self) -> str:
        """The access token to send; refreshed first (once, for everyone) if it has already expired."""
        tokens = await self.tokens()
        if tokens.access_expired(self.now(), margin=timedelta(0)):
            tokens = await self.tokens(force=True)
            if tokens.access_expired(self.now(), margin=timedelta(0)):
                return await self.replace_expired(tokens.access_token)
        return tokens.access_token

    # --- refreshing --------------------------------------------------------------------------------
    async def replace_expired(self, failed_access_token: str) -> str:
        """An access token other than ``failed_access_token`` (which Fyers just refused).

        If the stored token already differs, someone refreshed: that one is returned. Otherwise the one
        worker that takes the lease refreshes and stores the new tokens; the rest poll the secret until
        they change (or take over when the lease runs out). Exactly one refresh call per expired token.
        """
        failed = fingerprint(failed_access_token)
        deadline = self._clock() + 3 * self._lease_s
        while True:
            tokens = await self.tokens(force=True)
            if tokens.access_token != failed_access_token:
                return self._saw_replaced(failed, tokens)
            try:
                self._check_refreshable(tokens)
            except NotLoggedIn as exc:  # on record, so a login check does not take this token for usable
                await asyncio.to_thread(self._lease.record_refusal, failed, exc)
                raise
            refusal = await asyncio.to_thread(self.refused, failed_access_token)
            if refusal:  # final until the next login
                raise NotLoggedIn(refusal)
            lease = await asyncio.to_thread(self._lease.take, failed)
            if lease is not None:
                return await self._refresh_holding(lease, failed_access_token, failed)
            lease = await asyncio.to_thread(self._lease.read)
            if lease.get("failed", {}).get("S") == failed and float(lease["lease_until"]["N"]) > self._clock():
                raise shared_error(lease)
            if self._clock() >= deadline:
                raise TransientFyersError(
                    f"token refresh: no new access token stored within {3 * self._lease_s:g}s by the worker "
                    "holding the refresh lease"
                )
            await self._sleep(self._poll_s)

    def _check_refreshable(self, tokens: Tokens) -> None:
        if not tokens.refresh_token:
            raise NotLoggedIn(f"Fyers issued no refresh token with this login (one login a trading day): {RELOGIN}")
        if tokens.refresh_expired(self.now(), margin=timedelta(0)):
            when = tokens.refresh_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
            raise NotLoggedIn(f"the Fyers refresh token expired at {when}: {RELOGIN}")

    async def _refresh_holding(self, lease: tuple[str, str], failed_access_token: str, failed: str) -> str:
        try:
            tokens = await self.tokens(force=True)  # double-check: a refresh may have landed just before our lease
            if tokens.access_token != failed_access_token:
                await asyncio.to_thread(self._lease.end, lease, {})
                return self._saw_replaced(failed, tokens)
            self._check_refreshable(tokens)
            new = await self._refresh(tokens)
            if not await asyncio.to_thread(self._store.save_if_current, new, tokens.access_token):
                # a login landed while Fyers answered: its tokens are newer than ours and win
                current = await self.tokens(force=True)
                await asyncio.to_thread(self._lease.end, lease, {"replaced": {"S": failed}})
                log.info("a login stored new tokens during the refresh; keeping those")
                return self._saw_replaced(failed, current)
        except PricefeedError as exc:
            record = {
                "failed": {"S": failed},
                "error_type": {"S": type(exc).__name__},
                "error_message": {"S": str(exc)[:500]},
            }
            await asyncio.to_thread(self._lease.end, lease, record, keep_lease=True)
            raise
        except BaseException:
            await asyncio.to_thread(self._lease.end, lease, {})
            raise
        self._saw_replaced(failed, new)
        await asyncio.to_thread(self._lease.end, lease, {"replaced": {"S": failed}})
        log.info(
            "Fyers access token refreshed",
            extra={
                "access_expires_at": new.access_expires_at.isoformat(),
                "refresh_rotated": new.refresh_token != tokens.refresh_token,
            },
        )
        return new.access_token

    async def _refresh(self, tokens: Tokens) -> Tokens:
        app = self.app
        try:
            if self._session is not None:
                return await fyers_oauth.refresh_access_token(
                    self._session, self.base_url, app.app_id, app.secret_key, tokens, app.pin, now=self.now()
                )
            async with aiohttp.ClientSession() as session:
                return await fyers_oauth.refresh_access_token(
                    session, self.base_url, app.app_id, app.secret_key, tokens, app.pin, now=self.now()
                )
        except TransientFyersError:
            raise
        except FyersError as exc:  # since April 2026 Fyers may refuse every refresh: a login is needed, not a retry
            raise NotLoggedIn(
                f"Fyers refused the refresh (HTTP {exc.http_status}, Fyers code {exc.code}): {RELOGIN}"
            ) from None

def keeper_from_settings(settings: Settings, *, secrets_client: Any, dynamodb_client: Any) -> TokenKeeper:
    """The deployed functions' keeper: the app's config secret, the token secret and the state table of
    ``settings``."""
    return TokenKeeper(
        secrets_client=secrets_client,
        token_secret_id=settings.token_secret_id,
        app=load_app_config(secrets_client, settings.app_config_secret_id),
        base_url=settings.fyers_api_base_url,
        dynamodb_client=dynamodb_client,
        table_name=settings.state_table,
    )
