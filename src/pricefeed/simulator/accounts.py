"""Simulated OAuth: auth codes, access and refresh tokens as HS256 JWTs.

Tokens are signed with a key derived from the app's id, secret and the seed, so a simulator
restarted with the same config accepts tokens it issued before. Lifetimes follow the reference:
auth code 8h20m and single-use, refresh token 15 days, access token until the next 06:00 IST. Whether a
refresh is honoured at all is a knob (``refresh_policy``: refused by default, as Fyers since April 2026).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import secrets
import threading
from typing import Any

from .config import SimulatorConfig
from .errors import ApiError
from .timeutil import next_ist_time

AUTH_CODE_TTL = 8 * 3600 + 20 * 60
REFRESH_TTL = 15 * 86_400

EXPIRED = ApiError(401, -8, "Your token has expired. Please generate a token")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Accounts:
    """Issues and checks tokens for the one configured app. Thread-safe."""

    def __init__(self, cfg: SimulatorConfig):
        self._cfg = cfg
        material = f"pricefeed-sim|{cfg.app_id}|{cfg.secret_key}|{cfg.seed}"
        self._key = hashlib.sha256(material.encode()).digest()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._used_codes: set[str] = set()
        self._revoked: set[str] = set()  # uuids of revoked access/refresh tokens
        self._overrides: list[tuple[int, float]] = []  # (tokens with seq <= this, expire at)

    # --- JWT ------------------------------------------------------------------------------------
    def _sign(self, claims: dict[str, Any]) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        sig = hmac.new(self._key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(sig)}"

    def _decode(self, token: str) -> dict[str, Any] | None:
        """Claims of a token this simulator signed, or None if malformed or forged."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            sig = _unb64(parts[2])
            claims = json.loads(_unb64(parts[1]))
        except (binascii.Error, ValueError):
            return None
        good = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(sig, good) or not isinstance(claims, dict):
            return None
        return claims

    def _issue(self, sub: str, now: float, exp: float, fy_id: str, **extra: Any) -> str:
        with self._lock:
            seq = next(self._seq)
            self._last_seq = seq
        claims = {
            "iss": "api.fyers.in" if sub != "auth_code" else "api.login.fyers.in",
            "iat": int(now),
            "exp": int(exp),
            "nbf": int(now),
            "sub": sub,
            "app_id": self._cfg.app_id.rsplit("-", 1)[0],
            "display_name": "SIM USER",
            "fy_id": fy_id,
            "uuid": secrets.token_hex(16),
            "seq": seq,
            **extra,
        }
        return self._sign(claims)

    # --- flows ------------------------------------------------------------------------------------
    def issue_auth_code(self, now: float, fy_id: str | None = None) -> str:
        """A fresh single-use auth code (what generate-authcode redirects with) for account ``fy_id``."""
        return self._issue("auth_code", now, now + AUTH_CODE_TTL, fy_id or self._cfg.fy_id)

    def _check_app(self, body: dict[str, Any], grant_type: str) -> None:
        if body.get("grant_type") != grant_type:
            raise ApiError(400, -441, "invalid grant type")
        if not isinstance(body.get("appIdHash"), str) or not hmac.compare_digest(
            body["appIdHash"].lower(), self._cfg.app_id_hash
        ):
            raise ApiError(400, -371, "Please provide sha256 hash of appId and app secret")

    def _new_access(self, now: float, fy_id: str) -> str:
        return self._issue("access_token", now, next_ist_time(now, 6), fy_id)

    def _new_refresh(self, now: float, fy_id: str) -> str:
        return self._issue("refresh_token", now, now + REFRESH_TTL, fy_id)

    def exchange_auth_code(self, body: dict[str, Any], now: float, *, with_refresh: bool = True) -> dict[str, Any]:
        """validate-authcode: -441 bad grant_type, -371 bad appIdHash, -437 bad/expired/reused code.
        ``with_refresh``: the answer carries a refresh token (False: only the access token)."""
        self._check_app(body, "authorization_code")
        code = body.get("code")
        claims = self._decode(code) if isinstance(code, str) else None
        bad = ApiError(400, -437, "invalid auth code")
        if claims is None or claims.get("sub") != "auth_code" or now >= claims.get("exp", 0):
            raise bad
        with self._lock:
            if claims["uuid"] in self._used_codes:
                raise bad
            self._used_codes.add(claims["uuid"])
        reply = {"s": "ok", "code": 200, "message": "", "access_token": self._new_access(now, claims["fy_id"])}
        if with_refresh:
            reply["refresh_token"] = self._new_refresh(now, claims["fy_id"])
        return reply

    def refresh(
        self, body: dict[str, Any], now: float, *, rotate: bool = False, policy: str = "honoured"
    ) -> dict[str, Any]:
        """validate-refresh-token: a new access token; with ``rotate`` also a new refresh token.

        Errors: -441/-371 as above; ``policy`` "refused" (Fyers' 2026 rule: one 2FA login a trading day, no
        refresh) → HTTP 401 code -17, "refused_400" → HTTP 400 code -50; unknown, revoked or expired refresh
        token → HTTP 401 code -17; wrong PIN → HTTP 400 code -1005 (the simulator's choice; Fyers does not
        document it).
        """
        self._check_app(body, "refresh_token")
        if policy == "refused":
            raise ApiError(401, -17, "Refresh token is no longer supported. Please complete the daily login")
        if policy == "refused_400":
            raise ApiError(400, -50, "Invalid request: refresh token flow is discontinued")
        token = body.get("refresh_token")
        claims = self._decode(token) if isinstance(token, str) else None
        with self._lock:
            revoked = claims is not None and claims.get("uuid") in self._revoked
        if claims is None or claims.get("sub") != "refresh_token" or revoked:
            raise ApiError(401, -17, "Invalid refresh token")
        if now >= claims.get("exp", 0):
            raise ApiError(401, -17, "Refresh token expired. Please log in again")
        if not hmac.compare_digest(str(body.get("pin", "")).encode(), self._cfg.pin.encode()):
            raise ApiError(400, -1005, "Invalid pin")
        reply = {"s": "ok", "code": 200, "message": "", "access_token": self._new_access(now, claims["fy_id"])}
        if rotate:
            with self._lock:
                self._revoked.add(claims["uuid"])
            reply["refresh_token"] = self._new_refresh(now, claims["fy_id"])
        return reply

    def authenticate(self, header: str | None, now: float) -> dict[str, Any]:
        """Check ``Authorization: <APP_ID>:<access_token>``; returns the token's claims.

        Missing header or wrong app id → -16; malformed or forged token → -15; a token that is not an
        access token or was revoked (logout) → -17; expired → -8. All HTTP 401.
        """
        if not header:
            raise ApiError(401, -16, "Could not authenticate the user")
        app_id, sep, token = header.partition(":")
        if not sep or app_id != self._cfg.app_id:
            raise ApiError(401, -16, "Could not authenticate the user")
        claims = self._decode(token.strip())
        if claims is None:
            raise ApiError(401, -15, "Please provide a valid token")
        with self._lock:
            revoked = claims.get("uuid") in self._revoked
            overrides = list(self._overrides)
        if claims.get("sub") != "access_token" or revoked:
            raise ApiError(401, -17, "Invalid token or token expired")
        exp = float(claims.get("exp", 0))
        seq = int(claims.get("seq", 0))
        exp = min([exp] + [at for cutoff, at in overrides if seq <= cutoff])
        if now >= exp:
            raise EXPIRED
        return claims

    def logout(self, header: str | None, now: float) -> dict[str, Any]:
        """Revoke the access token in the header."""
        claims = self.authenticate(header, now)
        with self._lock:
            self._revoked.add(claims["uuid"])
        return {"s": "ok", "code": 200, "message": "User logged out successfully"}

    def expire_tokens_in(self, seconds: float, now: float) -> None:
        """Every access token issued so far expires at ``now + seconds`` (if not earlier).

        Tokens issued after this call keep their normal lifetime, so a client can refresh and go on.
        """
        with self._lock:
            self._overrides.append((self._last_seq, now + seconds))
