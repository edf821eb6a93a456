"""TokenStore and load_app_config against moto's Secrets Manager."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.auth.store import AppConfig, TokenStore, load_app_config
from pricefeed.errors import InvalidInput, NotLoggedIn

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
TOKENS = Tokens(
    access_token="ACCESS-TOKEN-VALUE-123",
    refresh_token="REFRESH-TOKEN-VALUE-456",
    access_expires_at=NOW + timedelta(hours=14),
    refresh_expires_at=NOW + timedelta(days=15),
    issued_at=NOW,
)
APP = {"app_id": "XXXX-100", "secret_key": "TOPSECRETKEY", "redirect_uri": "https://x/cb", "pin": "9876"}
SECRET_VALUES = ("ACCESS-TOKEN-VALUE-123", "REFRESH-TOKEN-VALUE-456", "TOPSECRETKEY", "9876")


@pytest.fixture
def secrets(mocked_aws):
    return boto3.client("secretsmanager", region_name=mocked_aws)


def assert_no_secret_in(message: str) -> None:
    assert not any(value in message for value in SECRET_VALUES), message


# --- TokenStore --------------------------------------------------------------------------------
def test_saved_tokens_load_back_identically(secrets):
    secrets.create_secret(Name="pricefeed/fyers-tokens", SecretString="{}")
    store = TokenStore(secrets, "pricefeed/fyers-tokens")
    store.save(TOKENS)
    assert store.load() == TOKENS
    versions = secrets.list_secret_version_ids(SecretId="pricefeed/fyers-tokens")["Versions"]
    assert len(versions) == 2  # save adds a version rather than replacing the secret


def test_a_later_save_wins(secrets):
    secrets.create_secret(Name="tok", SecretString="{}")
    store = TokenStore(secrets, "tok")
    store.save(TOKENS)
    refreshed = Tokens("NEW-ACCESS", TOKENS.refresh_token, NOW + timedelta(days=1), TOKENS.refresh_expires_at, NOW)
    store.save(refreshed)
    assert TokenStore(secrets, "tok").load() == refreshed


def test_the_secret_can_be_addressed_by_arn(secrets):
    arn = secrets.create_secret(Name="tok", SecretString="{}")["ARN"]
    TokenStore(secrets, arn).save(TOKENS)
    assert TokenStore(secrets, "tok").load() == TOKENS


@pytest.mark.parametrize("value", ["{}", "   ", "null"])
def test_an_empty_secret_means_not_logged_in(secrets, value):
    secrets.create_secret(Name="tok", SecretString=value)
    with pytest.raises(NotLoggedIn, match="login"):
        TokenStore(secrets, "tok").load()


def test_a_missing_secret_means_not_logged_in(secrets):
    with pytest.raises(NotLoggedIn):
        TokenStore(secrets, "does-not-exist").load()


def test_a_secret_without_a_value_means_not_logged_in(secrets):
    secrets.create_secret(Name="tok")
    with pytest.raises(NotLoggedIn):
        TokenStore(secrets, "tok").load()


@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1]",
        json.dumps({"access_token": "ACCESS-TOKEN-VALUE-123"}),
        json.dumps({**json.loads(TOKENS.to_json()), "refresh_expires_at": "REFRESH-TOKEN-VALUE-456"}),
    ],
)
def test_unusable_stored_tokens_mean_not_logged_in_without_echoing_them(secrets, value):
    secrets.create_secret(Name="tok", SecretString=value)
    with pytest.raises(NotLoggedIn) as caught:
        TokenStore(secrets, "tok").load()
    assert_no_secret_in(str(caught.value))


def test_save_creates_a_missing_secret_by_name(secrets):
    TokenStore(secrets, "created-on-first-save").save(TOKENS)
    assert TokenStore(secrets, "created-on-first-save").load() == TOKENS


def test_store_repr_shows_no_tokens(secrets):
    store = TokenStore(secrets, "tok")
    assert "tok" in repr(store)


# --- load_app_config ---------------------------------------------------------------------------
def test_app_config_from_the_secret(secrets):
    secrets.create_secret(Name="app", SecretString=json.dumps(APP))
    assert load_app_config(secrets, "app", environ={}) == AppConfig(**APP)


def test_non_empty_env_vars_override_single_fields(secrets):
    secrets.create_secret(Name="app", SecretString=json.dumps(APP))
    environ = {
        "FYERS_PIN": "1111",
        "FYERS_REDIRECT_URI": "http://127.0.0.1:8765/oauth/callback",
        "FYERS_APP_ID": "",
    }
    config = load_app_config(secrets, "app", environ=environ)
    assert config == AppConfig("XXXX-100", "TOPSECRETKEY", "http://127.0.0.1:8765/oauth/callback", "1111")


def test_env_alone_is_enough_when_the_secret_is_missing(secrets):
    environ = {"FYERS_APP_ID": "A-100", "FYERS_SECRET_KEY": "s", "FYERS_REDIRECT_URI": "u", "FYERS_PIN": "1"}
    assert load_app_config(secrets, "missing", environ=environ) == AppConfig("A-100", "s", "u", "1")


def test_missing_fields_are_named_but_present_values_are_not_shown(secrets):
    secrets.create_secret(Name="app", SecretString=json.dumps({"app_id": "XXXX-100", "secret_key": "TOPSECRETKEY"}))
    with pytest.raises(InvalidInput) as caught:
        load_app_config(secrets, "app", environ={"FYERS_PIN": ""})
    message = str(caught.value)
    assert "redirect_uri" in message and "pin" in message and "FYERS_PIN" in message
    assert "secret_key" not in message
    assert_no_secret_in(message)


@pytest.mark.parametrize("value", ["TOPSECRETKEY not json", '["TOPSECRETKEY"]'])
def test_an_unreadable_app_secret_is_invalid_input_without_its_content(secrets, value):
    secrets.create_secret(Name="app", SecretString=value)
    with pytest.raises(InvalidInput) as caught:
        load_app_config(secrets, "app", environ={})
    assert_no_secret_in(str(caught.value))
