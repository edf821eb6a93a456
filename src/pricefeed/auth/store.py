"""Fyers tokens and app credentials kept in AWS Secrets Manager."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.errors import InvalidInput, NotLoggedIn

#: Environment variables that override single fields of the app-config secret when non-empty.
APP_CONFIG_ENV = {
    "app_id": "FYERS_APP_ID",
    "secret_key": "FYERS_SECRET_KEY",
    "redirect_uri": "FYERS_REDIRECT_URI",
    "pin": "FYERS_PIN",
}


def _read_secret(secrets_client: Any, secret_id: str) -> str | None:
    """The secret's current string value; ``None`` if the secret or its value does not exist."""
    try:
        answer = secrets_client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    return answer.get("SecretString")


def tokens_from_secret(text: str | bytes | None, secret_id: str) -> Tokens:
    """Parse the token secret's value (``None`` = no secret/value). ``NotLoggedIn`` naming the secret
    (never a value) when it holds no usable tokens — the remedy is the login flow."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    if not text or not text.strip():
        raise NotLoggedIn(f"no Fyers tokens in secret {secret_id!r}: run the login flow")
    try:
        data = json.loads(text)
    except ValueError:
        raise NotLoggedIn(f"secret {secret_id!r} does not hold JSON: run the login flow") from None
    if not data:
        raise NotLoggedIn(f"no Fyers tokens in secret {secret_id!r}: run the login flow")
    if not isinstance(data, dict):
        raise NotLoggedIn(f"secret {secret_id!r} does not hold a JSON object: run the login flow")
    try:
        return Tokens.from_json(data)
    except InvalidInput as exc:
        raise NotLoggedIn(f"secret {secret_id!r}: {exc}; run the login flow") from None


#: The label a refreshed value is put under before it becomes current (:meth:`TokenStore.save_if_current`).
REFRESH_STAGE = "pricefeed-refreshed"


class TokenStore:
    """The current Fyers tokens, stored as one JSON secret (``Tokens.to_json``)."""

    def __init__(self, secrets_client: Any, secret_id: str):
        self._client = secrets_client
        self.secret_id = secret_id

    def __repr__(self) -> str:
        return f"TokenStore(secret_id={self.secret_id!r})"

    def load(self) -> Tokens:
        """The stored tokens; ``NotLoggedIn`` if there are none yet (``{}``, no value, no secret) or
        they are unusable — either way the remedy is the login flow."""
        return tokens_from_secret(_read_secret(self._client, self.secret_id), self.secret_id)

    def save_if_current(self, tokens: Tokens, replacing: str) -> bool:
        """Store ``tokens`` only if the stored access token is still ``replacing`` (what a refresh started from);
        ``False`` when a login (or another refresh) stored newer tokens meanwhile: those are kept.

        A compare-and-set on the secret's versions: the new value is put under a label of its own, then the
        ``AWSCURRENT`` label is moved to it from the version read first, which Secrets Manager refuses when
        that version is no longer current."""
        answer = self._client.get_secret_value(SecretId=self.secret_id)
        if tokens_from_secret(answer.get("SecretString"), self.secret_id).access_token != replacing:
            return False
        put = self._client.put_secret_value(
            SecretId=self.secret_id, SecretString=tokens.to_json(), VersionStages=[REFRESH_STAGE]
        )
        try:
            self._client.update_secret_version_stage(
                SecretId=self.secret_id,
                VersionStage="AWSCURRENT",
                MoveToVersionId=put["VersionId"],
                RemoveFromVersionId=answer["VersionId"],
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidParameterException":
                return False  # AWSCURRENT moved on between the read and the move
            raise
        return True

    def save(self, tokens: Tokens) -> None:
        """Store ``tokens`` as the secret's new current version (creating a missing secret by name)."""
        try:
            self._client.put_secret_value(SecretId=self.secret_id, SecretString=tokens.to_json())
        except ClientError as exc:
            missing = exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException"
            if not missing or self.secret_id.startswith("arn:"):
                raise
            self._client.create_secret(Name=self.secret_id, SecretString=tokens.to_json())


@dataclass(frozen=True, repr=False)
class AppConfig:
    """The Fyers app's credentials and the user's PIN."""

    app_id: str
    secret_key: str
    redirect_uri: str
    pin: str
    fy_id: str | None = None  # the Fyers client ID the stack serves; None: whoever logged in first

    def __repr__(self) -> str:
        return (
            f"AppConfig(app_id={self.app_id!r}, secret_key=<redacted>, "
            f"redirect_uri={self.redirect_uri!r}, pin=<redacted>, fy_id={self.fy_id!r})"
        )

    __str__ = __repr__


def load_app_config(
    secrets_client: Any, secret_id: str, environ: Mapping[str, str] = os.environ
) -> AppConfig:
    """The app config from the JSON secret ``secret_id``, each field overridden by its non-empty
    ``FYERS_*`` environment variable. ``InvalidInput`` names any field that is still missing.

    A missing secret (or an empty ``secret_id``) is fine when the environment supplies every field.
    """
    text = _read_secret(secrets_client, secret_id) if secret_id else None
    data: Any = {}
    if text and text.strip():
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise InvalidInput(f"app config secret {secret_id!r} is not JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"app config secret {secret_id!r} is not a JSON object")
    values: dict[str, str] = {}
    missing: list[str] = []
    for name, env_name in APP_CONFIG_ENV.items():
        value = environ.get(env_name) or data.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # a PIN typed as a JSON number
        if value is not None and not isinstance(value, str):  # named, never shown: it may be the secret itself
            raise InvalidInput(f"app config secret {secret_id!r}: {name} must be a string")
        if value is None or not value.strip():
            missing.append(name)
        else:
            values[name] = value.strip()
    if missing:
        names = ", ".join(f"{name} (env {APP_CONFIG_ENV[name]})" for name in missing)
        raise InvalidInput(f"app config secret {secret_id!r} is missing: {names}")
    fy_id = environ.get("FYERS_CLIENT_ID") or data.get("fy_id")
    if fy_id is not None and not (isinstance(fy_id, str) and fy_id.strip().isalnum()):
        raise InvalidInput(f"app config secret {secret_id!r}: fy_id must be a Fyers client ID (letters and digits)")
    return AppConfig(**values, fy_id=fy_id.strip().upper() if fy_id else None)
