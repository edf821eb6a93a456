"""OAuth pieces: appIdHash, login URL, callback parsing, JWT expiry, token lifetimes, redaction."""

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricefeed.auth.fyers_oauth import (
    REFRESH_TOKEN_LIFETIME,
    Tokens,
    app_id_hash,
    jwt_expiry,
    login_url,
    next_access_expiry,
    parse_callback,
    tokens_after_refresh,
    tokens_from_exchange,
)
from pricefeed.auth.store import AppConfig
from pricefeed.auth.token_claims import token_account
from pricefeed.errors import InvalidInput, TransientFyersError

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)  # 15:30 IST


def jwt(claims: dict) -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def make_tokens(**over) -> Tokens:
    values = dict(
        access_token="ACCESS-TOKEN-VALUE-123",
        refresh_token="REFRESH-TOKEN-VALUE-456",
        access_expires_at=NOW + timedelta(hours=14),
        refresh_expires_at=NOW + timedelta(days=15),
        issued_at=NOW,
    )
    values.update(over)
    return Tokens(**values)


# --- appIdHash and the login URL ---------------------------------------------------------------
def test_app_id_hash_is_sha256_hex_of_app_id_colon_secret():
    # expected values computed with `printf '%s' 'PFSIM1-100:sim-secret' | sha256sum`
    assert app_id_hash("PFSIM1-100", "sim-secret") == (
        "2e5f06d24dd1f51051ac1ce21e83b7643ac03967760b1090eb673c3596a02967"
    )
    assert (
        app_id_hash("XXXX-100", "abc") == "048c177ea576b1af67550d36a4e90ba6afa95e36c777a675db8fb99649212ce2"
    )


def test_login_url_carries_the_four_parameters_encoded():
    url = login_url(
        "https://api-t1.fyers.in/", "XXXX-100", "https://x.example/oauth/callback?a=1&b=2", "st 8/="
    )
    parts = urlsplit(url)
    assert (
        f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://api-t1.fyers.in/api/v3/generate-authcode"
    )
    assert parse_qs(parts.query) == {
        "client_id": ["XXXX-100"],
        "redirect_uri": ["https://x.example/oauth/callback?a=1&b=2"],
        "response_type": ["code"],
        "state": ["st 8/="],
    }
    assert "a=1&b=2" not in url  # the redirect URI's own query is encoded, not spliced in


# --- the callback ------------------------------------------------------------------------------
def test_parse_callback_returns_the_auth_code_not_the_status_code():
    query = {"s": "ok", "code": "200", "auth_code": "eyJ.abc.def", "state": "xyz"}
    assert parse_callback(query) == "eyJ.abc.def"
    assert parse_callback(query, expected_state="xyz") == "eyJ.abc.def"


def test_parse_callback_accepts_multi_value_lists():
    assert parse_callback({"s": ["ok"], "auth_code": ["eyJ.abc.def"]}) == "eyJ.abc.def"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ({"s": "error", "code": "-413", "auth_code": "SECRET-CODE"}, "'s'"),
        ({"code": "200", "auth_code": "SECRET-CODE"}, "'s'"),
        ({"s": "ok", "code": "200"}, "'auth_code'"),
        ({"s": "ok", "auth_code": ""}, "'auth_code'"),
        ({"s": "ok", "auth_code": "SECRET CODE"}, "'auth_code'"),
    ],
)
def test_parse_callback_rejects_bad_callbacks_naming_the_parameter(query, names):
    with pytest.raises(InvalidInput) as caught:
        parse_callback(query)
    assert names in str(caught.value)
    assert "SECRET" not in str(caught.value)


def test_parse_callback_rejects_a_state_mismatch():
    with pytest.raises(InvalidInput, match="'state'"):
        parse_callback({"s": "ok", "auth_code": "SECRET-CODE", "state": "other"}, expected_state="mine")


# --- JWT expiry --------------------------------------------------------------------------------
def test_jwt_expiry_reads_exp_without_verifying():
    assert jwt_expiry(jwt({"exp": 1741240800, "sub": "x"})) == datetime(2025, 3, 6, 6, 0, tzinfo=UTC)
    assert jwt_expiry(jwt({"exp": 1741240800.5})) == datetime(2025, 3, 6, 6, 0, 0, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "opaque-token",
        "a.b",
        "a.b.c.d",
        "x.!!!.y",
        jwt({"sub": "no exp"}),
        jwt({"exp": "soon"}),
        jwt({"exp": True}),
        "e30.W10.sig",
        jwt({"exp": 10**20}),
    ],
)
def test_jwt_expiry_is_none_for_non_jwts(token):
    assert jwt_expiry(token) is None


@pytest.mark.parametrize(
    ("token", "account"),
    [
        (jwt({"fy_id": "xs00001", "exp": 1}), "XS00001"),
        (jwt({"fy_id": " XY99999 "}), "XY99999"),
        (jwt({"fy_id": ""}), None),
        (jwt({"fy_id": 12345}), None),
        (jwt({"sub": "no account"}), None),
        ("opaque-token", None),
        ("e30.W10.sig", None),  # a JSON list, not an object
    ],
)
def test_the_account_of_a_token_is_its_fy_id_claim_or_none(token, account):
    assert token_account(token) == account


# --- token lifetimes ---------------------------------------------------------------------------
def test_next_access_expiry_is_the_next_0600_ist():
    # 15:30 IST on 4 March → 06:00 IST on 5 March = 00:30 UTC
    assert next_access_expiry(NOW) == datetime(2025, 3, 5, 0, 30, tzinfo=UTC)
    # 05:59 IST → 06:00 IST the same day
    assert next_access_expiry(datetime(2025, 3, 5, 0, 29, tzinfo=UTC)) == datetime(
        2025, 3, 5, 0, 30, tzinfo=UTC
    )
    # exactly 06:00 IST → the next day
    assert next_access_expiry(datetime(2025, 3, 5, 0, 30, tzinfo=UTC)) == datetime(
        2025, 3, 6, 0, 30, tzinfo=UTC
    )


def test_exchange_uses_the_jwt_exp_and_15_days_for_the_refresh_token():
    access = jwt({"exp": 1741136400})
    tokens = tokens_from_exchange({"s": "ok", "access_token": access, "refresh_token": "r1"}, NOW)
    assert tokens.access_token == access and tokens.refresh_token == "r1"
    assert tokens.access_expires_at == datetime.fromtimestamp(1741136400, UTC)
    assert tokens.refresh_expires_at == NOW + REFRESH_TOKEN_LIFETIME
    assert tokens.issued_at == NOW


def test_exchange_falls_back_to_0600_ist_for_an_opaque_access_token():
    tokens = tokens_from_exchange({"s": "ok", "access_token": "opaque", "refresh_token": "r1"}, NOW)
    assert tokens.access_expires_at == datetime(2025, 3, 5, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload", [{"s": "ok", "refresh_token": "r"}, {"s": "ok", "access_token": "a", "refresh_token": 7}]
)
def test_exchange_without_an_access_token_or_with_a_junk_refresh_token_is_a_malformed_answer(payload):
    with pytest.raises(TransientFyersError):
        tokens_from_exchange(payload, NOW)


@pytest.mark.parametrize("refresh", [None, ""])
def test_an_exchange_without_a_refresh_token_is_a_login_that_cannot_be_refreshed(refresh):
    payload = {"s": "ok", "access_token": "a"} | ({} if refresh is None else {"refresh_token": refresh})
    tokens = tokens_from_exchange(payload, NOW)
    assert tokens.refresh_token == "" and tokens.refresh_expired(NOW, margin=timedelta(0))
    assert Tokens.from_json(tokens.to_json()) == tokens


def test_refresh_keeps_the_old_refresh_token_and_its_original_expiry():
    old = make_tokens(issued_at=NOW - timedelta(days=3), refresh_expires_at=NOW + timedelta(days=12))
    later = NOW + timedelta(days=1)
    new = tokens_after_refresh(old, {"s": "ok", "access_token": "new-access"}, later)
    assert new.access_token == "new-access"
    assert new.refresh_token == old.refresh_token
    assert new.refresh_expires_at == old.refresh_expires_at
    assert new.issued_at == later


def test_refresh_adopts_a_rotated_refresh_token_with_a_fresh_15_days():
    old = make_tokens(refresh_expires_at=NOW + timedelta(days=2))
    new = tokens_after_refresh(old, {"s": "ok", "access_token": "a2", "refresh_token": "r2"}, NOW)
    assert new.refresh_token == "r2"
    assert new.refresh_expires_at == NOW + REFRESH_TOKEN_LIFETIME


def test_expiry_checks_use_a_margin():
    tokens = make_tokens(access_expires_at=NOW + timedelta(minutes=3))
    assert tokens.access_expired(NOW)
    assert not tokens.access_expired(NOW, margin=timedelta(0))
    assert not tokens.refresh_expired(NOW)


# --- storage form and redaction ----------------------------------------------------------------
aware = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@given(st.text(min_size=1), st.text(min_size=1), aware, aware, aware)
def test_tokens_round_trip_through_json(access, refresh, a, r, i):
    tokens = Tokens(access, refresh, a, r, i)
    assert Tokens.from_json(tokens.to_json()) == tokens


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        "{}",
        '{"access_token": "x"}',
        json.dumps({**json.loads(make_tokens().to_json()), "issued_at": "yesterday"}),
    ],
)
def test_tokens_from_unusable_json_is_invalid_input_without_values(text):
    with pytest.raises(InvalidInput) as caught:
        Tokens.from_json(text)
    assert "ACCESS-TOKEN-VALUE" not in str(caught.value)


def test_naive_datetimes_are_refused():
    with pytest.raises(InvalidInput, match="issued_at"):
        make_tokens(issued_at=datetime(2025, 1, 1))


def test_tokens_repr_and_str_redact_both_tokens():
    tokens = make_tokens()
    for shown in (repr(tokens), str(tokens), f"{tokens}", repr([tokens])):
        assert "ACCESS-TOKEN-VALUE-123" not in shown and "REFRESH-TOKEN-VALUE-456" not in shown
        assert "access_expires_at=2025-03-05T00:00:00+00:00" in shown


def test_app_config_repr_and_str_redact_secret_key_and_pin():
    config = AppConfig(app_id="XXXX-100", secret_key="TOPSECRETKEY", redirect_uri="https://x/cb", pin="9876")
    for shown in (repr(config), str(config), f"{config}"):
        assert "TOPSECRETKEY" not in shown and "9876" not in shown
        assert "XXXX-100" in shown and "https://x/cb" in shown
