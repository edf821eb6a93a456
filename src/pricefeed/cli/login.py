"""`pricefeed login`: log in to Fyers from this machine and store the tokens in the stack's TokenSecret.

The flow is :func:`pricefeed.ops.login.login`; this module only talks to the user. Exit codes: 0 logged in,
2 the login failed (the message says what to do next), 130 stopped with Ctrl-C.
"""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from pricefeed.cli.common import console, fail, say
from pricefeed.errors import PricefeedError
from pricefeed.istime import IST

#: The same default as pricefeed.ops.login.DEFAULT_TIMEOUT_S (not imported here: it pulls in aiohttp at CLI start).
DEFAULT_TIMEOUT_S = 300.0


def login_command(
    stack: str = typer.Option(None, help="A deployed stack's name (default: the stack of `pricefeed local up`)."),
    profile: str = typer.Option(None, help="AWS profile of the stack's account."),
    region: str = typer.Option(None, help="AWS region of the stack."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the login URL instead of opening a browser."),
    timeout: float = typer.Option(DEFAULT_TIMEOUT_S, min=1, help="Seconds to wait for the login to finish."),
) -> None:
    """Log in to Fyers in a browser and store the tokens in the stack's TokenSecret (once each trading day).

    The AppConfig secret's redirect_uri decides how. A loopback URL (http://127.0.0.1:PORT/callback) is received
    by this command, which exchanges the code and writes the tokens. The stack's CallbackUrl: the browser goes
    through the stack's LoginUrl, the stack stores the tokens, and this command waits for them.
    """
    from pricefeed.ops.login import login
    from pricefeed.ops.target import resolve

    try:
        target = resolve(stack, profile=profile, region=region)
        result = login(target, open_browser=not no_browser, timeout_s=timeout, say=say)
    except PricefeedError as exc:
        fail(exc)
    except KeyboardInterrupt:
        console.print(
            "[bold red]login cancelled[/] (Ctrl-C): no tokens were stored. Run `pricefeed login` again when ready."
        )
        raise typer.Exit(130) from None
    access = result.access_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
    say(f"Logged in to Fyers. Tokens stored in {result.secret_id}; the access token is valid until {access}.")
    say(
        "Fyers asks for one login each trading day (since April 2026): on trading-day mornings the stack sends the "
        "login link to its alert topic, and a run that finds no login waits for yours (until the end of the IST day) "
        "instead of failing its tickers. Run `pricefeed login` again tomorrow."
    )
    if result.refresh_expires_at > datetime.now(UTC):
        again = result.refresh_expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
        say(f"Where Fyers still honours the refresh token (until {again}), the stack renews the access token itself.")
