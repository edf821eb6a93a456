"""TokenKeeper's cache and lease rules with moto and a stand-in for Fyers' refresh call (no server)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from awskit import create_state_table
from pricefeed.auth import keeper as session_module
from pricefeed.auth.fyers_oauth import Tokens
from pricefeed.auth.keeper import TokenKeeper
from pricefeed.auth.refresh_lease import fingerprint
from pricefeed.auth.renewal import login_page_url
from pricefeed.auth.store import AppConfig
from pricefeed.errors import FyersError, NotLoggedIn, RateLimited, TransientFyersError

APP = AppConfig(
    app_id="XYZ123-100", secret_key="TOPSECRETKEY", redirect_uri="https://api.example/oauth/callback", pin="9876"
)
SECRET, TABLE = "pricefeed/fyers-tokens", "pricefeed-state"
NOW = datetime(2026, 11, 25, 3, 15, tzinfo=UTC)  # 08:45 IST
OLD = Tokens(
    "OLD-ACCESS-TOKEN", "REFRESH-TOKEN-1", NOW - timedelta(hours=3), NOW + timedelta(days=9), NOW - timedelta(days=1)
)
LOCK = {"pk": {"S": f"lock#token-refresh#{APP.app_id}"}}


class Clock:
    def __init__(self):
        self.t = NOW.timestamp()

    def __call__(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


class FakeFyers:
    """Stands in for ``auth.refresh_access_token``: counts calls, hands out numbered tokens or an error."""

    def __init__(self, error: Exception | None = None):
        self.calls, self.error = 0, error

    async def refresh(self, session, base_url, app_id, secret_key, tokens, pin, *, now):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return Tokens(
            f"NEW-ACCESS-{self.calls}", tokens.refresh_token, now + timedelta(hours=20), tokens.refresh_expires_at, now
        )


@pytest.fixture
def aws(mocked_aws):
    secrets = boto3.client("secretsmanager", region_name=mocked_aws)
    dynamodb = boto3.client("dynamodb", region_name=mocked_aws)
    secrets.create_secret(Name=SECRET, SecretString=OLD.to_json())
    create_state_table(dynamodb, TABLE)
    return secrets, dynamodb


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fyers(monkeypatch):
    fake = FakeFyers()
    monkeypatch.setattr(session_module.fyers_oauth, "refresh_access_token", fake.refresh)
    return fake


def make_keeper(aws, clock, secrets=None, **overrides) -> TokenKeeper:
    values = dict(
        secrets_client=secrets or aws[0],
        token_secret_id=SECRET,
        app=APP,
        base_url="http://fyers.invalid",
        dynamodb_client=aws[1],
        table_name=TABLE,
        clock=clock,
        sleep=clock.sleep,
        poll_s=1.0,
    )
    return TokenKeeper(**{**values, **overrides})


def lease_item(aws) -> dict:
    return aws[1].get_item(TableName=TABLE, Key=LOCK)["Item"]


class StaleSecrets:
    """Secrets Manager as seen right after a write on another host: reads still return the old value."""

    def __init__(self, client, stale: str):
        self._client, self._stale = client, stale

    def __getattr__(self, name):
        return getattr(self._client, name)

    def get_secret_value(self, **kwargs):
        return {**self._client.get_secret_value(**kwargs), "SecretString": self._stale}


def test_a_refresh_stores_the_new_tokens_and_records_what_it_replaced(aws, clock, fyers):
    keeper = make_keeper(aws, clock)
    assert asyncio.run(keeper.replace_expired(OLD.access_token)) == "NEW-ACCESS-1"
    stored = Tokens.from_json(aws[0].get_secret_value(SecretId=SECRET)["SecretString"])
    assert stored.access_token == "NEW-ACCESS-1" and stored.refresh_token == OLD.refresh_token
    item = lease_item(aws)
    assert item["replaced"]["S"] == fingerprint(OLD.access_token) and float(item["lease_until"]["N"]) == 0
    assert int(item["expires_at"]["N"]) > clock()  # DynamoDB's TTL cleans it up later
    assert OLD.access_token not in str(item)


def test_a_stale_read_of_an_already_replaced_token_does_not_refresh_again(aws, clock, fyers):
    asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token))
    # A second worker still reads the old secret (eventual consistency): it must not refresh again
    stale = make_keeper(aws, clock, secrets=StaleSecrets(aws[0], OLD.to_json()), lease_s=5.0)
    with pytest.raises(TransientFyersError, match="no new access token stored"):
        asyncio.run(stale.replace_expired(OLD.access_token))
    assert fyers.calls == 1


def test_the_keepers_own_cache_never_hands_back_the_replaced_token(aws, clock, fyers):
    keeper = make_keeper(aws, clock)
    assert asyncio.run(keeper.tokens()) == OLD  # the Powertools cache now holds the old secret
    fresh = asyncio.run(keeper.replace_expired(OLD.access_token))
    assert asyncio.run(keeper.access_token()) == fresh and fyers.calls == 1


def test_the_secret_is_read_once_per_cache_period(aws, clock, fyers):
    aws[0].put_secret_value(
        SecretId=SECRET,
        SecretString=Tokens("VALID-ACCESS", "R", NOW + timedelta(hours=20), NOW + timedelta(days=9), NOW).to_json(),
    )
    reads = []
    aws[0].meta.events.register("before-call.secrets-manager.GetSecretValue", lambda **_: reads.append(1))
    keeper = make_keeper(aws, clock)
    assert {asyncio.run(keeper.access_token()) for _ in range(4)} == {"VALID-ACCESS"} and len(reads) == 1
    uncached = make_keeper(aws, clock, cache_s=0)
    for _ in range(3):
        asyncio.run(uncached.access_token())
    assert len(reads) == 4 and fyers.calls == 0


def test_a_cached_not_logged_in_is_rechecked_once_the_login_happened(aws, clock, fyers):
    aws[0].put_secret_value(SecretId=SECRET, SecretString="{}")
    keeper = make_keeper(aws, clock)
    with pytest.raises(NotLoggedIn, match="run the login flow"):
        asyncio.run(keeper.access_token())
    fresh = Tokens("LOGGED-IN", "R", NOW + timedelta(hours=20), NOW + timedelta(days=15), NOW)
    aws[0].put_secret_value(SecretId=SECRET, SecretString=fresh.to_json())
    assert asyncio.run(keeper.access_token()) == "LOGGED-IN"


def test_a_missing_secret_is_not_logged_in(aws, clock):
    with pytest.raises(NotLoggedIn):
        asyncio.run(make_keeper(aws, clock, token_secret_id="no-such-secret").access_token())


def test_a_failed_refresh_is_shared_for_the_rest_of_the_lease_then_retried(aws, clock, monkeypatch):
    fake = FakeFyers(RateLimited("validate-refresh-token: rate limited; HTTP 429", retry_after=3))
    monkeypatch.setattr(session_module.fyers_oauth, "refresh_access_token", fake.refresh)
    with pytest.raises(RateLimited):
        asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token))
    with pytest.raises(RateLimited, match="another worker: validate-refresh-token: rate limited"):
        asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token))
    assert fake.calls == 1
    clock.t += 31  # the lease is over: the next worker tries Fyers again
    fake.error = None
    assert asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token)) == "NEW-ACCESS-2"


def test_an_error_name_that_is_not_ours_is_shared_as_a_fyers_error(aws, clock):
    aws[1].put_item(
        TableName=TABLE,
        Item={
            **LOCK,
            "holder": {"S": "x"},
            "lease_until": {"N": str(clock() + 30)},
            "failed": {"S": fingerprint(OLD.access_token)},
            "error_type": {"S": "SystemExit"},
            "error_message": {"S": "boom"},
        },
    )
    with pytest.raises(FyersError, match="another worker: boom") as caught:
        asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token))
    assert type(caught.value) is FyersError


def test_an_expired_refresh_token_is_not_logged_in_without_asking_fyers(aws, clock, fyers):
    clock.t = (OLD.refresh_expires_at + timedelta(seconds=1)).timestamp()
    with pytest.raises(NotLoggedIn, match=r"refresh token expired at .* IST: log in again at /oauth/login"):
        asyncio.run(make_keeper(aws, clock).replace_expired(OLD.access_token))
    assert fyers.calls == 0


def test_a_token_other_than_the_failed_one_is_returned_without_refreshing(aws, clock, fyers):
    assert asyncio.run(make_keeper(aws, clock).replace_expired("SOME-OLDER-TOKEN")) == OLD.access_token
    assert fyers.calls == 0


def test_reprs_and_fingerprints_show_no_secret(aws, clock):
    keeper = make_keeper(aws, clock)
    assert APP.secret_key not in repr(keeper) and APP.pin not in repr(keeper)
    assert OLD.access_token not in fingerprint(OLD.access_token) and len(fingerprint(OLD.access_token)) == 16


def test_the_login_page_is_next_to_the_callback():
    assert login_page_url(APP) == "https://api.example/oauth/login"
    other = AppConfig(APP.app_id, APP.secret_key, "https://elsewhere/cb", APP.pin)
    assert "/oauth/login" in login_page_url(other)
