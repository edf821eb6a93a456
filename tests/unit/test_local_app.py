"""Which Fyers app the local stack logs in with, and where its OAuth callback listens for the login's redirect."""

import pytest

from pricefeed.errors import InvalidInput
from pricefeed.local.run import local_app
from pricefeed.simulator import SimulatorConfig


def never() -> int:
    raise AssertionError("a port was drawn although the redirect URI fixes it")


def test_with_the_built_in_simulator_the_app_is_registered_with_the_stacks_own_callback():
    config, port = local_app(None, None, default_port=lambda: 4567, environ={})
    assert port == 4567 and config["redirect_uri"] == "http://127.0.0.1:4567/oauth/callback"
    config, port = local_app(None, 5001, default_port=never, environ={})
    assert port == 5001 and config["redirect_uri"] == "http://127.0.0.1:5001/oauth/callback"


def test_another_fyers_redirects_to_the_standalone_simulators_uri_by_default_so_the_stack_listens_there():
    config, port = local_app("http://127.0.0.1:8000", None, default_port=never, environ={})
    assert config["redirect_uri"] == SimulatorConfig().redirect_uri == "http://127.0.0.1:8765/oauth/callback"
    assert port == 8765


def test_the_apps_registered_redirect_uri_sets_the_port_and_the_app_keeps_its_other_settings():
    environ = {"FYERS_REDIRECT_URI": "http://localhost:9123/oauth/callback", "FYERS_APP_ID": "MYAPP-100"}
    config, port = local_app("http://127.0.0.1:8000", None, default_port=never, environ=environ)
    assert port == 9123 and config["redirect_uri"] == environ["FYERS_REDIRECT_URI"] and config["app_id"] == "MYAPP-100"


def test_the_built_in_simulators_app_always_redirects_to_the_stack_whatever_the_environment_says():
    """Both ends are the stack's: a FYERS_REDIRECT_URI exported for a deployed stack does not break `make demo`."""
    environ = {"FYERS_REDIRECT_URI": "https://abc.execute-api.ap-south-1.amazonaws.com/oauth/callback",
               "FYERS_APP_ID": "MYAPP-100"}
    config, port = local_app(None, None, default_port=lambda: 4567, environ=environ)
    assert port == 4567 and config["redirect_uri"] == "http://127.0.0.1:4567/oauth/callback"
    assert config["app_id"] == "MYAPP-100"


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/fyers/callback",  # not this machine
        "http://127.0.0.1/oauth/callback",  # no port to listen on
        "http://127.0.0.1:9123/callback",  # a path the stack does not serve
        "http://127.0.0.1:99999/oauth/callback",  # not a port
        "https://127.0.0.1:9123/oauth/callback",  # the stack serves plain http
    ],
)
def test_a_redirect_uri_the_stack_cannot_receive_is_refused_naming_it(uri):
    with pytest.raises(InvalidInput, match="FYERS_REDIRECT_URI") as refused:
        local_app("http://127.0.0.1:8000", None, default_port=never, environ={"FYERS_REDIRECT_URI": uri})
    assert repr(uri) in str(refused.value) and "http://127.0.0.1:<port>/oauth/callback" in str(refused.value)


def test_an_api_port_that_disagrees_with_the_redirect_uri_is_refused_naming_both():
    with pytest.raises(InvalidInput, match=r"--api-port 4567 disagrees with .*8765.* port 8765"):
        local_app("http://127.0.0.1:8000", 4567, default_port=never, environ={})
    _, port = local_app("http://127.0.0.1:8000", 8765, default_port=never, environ={})
    assert port == 8765
