"""Named errors. The class name is the Lambda ``errorType``, so the state machine routes on it.

Keep names stable: ``statemachine/ingest_pipeline.asl.json`` retries and catches by these names.
"""

from __future__ import annotations

from collections.abc import Iterable


class PricefeedError(Exception):
    """Base of every error this project raises on purpose."""


# --- Fyers -----------------------------------------------------------------------------------
class FyersError(PricefeedError):
    """Fyers answered with an error. ``code`` is Fyers' own (negative) code when it sent one."""

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class TransientFyersError(FyersError):
    """Worth retrying: 5xx, timeouts, connection resets, malformed bodies."""


class RateLimited(TransientFyersError):
    """HTTP 429 / code -429 or 429. ``retry_after`` in seconds when Fyers said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw):
        super().__init__(message, **kw)
        self.retry_after = retry_after


class RateBudgetExhausted(FyersError):
    """The account's budget for this IST day is spent: the daily request cap is reached, or one more
    per-minute breach would get the account blocked until midnight IST. Not retried today."""


class TokenExpired(FyersError):
    """The access token is expired or invalid (-8, -15, -16, -17): refresh, then retry."""


class InvalidSymbol(FyersError):
    """Fyers does not know the symbol (-300). Permanent: never retried."""


class BadRequest(FyersError):
    """Invalid parameters or range (-50, "Invalid input"). Permanent: never retried."""


class FyersPermissionDenied(FyersError):
    """HTTP 403 / -352: the app lacks a permission or the app id is wrong. Permanent."""


# --- our own inputs --------------------------------------------------------------------------
class InvalidInput(PricefeedError, ValueError):
    """Bad input (a ticker file, an event, a job argument). The message names the input."""


def shown(value: object) -> str:
    """A value for an error message: its ``repr``, cut to 60 characters (a message quotes the input, not a page
    of it)."""
    try:
        text = repr(value)
    except ValueError:  # an int too long to print
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


def reject_unknown_fields(given: dict, known: Iterable[str], what: str) -> None:
    """``InvalidInput`` naming the fields of ``given`` that ``what`` does not take, and the ones it does."""
    known = list(known)
    unknown = set(given) - set(known)
    if unknown:
        names = ", ".join(sorted(str(name)[:40] for name in unknown))
        raise InvalidInput(f"{what} has unknown field(s): {names} (it takes {', '.join(known)})")


class NotLoggedIn(PricefeedError):
    """No usable Fyers tokens are stored: run the login flow first."""


# --- AWS storage (S3, DynamoDB) --------------------------------------------------------------
class StorageError(PricefeedError):
    """S3 or DynamoDB refused for good (access denied, no such bucket or table, bad parameters)."""


class TransientStorageError(StorageError):
    """S3 or DynamoDB failed in a way worth retrying: a 5xx, throttling, a dropped or timed-out connection."""


#: Error codes AWS uses for throttling and passing trouble (besides any HTTP 5xx).
_TRANSIENT_AWS_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
#: botocore's connection-level failures (by class name, so this module needs no botocore import).
_TRANSIENT_BOTOCORE = frozenset(
    {"EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError", "ConnectionError"}
)


def storage_error(exc: Exception) -> StorageError:
    """A botocore ``ClientError``/``BotoCoreError`` as a named error the state machine can route on: what
    failed (operation, code, HTTP status), never the request itself."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", "Unknown"))
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        operation = getattr(exc, "operation_name", "an AWS call")
        message = f"{operation} failed: {code} (HTTP {status})"
        transient = code in _TRANSIENT_AWS_CODES or (isinstance(status, int) and status >= 500)
        return (TransientStorageError if transient else StorageError)(message)
    names = {cls.__name__ for cls in type(exc).__mro__}
    transient = bool(names & _TRANSIENT_BOTOCORE)
    return (TransientStorageError if transient else StorageError)(f"AWS call failed: {type(exc).__name__}")
