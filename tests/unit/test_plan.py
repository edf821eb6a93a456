"""Planning a run: the execution input it accepts, the symbol-master check, and what it leaves in S3."""

import json
import re
from datetime import UTC, date, datetime

import boto3
import pytest

from handlerkit import EVENTS
from pricefeed.errors import FyersError, InvalidInput
from pricefeed.ingest.plan import MAX_UNKNOWN, PlanRequest, plan_run

BUCKET = "pricefeed-raw"
DEFAULT_KEY = "config/nse_tickers.csv"
MASTER_URL = "https://public.fyers.example/sym_details"
NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)  # already 2026-11-26 01:30 in IST


def parse(given_input=None, *, now=NOW, run_id="r") -> PlanRequest:
    event = {"run_id": run_id} if given_input is None else {"run_id": run_id, "input": given_input}
    return PlanRequest.parse(event, now=now)


# --- PlanRequest.parse: which dates ---------------------------------------------------------------
def test_an_explicit_date_is_one_day_and_not_incremental():
    request = parse({"date": "2026-11-20", "tickers_key": "config/small.csv"}, run_id="run-1")
    assert request == PlanRequest("run-1", date(2026, 11, 20), date(2026, 11, 20), False, "config/small.csv")
    assert request.dates == [date(2026, 11, 20)]


def test_from_and_to_are_a_backfill_of_every_ist_date_between_them_inclusive():
    request = parse({"from": "2026-10-30", "to": "2026-11-02"})
    assert (request.from_date, request.to_date, request.incremental) == (date(2026, 10, 30), date(2026, 11, 2), False)
    assert request.dates == [date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)]


def test_from_alone_runs_up_to_today_in_ist():
    request = parse({"from": "2026-11-20"})
    assert (request.from_date, request.to_date) == (date(2026, 11, 20), date(2026, 11, 26))


@pytest.mark.parametrize("given_input", [None, {}, {"date": None}, {"date": ""}, {"from": None, "to": ""}])
def test_without_dates_the_run_is_incremental_for_today_in_ist_not_utc(given_input):
    # Given a scheduled run at 20:00 UTC on the 25th, which is 01:30 on the 26th in India
    request = parse(given_input)
    # Then it is an incremental run for the IST date
    assert (request.from_date, request.to_date, request.incremental) == (date(2026, 11, 26), date(2026, 11, 26), True)
    assert request.tickers_key is None


def test_just_before_ist_midnight_the_default_date_is_still_the_same_ist_day():
    request = parse(now=datetime(2026, 11, 25, 18, 29, 59, tzinfo=UTC))
    assert request.to_date == date(2026, 11, 25)


def test_today_itself_may_be_asked_for_explicitly():
    assert parse({"date": "2026-11-26"}).to_date == date(2026, 11, 26)
    assert parse({"from": "2026-11-26", "to": "2026-11-26"}).incremental is False


@pytest.mark.parametrize(
    ("given_input", "message"),
    [
        ({"date": "2026-11-20", "from": "2026-11-19"}, "either 'date' or 'from'/'to', not both"),
        ({"date": "2026-11-20", "to": "2026-11-21"}, "either 'date' or 'from'/'to', not both"),
        ({"to": "2026-11-20"}, "'to' needs a 'from' date"),
        ({"from": "2026-11-21", "to": "2026-11-20"}, "'from' (2026-11-21) is after 'to' (2026-11-20)"),
        ({"date": "2026-11-27"}, "'date' (2026-11-27) is after today in IST (2026-11-26)"),
        ({"from": "2026-11-20", "to": "2026-12-01"}, "'to' (2026-12-01) is after today in IST"),
        ({"from": "2027-01-01"}, "'from' (2027-01-01) is after today in IST"),
        ({"from": "2017-07-02", "to": "2017-08-01"}, "'from' (2017-07-02) is before 2017-07-03"),
        ({"date": "2010-01-04"}, "'date' (2010-01-04) is before 2017-07-03"),
    ],
)
def test_inconsistent_dates_are_rejected_naming_the_field(given_input, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse(given_input)


@pytest.mark.parametrize("field", ["date", "from", "to"])
@pytest.mark.parametrize("bad", ["25-11-2026", "2026-13-01", "2026-02-30", "yesterday", 20261125, ["2026-11-25"]])
def test_a_malformed_date_is_rejected_naming_the_input_field(field, bad):
    given = {"from": "2026-11-01", field: bad} if field == "to" else {field: bad}
    with pytest.raises(InvalidInput, match=f"execution input '{field}'"):
        parse(given)


@pytest.mark.parametrize(
    "event",
    [{}, {"run_id": ""}, {"run_id": None}, {"run_id": 42}, {"run_id": "a/b"}, {"input": {"date": "2026-11-25"}}],
)
def test_a_missing_or_unsafe_run_id_is_rejected(event):
    with pytest.raises(InvalidInput, match="run_id"):
        PlanRequest.parse(event, now=NOW)


@pytest.mark.parametrize("event", [None, [], "run-1", 7])
def test_an_event_that_is_not_an_object_is_rejected(event):
    with pytest.raises(InvalidInput, match="plan event must be an object"):
        PlanRequest.parse(event, now=NOW)


@pytest.mark.parametrize("given_input", [["2026-11-25"], "2026-11-25", 5])
def test_execution_input_that_is_not_an_object_is_rejected(given_input):
    with pytest.raises(InvalidInput, match="execution input must be a JSON object"):
        parse(given_input)


def test_unknown_input_fields_are_rejected_and_named():
    # Given an operator who misspelled "date"
    with pytest.raises(InvalidInput, match="unknown field\\(s\\): day, symbols"):
        parse({"day": "2026-11-25", "symbols": ["NSE:SBIN-EQ"]})


@pytest.mark.parametrize("bad", ["", 5, ["config/x.csv"]])
def test_a_bad_tickers_key_is_rejected(bad):
    with pytest.raises(InvalidInput, match="tickers_key"):
        parse({"date": "2026-11-25", "tickers_key": bad})


@pytest.mark.parametrize("path", sorted(EVENTS.glob("plan_run*.json")), ids=lambda p: p.name)
def test_the_sample_plan_events_parse(path):
    request = PlanRequest.parse(json.loads(path.read_text()), now=NOW)
    assert request.from_date <= request.to_date


# --- plan_run on S3, with a fake symbol master ----------------------------------------------------
def master_row(ticker: str) -> str:
    name = ticker.split(":")[1].split("-")[0]
    return (
        f"10100000001234,{name} LTD,0,1,0.05,INE000A01020,0915-1530|1815-1915:,2026-11-25,,{ticker},"
        f"10,10,1234,{name},1234,-1.0,XX,10100000001234,None,None,None\n"
    )


LISTED = {
    "NSE_CM": ["NSE:SBIN-EQ", "NSE:M&M-EQ", "NSE:INFY-EQ", "NSE:RELIANCE-EQ", "NSE:NIFTY50-INDEX"],
    "MCX_COM": ["MCX:CRUDEOIL20OCTFUT"],
}


class FakeMaster:
    """The symbol master by URL; counts downloads per URL; ``down`` makes them fail."""

    def __init__(self):
        self.downloads: list[str] = []
        self.down = False

    def __call__(self, url: str) -> bytes:
        self.downloads.append(url)
        if self.down:
            raise FyersError(f"GET {url}: HTTP 503")
        segment = url.rsplit("/", 1)[1].removesuffix(".csv")
        return "".join(master_row(t) for t in LISTED.get(segment, [])).encode()


@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    return client


@pytest.fixture
def master():
    return FakeMaster()


def read_json(s3, key: str):
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def keys(s3, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def put_list(s3, body: str, key: str = DEFAULT_KEY) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def plan(s3, master, request: PlanRequest, now: datetime = NOW) -> dict:
    return plan_run(
        request,
        s3=s3,
        raw_bucket=BUCKET,
        ticker_list_key=DEFAULT_KEY,
        map_concurrency=7,
        symbol_master_url=MASTER_URL,
        now=now,
        fetch=master,
    )


def day(iso: str, run_id: str = "run-42") -> PlanRequest:
    d = date.fromisoformat(iso)
    return PlanRequest(run_id, d, d)


def test_plan_writes_the_map_items_the_symbols_of_the_run_and_its_output(s3, master):
    # Given a ticker list with a duplicate (in another case) and a malformed row
    put_list(s3, "symbol,name\nNSE:SBIN-EQ,SBI\nNSE:M&M-EQ,M&M\nnse:sbin-eq,again\nSBIN,bad\n")
    # When a run is planned for one day
    result = plan(s3, master, day("2026-11-25"))
    # Then the Map's item list and the run's symbol list are in the run's folder
    assert read_json(s3, "ohlcv/runs/run-42/items.json") == [{"symbol": "NSE:SBIN-EQ"}, {"symbol": "NSE:M&M-EQ"}]
    assert read_json(s3, "ohlcv/runs/run-42/symbols.json") == {
        "from": "2026-11-25",
        "to": "2026-11-25",
        "incremental": False,
        "dates": ["2026-11-25"],
        "symbols": ["NSE:SBIN-EQ", "NSE:M&M-EQ"],
    }
    # And the output tells the state machine where they are and the operator what was dropped
    assert {k: v for k, v in result.items() if k not in ("rejected", "symbol_master")} == {
        "run_id": "run-42",
        "from": "2026-11-25",
        "to": "2026-11-25",
        "incremental": False,
        "tickers_key": DEFAULT_KEY,
        "items_key": "ohlcv/runs/run-42/items.json",
        "symbols_key": "ohlcv/runs/run-42/symbols.json",
        "result_key": "ohlcv/runs/run-42/aggregate-result.json",
        "ingested_prefix": "ohlcv/runs/run-42/ingested/",
        "map_results_prefix": "ohlcv/runs/run-42/map-results",
        "count": 2,
        "duplicates": 1,
        "rejected_count": 1,
        "unknown": [],
        "unknown_count": 0,
        "max_concurrency": 7,
        "job": {"workers": 2, "timeout_min": 60, "symbol_days": 2},  # the job as declared: a day is small
        "tolerated_failure_percentage": 100,
    }
    assert [(r["line"], r["value"]) for r in result["rejected"]] == [(5, "SBIN")]
    assert result["symbol_master"]["NSE_CM"]["source"] == "download"
    json.dumps(result)  # the Lambda returns it as JSON


def test_unknown_symbols_are_dead_lettered_without_a_history_request_and_left_out_of_the_items(s3, master):
    # Given a list with a delisted equity and an expired-looking future among known symbols
    put_list(s3, "symbol\nNSE:SBIN-EQ\nNSE:DELISTEDCO-EQ\nNSE:INFY-EQ\nMCX:GOLD99DECFUT\n")
    # When a three-day backfill is planned
    request = PlanRequest("bf-1", date(2026, 11, 23), date(2026, 11, 25))
    result = plan(s3, master, request)
    # Then only the known symbols go to the Map
    assert read_json(s3, result["items_key"]) == [{"symbol": "NSE:SBIN-EQ"}, {"symbol": "NSE:INFY-EQ"}]
    assert read_json(s3, result["symbols_key"])["symbols"] == ["NSE:SBIN-EQ", "NSE:INFY-EQ"]
    # And each unknown one is reported and has a dead letter dated by the plan's last day
    assert result["unknown_count"] == 2
    assert [(u["symbol"], u["segments"]) for u in result["unknown"]] == [
        ("NSE:DELISTEDCO-EQ", ["NSE_CM"]),
        ("MCX:GOLD99DECFUT", ["MCX_COM"]),
    ]
    letter_key = result["unknown"][0]["dead_letter_key"]
    assert letter_key.startswith("ohlcv/errors/symbol=DELISTEDCO-EQ/year=2026/month=11/day=25/failed-")
    letter = read_json(s3, letter_key)
    assert letter["symbol"] == "NSE:DELISTEDCO-EQ" and letter["trading_date"] == "2026-11-25"
    assert (letter["error_type"], letter["attempts"], letter["run_id"]) == ("InvalidSymbol", 0, "bf-1")
    assert "not in the Fyers symbol master segment NSE_CM" in letter["error_message"]
    assert letter["input"]["symbol"] == "NSE:DELISTEDCO-EQ"
    assert len(keys(s3, "ohlcv/errors/")) == 2
    # And only the master files were downloaded: the plan never asks Fyers for history
    assert master.downloads == [f"{MASTER_URL}/NSE_CM.csv", f"{MASTER_URL}/MCX_COM.csv"]


def test_the_reported_unknowns_are_capped_but_all_are_counted_and_dead_lettered(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\n" + "".join(f"NSE:GONE{i}-EQ\n" for i in range(130)))
    result = plan(s3, master, day("2026-11-25"))
    assert (len(result["unknown"]), result["unknown_count"], result["count"]) == (100, 130, 1)
    assert len(keys(s3, "ohlcv/errors/")) == 130


def test_a_list_with_more_unknown_symbols_than_a_run_dead_letters_is_refused_whole_naming_the_list(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\n" + "".join(f"NSE:GONE{i}-EQ\n" for i in range(MAX_UNKNOWN + 1)))
    with pytest.raises(InvalidInput) as refused:
        plan(s3, master, day("2026-11-25"))
    message = str(refused.value)
    assert f"s3://{BUCKET}/{DEFAULT_KEY}" in message and "1,001 of its 1,002 symbols" in message
    assert "NSE:GONE0-EQ" in message and "fix the list" in message
    assert keys(s3, "ohlcv/errors/") == [] and keys(s3, "ohlcv/runs/") == []  # nothing half-planned


def test_a_list_of_only_unknown_symbols_plans_an_empty_map(s3, master):
    put_list(s3, "symbol\nNSE:DELISTEDCO-EQ\n")
    result = plan(s3, master, day("2026-11-25"))
    assert (result["count"], result["unknown_count"]) == (0, 1)
    assert read_json(s3, result["items_key"]) == []


def test_an_incremental_run_is_for_today_and_says_so_everywhere(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\n")
    result = plan(s3, master, parse(run_id="nightly"))
    assert (result["from"], result["to"], result["incremental"]) == ("2026-11-26", "2026-11-26", True)
    symbols = read_json(s3, result["symbols_key"])
    assert (symbols["incremental"], symbols["dates"]) == (True, ["2026-11-26"])


def test_the_master_is_downloaded_once_per_ist_day_however_many_runs_are_planned(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\nNSE:DELISTEDCO-EQ\n")
    first = plan(s3, master, day("2026-11-25", "run-1"))
    second = plan(s3, master, day("2026-11-24", "run-2"), now=datetime(2026, 11, 26, 18, 0, tzinfo=UTC))  # 23:30 IST
    assert master.downloads == [f"{MASTER_URL}/NSE_CM.csv"]
    assert (first["symbol_master"]["NSE_CM"]["source"], second["symbol_master"]["NSE_CM"]["source"]) == (
        "download",
        "cache",
    )
    assert keys(s3, "ohlcv/symbol-master/") == ["ohlcv/symbol-master/date=2026-11-26/NSE_CM.csv"]
    assert second["unknown_count"] == 1
    # The next IST day fetches a fresh copy
    plan(s3, master, day("2026-11-25", "run-3"), now=datetime(2026, 11, 26, 18, 30, tzinfo=UTC))
    assert len(master.downloads) == 2


def test_when_the_download_fails_an_earlier_days_copy_is_used_and_the_output_says_so(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\nNSE:DELISTEDCO-EQ\n")
    plan(s3, master, day("2026-11-20", "run-1"), now=datetime(2026, 11, 20, 6, 0, tzinfo=UTC))
    master.down = True
    result = plan(s3, master, day("2026-11-25", "run-2"))
    copy = result["symbol_master"]["NSE_CM"]
    assert (copy["source"], copy["as_of"]) == ("stale-cache", "2026-11-20")
    assert f"{MASTER_URL}/NSE_CM.csv: HTTP 503" in copy["warning"]
    assert (result["count"], result["unknown_count"]) == (1, 1)


def test_without_any_master_the_plan_goes_on_unchecked_and_says_so(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\nNSE:DELISTEDCO-EQ\n")
    master.down = True

    result = plan(s3, master, day("2026-11-25"))

    assert (result["count"], result["unknown_count"]) == (2, 0)  # history's -300 dead-letters DELISTEDCO later
    copy = result["symbol_master"]["NSE_CM"]
    assert copy["source"] == "unavailable" and f"{MASTER_URL}/NSE_CM.csv" in copy["warning"]
    assert keys(s3, "ohlcv/errors/") == []


def test_the_reported_rejections_are_capped_but_counted_in_full(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\n" + "bad\n" * 250)
    result = plan(s3, master, day("2026-11-25"))
    assert len(result["rejected"]) == 100
    assert result["rejected_count"] == 250


def test_a_tickers_key_in_the_input_overrides_the_configured_list(s3, master):
    put_list(s3, "symbol\nNSE:SBIN-EQ\n")
    put_list(s3, "symbol\nNSE:INFY-EQ\n", key="config/one-off.csv")
    result = plan(s3, master, PlanRequest("r", date(2026, 11, 25), date(2026, 11, 25), False, "config/one-off.csv"))
    assert result["tickers_key"] == "config/one-off.csv"
    assert read_json(s3, result["items_key"]) == [{"symbol": "NSE:INFY-EQ"}]


def test_a_missing_ticker_list_is_an_invalid_input_naming_its_s3_url(s3, master):
    with pytest.raises(InvalidInput, match=re.escape(f"s3://{BUCKET}/{DEFAULT_KEY} does not exist")):
        plan(s3, master, day("2026-11-25"))
    assert keys(s3, "ohlcv/runs/") == [] and master.downloads == []


def test_a_ticker_list_that_is_not_utf8_is_an_invalid_input(s3, master):
    # Given a list saved in Latin-1 by a spreadsheet
    s3.put_object(Bucket=BUCKET, Key=DEFAULT_KEY, Body="symbol,name\nNSE:SBIN-EQ,Société\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match=re.escape(f"s3://{BUCKET}/{DEFAULT_KEY} is not UTF-8")):
        plan(s3, master, day("2026-11-25"))


def test_a_list_without_valid_symbols_fails_naming_the_s3_url_and_writes_nothing(s3, master):
    put_list(s3, "ticker\nNSE:SBIN-EQ\n")
    named = re.escape(f"ticker list s3://{BUCKET}/{DEFAULT_KEY}: ") + ".*'symbol' column"
    with pytest.raises(InvalidInput, match=named):
        plan(s3, master, day("2026-11-25"))
    assert keys(s3, "ohlcv/runs/") == []


def test_an_expired_contract_is_dead_lettered_naming_its_expiry_without_a_master_or_a_request(s3, master):
    # Given a list with a live equity, a monthly future and a weekly option that expired years ago
    put_list(s3, "symbol\nNSE:SBIN-EQ\nNSE:NIFTY20OCTFUT\nNSE:NIFTY20O0811000CE\n")
    result = plan(s3, master, day("2026-11-25"))
    # Then only the equity is planned; each contract's dead letter says when it expired
    assert read_json(s3, result["items_key"]) == [{"symbol": "NSE:SBIN-EQ"}]
    reasons = {u["symbol"]: u["reason"] for u in result["unknown"]}
    assert reasons == {
        "NSE:NIFTY20OCTFUT": "is a contract that expired in Oct 2020: Fyers serves no history for expired contracts "
        "(take it off the list)",
        "NSE:NIFTY20O0811000CE": "is a contract that expired on 2020-10-08: Fyers serves no history for expired "
        "contracts (take it off the list)",
    }
    letter = read_json(s3, result["unknown"][1]["dead_letter_key"])
    assert (letter["error_type"], letter["attempts"]) == ("InvalidSymbol", 0)
    assert "expired on 2020-10-08" in letter["error_message"]
    assert "no history request was made" in letter["error_message"]
    assert master.downloads == [f"{MASTER_URL}/NSE_CM.csv"]  # not even the F&O master was needed


def test_a_contract_of_the_current_month_is_left_to_the_master(s3, master):
    put_list(s3, "symbol\nMCX:CRUDEOIL26NOVFUT\n")
    LISTED["MCX_COM"].append("MCX:CRUDEOIL26NOVFUT")
    try:
        result = plan(s3, master, day("2026-11-25"))
    finally:
        LISTED["MCX_COM"].remove("MCX:CRUDEOIL26NOVFUT")
    assert read_json(s3, result["items_key"]) == [{"symbol": "MCX:CRUDEOIL26NOVFUT"}] and result["unknown"] == []
