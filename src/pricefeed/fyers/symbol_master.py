"""The Fyers symbol master: which tickers exist, so a run never spends a history request on one that does not.

Fyers publishes one headerless CSV per segment at ``<base_url>/<SEGMENT>.csv``. Its column order has
changed before, so the ticker column is found by content (values like ``NSE:SBIN-EQ``), not by position.
Each file is downloaded at most once per IST day and kept verbatim in the raw bucket under
``ohlcv/symbol-master/date=YYYY-MM-DD/<SEGMENT>.csv`` (``pricefeed.lake.masters``); when a download fails, the
newest earlier copy is used and the caller is told it is stale.
"""

from __future__ import annotations

import csv
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from pricefeed.errors import FyersError, InvalidInput, TransientFyersError
from pricefeed.fyers.client import DEFAULT_USER_AGENT
from pricefeed.istime import ist_today
from pricefeed.lake.masters import MASTER_ROOT, TICKER, master_key, newest_cached, read_rows, ticker_column
from pricefeed.market_hours import SEGMENTS, segments_for, segments_of
from pricefeed.symbol import Symbol, normalize_symbol

log = logging.getLogger(__name__)

_SAMPLE_ROWS = 5000
Fetch = Callable[[str], bytes]


# --- reading one master file -------------------------------------------------------------------
@dataclass(frozen=True)
class SymbolMaster:
    """The tickers of one segment file. ``column`` is where they were found (0-based)."""

    segment: str
    tickers: frozenset[str]
    column: int
    rows: int
    source: str


def parse_master(data: bytes | str, *, segment: str, source: str) -> SymbolMaster:
    """Parse a headerless master CSV; ``InvalidInput`` naming the segment and ``source`` if no column holds
    tickers. Blank lines, quoted fields and rows with more or fewer columns than usual are tolerated."""
    text = (data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data).lstrip("\ufeff")
    what = f"Fyers symbol master {segment} ({source})"
    try:
        # Two passes over the text, never a list of every row: the F&O file has ~100k rows of 21 cells.
        step = max(1, text.count("\n") // _SAMPLE_ROWS)
        sample = [row for i, row in enumerate(read_rows(text)) if i % step == 0]
        if not sample:
            raise InvalidInput(f"{what} is empty")
        column = ticker_column(sample)
        if column is None:
            raise InvalidInput(f"{what}: no column holds tickers like NSE:SBIN-EQ; has the file format changed?")
        rows, tickers = 0, set()
        for row in read_rows(text):
            rows += 1
            if column < len(row) and TICKER.fullmatch(cell := row[column].strip()):
                tickers.add(normalize_symbol(cell))
    except csv.Error as exc:
        raise InvalidInput(f"{what} is not a readable CSV: {exc}") from None
    return SymbolMaster(segment, frozenset(tickers), column, rows, source)


# --- which symbols are known -------------------------------------------------------------------
def validate(
    symbols: Iterable[Symbol], masters: Mapping[str, SymbolMaster | None]
) -> tuple[list[Symbol], list[dict]]:
    """Split ``symbols`` into (known, unknown), each in first-seen order, duplicates collapsed. Unknown entries
    are ``{"symbol", "segments", "reason"}``; ``reason`` reads after the symbol
    ("is not in the Fyers symbol master segment NSE_CM"). ``masters`` must hold every
    segment :func:`segments_for` names for these symbols (``ValueError`` otherwise); a segment whose master is
    None (unavailable) passes its symbols unchecked."""
    known: list[Symbol] = []
    unknown: list[dict] = []
    seen: set[Symbol] = set()
    for symbol in symbols:
        if symbol in seen:
            continue
        seen.add(symbol)
        segments = segments_of(symbol)
        missing = [s for s in segments if s not in masters]
        if missing:
            raise ValueError(f"no symbol master loaded for {', '.join(missing)} (needed by {symbol})")
        if any(masters[s] is None or str(symbol) in masters[s].tickers for s in segments):
            known.append(symbol)
            continue
        if len(segments) == 1:
            reason = f"is not in the Fyers symbol master segment {segments[0]}"
        elif segments:
            reason = f"is not in the Fyers symbol master segments {' or '.join(segments)}"
        else:
            reason = (
                f"is on exchange {symbol.exchange}, for which Fyers publishes no symbol master (only NSE, BSE, MCX)"
            )
        unknown.append({"symbol": str(symbol), "segments": list(segments), "reason": reason})
    return known, unknown


# --- downloading, with a once-per-IST-day cache in the raw bucket ------------------------------
@dataclass(frozen=True)
class MasterCopy:
    """A loaded master and where it came from: ``source`` is "cache" (today's copy), "download" (fetched
    and cached now), "stale-cache" (the download failed; ``warning`` says why and ``as_of`` how old) or
    "unavailable" (the download failed and no copy was ever cached: ``master`` is None, the segment's tickers
    go unchecked, and Fyers' history answer -300 dead-letters an unknown one instead)."""

    master: SymbolMaster | None
    key: str
    as_of: date
    source: str
    warning: str | None = None

    def describe(self) -> dict:
        """JSON-ready summary for the plan's output."""
        out = {"as_of": self.as_of.isoformat(), "source": self.source, "key": self.key}
        tickers = len(self.master.tickers) if self.master is not None else 0
        return out | {"tickers": tickers} | ({"warning": self.warning} if self.warning else {})


def master_url(base_url: str, segment: str) -> str:
    return f"{base_url.rstrip('/')}/{segment}.csv"


def fetch_url(url: str, *, timeout_s: float = 30.0, attempts: int = 3, wait_s: float = 1.0) -> bytes:
    """GET ``url`` with a real User-Agent; network errors, 429 and 5xx are retried (``TransientFyersError``
    after the last attempt), any other HTTP error is a ``FyersError`` at once."""
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"symbol master URL {url!r} must be http(s)")

    def once() -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": DEFAULT_USER_AGENT})  # noqa: S310 - http(s) only
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
                return response.read()
        except urllib.error.HTTPError as exc:
            error = TransientFyersError if exc.code == 429 or exc.code >= 500 else FyersError
            raise error(f"GET {url}: HTTP {exc.code}", http_status=exc.code) from None
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, DNS, timeout, cut short
            raise TransientFyersError(f"GET {url}: {getattr(exc, 'reason', exc)}") from None

    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=wait_s, max=10),
        retry=retry_if_exception_type(TransientFyersError),
        reraise=True,
    )
    return retrying(once)


def load_master(
    segment: str, *, base_url: str, s3, raw_bucket: str, now: datetime | None = None, fetch: Fetch = fetch_url
) -> MasterCopy:
    """Today's (IST) copy of ``segment`` from the raw bucket, else downloaded from ``base_url`` and cached,
    else (the download failed or is not a master) the newest earlier cached copy, else none ("unavailable"):
    checking tickers is a convenience, so a master that cannot be had never stops a run."""
    today = ist_today(now)
    key, url = master_key(segment, today), master_url(base_url, segment)
    body = _read(s3, raw_bucket, key)
    if body is not None:
        return MasterCopy(parse_master(body, segment=segment, source=f"s3://{raw_bucket}/{key}"), key, today, "cache")
    try:
        body = fetch(url)
        master = parse_master(body, segment=segment, source=url)  # a file we cannot read is never cached
    except (FyersError, InvalidInput) as exc:
        if isinstance(exc, InvalidInput) and not url.startswith(("http://", "https://")):
            raise  # a misconfigured URL is an error to fix, not an outage to ride out
        return _without_download(segment, exc, s3=s3, raw_bucket=raw_bucket, today=today)
    s3.put_object(Bucket=raw_bucket, Key=key, Body=body, ContentType="text/csv")
    return MasterCopy(master, key, today, "download")


def _without_download(segment: str, problem: Exception, *, s3, raw_bucket: str, today: date) -> MasterCopy:
    older = newest_cached(s3, raw_bucket, segment, before=today)
    if older is None:
        warning = (
            f"{problem}; no copy is cached under s3://{raw_bucket}/{MASTER_ROOT}: the {segment} tickers are not "
            "checked (Fyers answers -300 for an unknown one, and that ticker is dead-lettered)"
        )
        log.warning("symbol master %s unavailable: %s", segment, warning)
        return MasterCopy(None, "", today, "unavailable", warning)
    day, key = older
    body = _read(s3, raw_bucket, key) or b""
    master = parse_master(body, segment=segment, source=f"s3://{raw_bucket}/{key}")
    return MasterCopy(master, key, day, "stale-cache", f"{problem}; using the copy cached on {day.isoformat()}")


def load_masters(segments: Iterable[str], **kwargs) -> dict[str, MasterCopy]:
    """:func:`load_master` for each segment (same keyword arguments)."""
    return {segment: load_master(segment, **kwargs) for segment in segments}


def _read(s3, bucket: str, key: str) -> bytes | None:
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None


__all__ = [
    "MASTER_ROOT", "SEGMENTS", "MasterCopy", "SymbolMaster", "fetch_url", "load_master", "load_masters", "master_key",
    "master_url", "newest_cached", "parse_master", "segments_for", "segments_of", "validate",
]
