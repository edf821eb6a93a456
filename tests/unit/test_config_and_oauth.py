"""Settings from the environment, and the login flow's signed state and error pages."""

import pytest

from pricefeed.auth.callback import STATE_TTL_S, check_state, error_page, new_state, page
from pricefeed.auth.store import AppConfig
from pricefeed.config import DEFAULT_FYERS_API_BASE_URL, DEFAULT_MAP_CONCURRENCY, DEFAULT_TICKER_LIST_KEY, Settings
from pricefeed.errors import BadRequest, FyersError, InvalidInput, TokenExpired, TransientFyersError

# --- Settings ------------------------------------------------------------------------------------------


def test_an_empty_environment_gives_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings.fyers_api_base_url == DEFAULT_FYERS_API_BASE_URL
    assert settings.ticker_list_key == DEFAULT_TICKER_LIST_KEY
    assert settings.map_concurrency == DEFAULT_MAP_CONCURRENCY
    assert settings.raw_bucket == ""


def test_every_setting_is_read_from_its_upper_case_variable():
    env = {
        "RAW_BUCKET": "raw-b",
        "PROCESSED_BUCKET": "proc-b",
        "FYERS_API_BASE_URL": "http://127.0.0.1:8000",
        "APP_CONFIG_SECRET_ID": "app-secret",
        "TOKEN_SECRET_ID": "token-secret",
        "TICKER_LIST_KEY": "config/x.csv",
        "MAP_CONCURRENCY": "25",
        "GLUE_DATABASE": "db",
        "GLUE_TABLE": "bars",
    }
    assert Settings.from_env(env) == Settings(
        raw_bucket="raw-b",
        processed_bucket="proc-b",
        fyers_api_base_url="http://127.0.0.1:8000",
        app_config_secret_id="app-secret",
        token_secret_id="token-secret",
        ticker_list_key="config/x.csv",
        map_concurrency=25,
        glue_database="db",
        glue_table="bars",
    )


def test_an_empty_variable_means_the_default():
    settings = Settings.from_env({"MAP_CONCURRENCY": "", "FYERS_API_BASE_URL": ""})
    assert settings.map_concurrency == DEFAULT_MAP_CONCURRENCY
    assert settings.fyers_api_base_url == DEFAULT_FYERS_API_BASE_URL


@pytest.mark.parametrize("bad", ["ten", "2.5", "1e3"])
def test_a_non_integer_number_is_an_error_naming_the_variable(bad):
    with pytest.raises(InvalidInput, match="MAP_CONCURRENCY must be an integer"):
        Settings.from_env({"MAP_CONCURRENCY": bad})


@pytest.mark.parametrize("url", ["http://sim:9000/", "http://sim:9000//"])
def test_the_api_url_loses_its_trailing_slash(url):
    # So f"{base}/data/history" never becomes "//data/history"
    assert Settings.from_env({"FYERS_API_BASE_URL": url}).fyers_api_base_url == "http://sim:9000"


def test_only_urls_lose_trailing_slashes():
    assert Settings.from_env({"TICKER_LIST_KEY": "config/"}).ticker_list_key == "config/"


def test_without_an_argument_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("RAW_BUCKET", "from-os-environ")
    assert Settings.from_env().raw_bucket == "from-os-environ"


def test_require_names_every_missing_variable():
    settings = Settings.from_env({"TOKEN_SECRET_ID": "t"})
    with pytest.raises(InvalidInput) as err:
        settings.require("raw_bucket", "token_secret_id", "app_config_secret_id")
    assert str(err.value) == "environment variable(s) not set: RAW_BUCKET, APP_CONFIG_SECRET_ID"


def test_require_returns_the_settings_when_all_are_set():
    settings = Settings.from_env({"RAW_BUCKET": "b", "TOKEN_SECRET_ID": "t"})
    assert settings.require("raw_bucket", "token_secret_id") is settings


# --- the login state ------------------------------------------------------------------------------------
APP = AppConfig(app_id="XYZ123-100", secret_key="TOPSECRETKEY", redirect_uri="https://x/oauth/callback", pin="1234")
OTHER_APP = AppConfig(app_id="XYZ123-100", secret_key="ANOTHERSECRET", redirect_uri=APP.redirect_uri, pin="1234")
ISSUED = 1_795_600_000.0


def test_a_fresh_state_checks_out_until_it_expires():
    # Given a state issued now
    state = new_state(APP, now=ISSUED)
    # Then it is accepted at once and up to the TTL
    check_state(APP, state, now=ISSUED)
    check_state(APP, state, now=ISSUED + STATE_TTL_S)
    # And refused one second later
    with pytest.raises(InvalidInput, match="expired"):
        check_state(APP, state, now=ISSUED + STATE_TTL_S + 1)


def test_a_state_from_the_future_is_refused():
    state = new_state(APP, now=ISSUED + 60)
    with pytest.raises(InvalidInput, match="expired"):
        check_state(APP, state, now=ISSUED)


def test_each_login_gets_a_different_state():
    assert new_state(APP, now=ISSUED) != new_state(APP, now=ISSUED)


def test_the_state_does_not_contain_the_app_secret():
    assert APP.secret_key not in new_state(APP, now=ISSUED)


def _swap_last_char(text: str) -> str:
    return text[:-1] + ("0" if text[-1] != "0" else "1")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_swap_last_char, id="signature changed"),
        pytest.param(lambda s: s.replace(s.split(".")[0], str(int(ISSUED) + 5), 1), id="issue time moved"),
        pytest.param(lambda s: ".".join([s.split(".")[0], "othernonce", s.split(".")[2]]), id="nonce swapped"),
    ],
)
def test_a_tampered_state_is_refused(tamper):
    state = tamper(new_state(APP, now=ISSUED))
    with pytest.raises(InvalidInput, match="does not match"):
        check_state(APP, state, now=ISSUED)


def test_a_state_signed_with_another_app_secret_is_refused():
    state = new_state(OTHER_APP, now=ISSUED)
    with pytest.raises(InvalidInput, match="does not match"):
        check_state(APP, state, now=ISSUED)


@pytest.mark.parametrize("state", [None, "", "abc", "1.2", "1.2.3.4", "soon.nonce.sig", "-5.nonce.sig", ".."])
def test_a_missing_or_malformed_state_is_refused(state):
    with pytest.raises(InvalidInput, match="missing or malformed"):
        check_state(APP, state, now=ISSUED)


# --- error pages -----------------------------------------------------------------------------------------
def test_bad_input_is_a_400_page_with_the_reason():
    response = error_page(InvalidInput("login state has expired: start again at /oauth/login"))
    assert response["statusCode"] == 400
    assert response["headers"]["content-type"].startswith("text/html")
    assert "login state has expired: start again at /oauth/login" in response["body"]


@pytest.mark.parametrize(
    "exc", [BadRequest("validate-authcode: code rejected (-437)"), TokenExpired("expired"), FyersError("refused")]
)
def test_a_fyers_refusal_is_a_502_page_naming_the_error(exc):
    response = error_page(exc)
    assert response["statusCode"] == 502
    assert f"{type(exc).__name__}: {exc}" in response["body"]


def test_an_unexpected_error_is_a_500_page_that_shows_nothing_of_the_exception():
    # Given an unexpected error whose text carries a secret
    response = error_page(RuntimeError("access_token=eyJhbGciOi.SECRET.PART"))
    # Then the page says to read the logs and leaks neither the text nor the type
    assert response["statusCode"] == 500
    assert "unexpected error; see the function&#x27;s logs" in response["body"]
    assert "SECRET" not in response["body"]
    assert "RuntimeError" not in response["body"]


def test_a_plain_value_error_is_not_mistaken_for_bad_input():
    # InvalidInput is a ValueError; the reverse must not hold (its text could be anything)
    response = error_page(ValueError("token=abc"))
    assert response["statusCode"] == 500
    assert "token=abc" not in response["body"]


def test_error_text_is_html_escaped():
    response = error_page(TransientFyersError("<script>alert(1)</script>"))
    assert "<script>" not in response["body"]
    assert "&lt;script&gt;" in response["body"]


def test_a_page_escapes_its_title_too():
    assert "<b>" not in page("<b>", "ok", 200)["body"]
