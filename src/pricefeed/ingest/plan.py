"""Plan a run: which IST dates, which tickers (checked against Fyers' symbol master), the Map's item list.

Unknown symbols are dead-lettered here, so no history request is ever spent on them; the Map only sees
known symbols. The output's fields are those :func:`plan_run` returns; the state machine reads ``count``
(none: it succeeds without a Map), ``items_key`` and the Map settings, the job its keys.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime

from pricefeed.contracts import expired
from pricefeed.errors import InvalidInput, reject_unknown_fields, shown
from pricefeed.fyers.symbol_master import Fetch, fetch_url, load_masters, segments_for, segments_of, validate
from pricefeed.ingest.dead_letters import Failure, write_dead_letter
from pricefeed.ingest.job_size import size_job, weekdays
from pricefeed.ingest.tickers import TickerList, parse_ticker_csv
from pricefeed.istime import ISO_DATE, MINUTE_HISTORY_START, days, ist_today, parse_date, utcnow
from pricefeed.lake.paths import RunKeys
from pricefeed.symbol import Symbol

#: How many rejected or unknown symbols the output lists (all are counted).
MAX_REPORTED = 100
#: Unknown symbols a run dead-letters one by one (~8 ms each on S3 with 8 writers: seconds, within the plan's
#: timeout). More is taken for a wrong list (another exchange's names, a stale export) and refused whole.
MAX_UNKNOWN = 1_000
_INPUT_FIELDS = ("date", "from", "to", "tickers_key")
#: A Step Functions execution name (the run id): no whitespace, control characters or '/'.
_RUN_ID = re.compile(r"[^\s/]{1,80}")


@dataclass(frozen=True)
class PlanRequest:
    """What to fetch: IST dates ``from_date``..``to_date`` (inclusive). ``incremental`` runs (scheduled, no
    dates given) are for IST today and let each symbol's ingest start at its watermark instead."""

    run_id: str
    from_date: date
    to_date: date
    incremental: bool = False
    tickers_key: str | None = None

    @property
    def dates(self) -> list[date]:
        return days(self.from_date, self.to_date)

    @classmethod
    def parse(cls, event: object, *, now: datetime | None = None) -> PlanRequest:
        """``{"run_id": ..., "input": {"date"?, "from"?, "to"?, "tickers_key"?}}``. ``date`` is one day; ``from``
        (and ``to``, default IST today) a range; neither = an incremental run for IST today. ``InvalidInput``
        names the offending field: unknown fields, ``date`` with ``from``/``to``, ``from`` after ``to``, a date
        after IST today or before 2017-07-03."""
        if not isinstance(event, dict):
            raise InvalidInput("plan event must be an object")
        run_id = event.get("run_id")
        if not _is_run_id(run_id):
            raise InvalidInput(
                "plan event needs a 'run_id' string (an execution name: 1-80 printable characters, "
                f"no '/' or whitespace), got {shown(run_id)}"
            )
        given = event.get("input") or {}
        if not isinstance(given, dict):
            raise InvalidInput("execution input must be a JSON object")
        reject_unknown_fields(given, _INPUT_FIELDS, "execution input")
        tickers_key = given.get("tickers_key")
        if tickers_key is not None:
            _check_tickers_key(tickers_key)
        today = ist_today(now)
        present = {name for name in ("date", "from", "to") if given.get(name) not in (None, "")}
        if not present:
            return cls(run_id, today, today, True, tickers_key)
        if "date" in present:
            if present != {"date"}:
                raise InvalidInput("execution input takes either 'date' or 'from'/'to', not both")
            day = _input_date(given, "date", today)
            return cls(run_id, day, day, False, tickers_key)
        if "from" not in present:
            raise InvalidInput("execution input 'to' needs a 'from' date")
        first = _input_date(given, "from", today)
        last = _input_date(given, "to", today) if "to" in present else today
        if first > last:
            raise InvalidInput(f"execution input 'from' ({first}) is after 'to' ({last})")
        return cls(run_id, first, last, False, tickers_key)


def _is_run_id(value: object) -> bool:
    if not isinstance(value, str) or value in (".", ".."):
        return False
    return bool(_RUN_ID.fullmatch(value)) and value.isprintable()


def _check_tickers_key(key: object) -> None:
    """A ticker list's S3 key: relative, normalised (no empty, '.' or '..' segments), printable, <= 1024 bytes."""
    what = "execution input 'tickers_key'"
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"{what} must be a non-empty string")
    # isprintable() also refuses lone surrogates, which cannot be sent to S3.
    if not key.isprintable() or key.strip() != key or len(key.encode("utf-8")) > 1024:
        raise InvalidInput(f"{what} {shown(key)} is not a usable S3 key (printable, trimmed, at most 1024 bytes)")
    if key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidInput(f"{what} {shown(key)} must be a relative key without empty, '.' or '..' segments")


def _input_date(given: dict, name: str, today: date) -> date:
    value = given[name]
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise InvalidInput(f"execution input '{name}' must be a YYYY-MM-DD string, got {shown(value)}")
    day = parse_date(value, what=f"execution input '{name}'")
    if day > today:
        raise InvalidInput(f"execution input '{name}' ({day}) is after today in IST ({today})")
    if day < MINUTE_HISTORY_START:
        raise InvalidInput(
            f"execution input '{name}' ({day}) is before {MINUTE_HISTORY_START}, where Fyers' minute history starts"
        )
    return day


def plan_run(
    request: PlanRequest,
    *,
    s3,
    raw_bucket: str,
    ticker_list_key: str,
    map_concurrency: int,
    symbol_master_url: str,
    max_glue_workers: int = 50,
    now: datetime | None = None,
    fetch: Fetch = fetch_url,
) -> dict:
    """Read the ticker list, check it against the symbol master (cached per IST day in ``raw_bucket``),
    dead-letter the unknown symbols, write ``items.json`` and ``symbols.json``; returns the plan output.
    Nothing is written under the run's prefix when the list or a master cannot be read, or when more than
    ``MAX_UNKNOWN`` of its symbols are unknown (``InvalidInput``: the plan's work stays bounded)."""
    key = request.tickers_key or ticker_list_key
    tickers = _read_ticker_list(s3, raw_bucket, key)
    today = ist_today(now)
    # Fyers serves no history for an expired contract: said by its name, before any master or request.
    gone = [{"symbol": str(s), "segments": list(segments_of(s)), "reason": why}
            for s in dict.fromkeys(tickers.symbols) if (why := expired(s, today))]
    live = [s for s in tickers.symbols if str(s) not in {g["symbol"] for g in gone}]
    masters = load_masters(
        segments_for(live), base_url=symbol_master_url, s3=s3, raw_bucket=raw_bucket, now=now, fetch=fetch
    )
    known, unknown = validate(live, {segment: copy.master for segment, copy in masters.items()})
    unknown = gone + unknown
    if len(unknown) > MAX_UNKNOWN:
        first = ", ".join(entry["symbol"] for entry in unknown[:5])
        raise InvalidInput(
            f"ticker list s3://{raw_bucket}/{key}: {len(unknown):,} of its {len(tickers.symbols):,} symbols are not in "
            f"Fyers' symbol master (e.g. {first}); more than {MAX_UNKNOWN:,} is taken for a wrong list, so nothing "
            "was planned: fix the list"
        )
    listed = {str(s): s for s in tickers.symbols}
    _dead_letter_unknown(unknown, listed, request, s3=s3, raw_bucket=raw_bucket, failed_at=now or utcnow())
    keys = RunKeys(request.run_id)
    items_key, symbols_key = keys.items, keys.symbols
    _put_json(s3, raw_bucket, items_key, [{"symbol": str(s)} for s in known])
    _put_json(
        s3,
        raw_bucket,
        symbols_key,
        {
            "from": request.from_date.isoformat(),
            "to": request.to_date.isoformat(),
            "incremental": request.incremental,
            "dates": [d.isoformat() for d in request.dates],
            "symbols": [str(s) for s in known],
        },
    )
    return {
        "run_id": request.run_id,
        "from": request.from_date.isoformat(),
        "to": request.to_date.isoformat(),
        "incremental": request.incremental,
        "tickers_key": key,
        "items_key": items_key,
        "symbols_key": symbols_key,
        "result_key": keys.result,
        "ingested_prefix": keys.ingested_prefix,
        "map_results_prefix": keys.map_results_prefix,
        "count": len(known),
        "duplicates": tickers.duplicates,
        "rejected": tickers.rejected[:MAX_REPORTED],
        "rejected_count": len(tickers.rejected),
        "unknown": unknown[:MAX_REPORTED],
        "unknown_count": len(unknown),
        "symbol_master": {segment: copy.describe() for segment, copy in masters.items()},
        "max_concurrency": map_concurrency,
        # The aggregation run's size (workers, timeout), from the symbol-days planned (weekdays: an upper bound).
        "job": size_job(len(known) * weekdays(request.from_date, request.to_date), max_workers=max_glue_workers),
        # Failed symbols are dead-lettered; they must not fail the whole Map.
        "tolerated_failure_percentage": 100,
    }


def _read_ticker_list(s3, bucket: str, key: str) -> TickerList:
    source = f"ticker list s3://{bucket}/{key}"
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        raise InvalidInput(f"{source} does not exist: upload it first") from None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source} is not UTF-8 text") from None
    return parse_ticker_csv(text, source=source)


def _dead_letter_unknown(
    unknown: list[dict], listed: dict[str, Symbol], request: PlanRequest, *, s3, raw_bucket: str, failed_at
) -> None:
    """One dead letter per unknown symbol (error InvalidSymbol, 0 attempts), dated by the plan's ``to``;
    adds its key to each entry."""

    def write(entry: dict) -> str:
        failure = Failure("InvalidSymbol", f"{entry['symbol']} {entry['reason']}; no history request was made", 0)
        asked = {"from": request.from_date, "to": request.to_date}
        return write_dead_letter(s3, raw_bucket, symbol=listed[entry["symbol"]], trading_date=request.to_date,
                                 failure=failure, run_id=request.run_id, asked=asked, now=failed_at)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="plan") as pool:
        for entry, key in zip(unknown, pool.map(write, unknown), strict=True):
            entry["dead_letter_key"] = key


def _put_json(s3, bucket: str, key: str, value: object) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(value).encode(), ContentType="application/json")
