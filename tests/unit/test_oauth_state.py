"""The login state is single-use: a forged, reused, expired or missing state is refused before any code
exchange, and nothing is stored (moto; no Fyers at all — an exchange attempt would fail the test)."""

from __future__ import annotations

import asyncio

import boto3
import pytest

from awskit import create_state_table
from pricefeed.auth.callback import STATE_TTL_S, check_state, complete_login, consume_state, error_page, new_state
from pricefeed.auth.store import AppConfig, TokenStore
from pricefeed.errors import InvalidInput

APP = AppConfig(app_id="XYZ123-100", secret_key="TOPSECRETKEY", redirect_uri="https://x/oauth/callback", pin="1234")
ISSUED = 1_795_600_000.0
TABLE, SECRET = "pricefeed-state", "pricefeed/fyers-tokens"
NOWHERE = "http://127.0.0.1:9"  # nothing listens: reaching Fyers would be a TransientFyersError, not a 400


@pytest.fixture
def aws(mocked_aws):
    secrets = boto3.client("secretsmanager", region_name=mocked_aws)
    dynamodb = boto3.client("dynamodb", region_name=mocked_aws)
    secrets.create_secret(Name=SECRET, SecretString="{}")
    create_state_table(dynamodb, TABLE)
    return secrets, dynamodb


def callback(aws, query: dict, *, now: float = ISSUED + 5) -> dict:
    """What /oauth/callback answers for ``query`` at ``now`` (the error page when refused)."""
    secrets, dynamodb = aws
    try:
        asyncio.run(
            complete_login(
                query,
                app=APP,
                base_url=NOWHERE,
                store=TokenStore(secrets, SECRET),
                dynamodb_client=dynamodb,
                table_name=TABLE,
                clock=lambda: now,
            )
        )
    except InvalidInput as exc:
        return error_page(exc)
    raise AssertionError("the callback was accepted")


def query(state: str | None) -> dict:
    q = {"s": "ok", "code": "200", "auth_code": "eyJhbGciOi.AUTHCODE.sig"}
    return q if state is None else {**q, "state": state}


def nothing_stored(aws) -> bool:
    return aws[0].get_secret_value(SecretId=SECRET)["SecretString"] == "{}"


def state_items(aws) -> list[dict]:
    return aws[1].scan(TableName=TABLE)["Items"]


def test_a_state_is_consumed_once_with_a_ttl(aws):
    nonce = check_state(APP, new_state(APP, now=ISSUED), now=ISSUED)
    consume_state(aws[1], TABLE, nonce, expires_at=ISSUED + STATE_TTL_S)
    [item] = state_items(aws)
    assert item["pk"]["S"] == f"oauth-state#{nonce}" and int(item["expires_at"]["N"]) >= ISSUED + STATE_TTL_S
    with pytest.raises(InvalidInput, match="already used: start again at /oauth/login"):
        consume_state(aws[1], TABLE, nonce, expires_at=ISSUED + STATE_TTL_S)


def test_a_reused_state_is_a_400_before_any_exchange(aws):
    state = new_state(APP, now=ISSUED)
    consume_state(aws[1], TABLE, check_state(APP, state, now=ISSUED), expires_at=ISSUED + STATE_TTL_S)
    page = callback(aws, query(state))
    assert page["statusCode"] == 400 and "login state was already used" in page["body"]
    assert nothing_stored(aws)


def test_a_forged_state_is_a_400_and_leaves_no_trace(aws):
    issued, nonce, sig = new_state(APP, now=ISSUED).split(".")
    forged = f"{issued}.{nonce}.{'0' * len(sig)}"
    page = callback(aws, query(forged))
    assert page["statusCode"] == 400 and "login state does not match" in page["body"]
    assert nothing_stored(aws) and state_items(aws) == []


def test_a_state_signed_by_someone_else_is_a_400(aws):
    other = AppConfig(APP.app_id, "ANOTHER-SECRET", APP.redirect_uri, APP.pin)
    page = callback(aws, query(new_state(other, now=ISSUED)))
    assert page["statusCode"] == 400 and "does not match" in page["body"] and nothing_stored(aws)


def test_an_expired_state_is_a_400(aws):
    page = callback(aws, query(new_state(APP, now=ISSUED)), now=ISSUED + STATE_TTL_S + 1)
    assert page["statusCode"] == 400 and "login state has expired" in page["body"]
    assert nothing_stored(aws) and state_items(aws) == []


@pytest.mark.parametrize("state", [None, "", "abc"])
def test_a_missing_state_is_a_400(aws, state):
    page = callback(aws, query(state))
    assert page["statusCode"] == 400 and "login state is missing or malformed" in page["body"]
    assert nothing_stored(aws)


def test_a_nonce_outside_the_issued_alphabet_is_refused_even_when_signed():
    import hashlib
    import hmac

    from pricefeed.auth.callback import _state_key

    sig = hmac.new(_state_key(APP), f"{int(ISSUED)}.a#b".encode(), hashlib.sha256).hexdigest()
    with pytest.raises(InvalidInput, match="does not match"):
        check_state(APP, f"{int(ISSUED)}.a#b.{sig}", now=ISSUED)


def test_a_fyers_error_callback_with_a_good_state_is_a_400_naming_the_status(aws):
    bad = {"s": "error", "code": "-100", "state": new_state(APP, now=ISSUED)}
    page = callback(aws, bad)
    assert page["statusCode"] == 400 and "parameter &#x27;s&#x27; is &#x27;error&#x27;" in page["body"]
    assert nothing_stored(aws)
