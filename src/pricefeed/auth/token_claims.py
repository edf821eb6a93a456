"""What a Fyers token says about itself: its JWT claims, read without verifying (we cannot: Fyers signs them),
for when it expires and which account it was minted for."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

__all__ = ["jwt_expiry", "token_account"]


def _jwt_claims(token: str) -> dict:
    """A JWT's payload, read without verifying; ``{}`` if ``token`` is not a JWT."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return {}
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, TypeError, RecursionError):
        return {}
    return claims if isinstance(claims, dict) else {}


def jwt_expiry(token: str) -> datetime | None:
    """The ``exp`` claim of a JWT as a UTC datetime, read without verifying; ``None`` if not a JWT."""
    exp = _jwt_claims(token).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def token_account(token: str) -> str | None:
    """The Fyers client ID a token was minted for (its ``fy_id`` claim), or ``None`` when it does not say
    (not a JWT, or no such claim: whether every Fyers token carries it is unconfirmed)."""
    fy_id = _jwt_claims(token).get("fy_id")
    return fy_id.strip().upper() if isinstance(fy_id, str) and fy_id.strip() else None
