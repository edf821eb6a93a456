"""The symbol master over loopback: the simulator serves Fyers' files, the plan reads them with the real
HTTP client, caches them in (moto) S3 and dead-letters unknown symbols without asking for any history."""

from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests

from pricefeed.errors import FyersError, TransientFyersError
from pricefeed.fyers.symbol_master import fetch_url, parse_master, validate
from pricefeed.ingest.plan import PlanRequest, plan_run
from pricefeed.ingest.tickers import parse_ticker_csv
from pricefeed.istime import ist_today
from pricefeed.simulator import SimulatorConfig, SimulatorServer

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "pricefeed-raw"
LIST_KEY = "config/nse_tickers.csv"
NOW = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)  # 11:30 IST
# The documented example row, except column 7 (the file's last-update date).
SBIN_ROW = (
    "10100000003045,STATE BANK OF INDIA,0,1,0.05,INE062A01020,0915-1530|1815-1915:,{day},,NSE:SBIN-EQ,"
    "10,10,3045,SBIN,3045,-1.0,XX,10100000003045,None,None,None"
)


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def sim():
    with SimulatorServer(SimulatorConfig(clock=Clock(NOW.timestamp())), port=0) as server:
        yield server


def rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline="")))


# --- what the simulator serves -------------------------------------------------------------------
def test_the_equity_master_has_fyers_layout_no_header_and_the_documented_example_row(sim):
    r = requests.get(f"{sim.url}/sym_details/NSE_CM.csv", timeout=5)
    assert r.status_code == 200
    table = rows(r.content)
    assert all(len(row) == 21 for row in table)
    assert table[0][9].startswith("NSE:")  # no header row
    assert ",".join(next(row for row in table if row[9] == "NSE:SBIN-EQ")) == SBIN_ROW.format(day="2026-11-26")
    tickers = {row[9] for row in table}
    assert {"NSE:NIFTY50-INDEX", "NSE:NIFTYBANK-INDEX", "NSE:M&M-EQ", "NSE:SIM0001-EQ", "NSE:SIM3000-EQ"} <= tickers
    assert "NSE:DELISTEDCO-EQ" not in tickers and "NSE:SIM3001-EQ" not in tickers


@pytest.mark.parametrize(
    ("segment", "ticker"),
    [("NSE_FO", "NSE:NIFTY20OCTFUT"), ("NSE_CD", "NSE:USDINR20OCTFUT"), ("BSE_CM", "BSE:SBIN-A"),
     ("BSE_FO", "BSE:SENSEX20OCTFUT"), ("MCX_COM", "MCX:CRUDEOIL20OCTFUT")],
)  # fmt: skip
def test_the_other_segments_are_served_too(sim, segment, ticker):
    master = parse_master(fetch_url(f"{sim.url}/sym_details/{segment}.csv"), segment=segment, source="sim")
    assert ticker in master.tickers and master.column == 9


@pytest.mark.parametrize("name", ["NSE_XX.csv", "NSE_CM.txt", "NSE_CM", "nse_cm.csv"])
def test_an_unknown_master_file_is_404(sim, name):
    assert requests.get(f"{sim.url}/sym_details/{name}", timeout=5).status_code == 404


def test_master_downloads_spend_no_api_rate_budget(sim):
    for _ in range(3):
        fetch_url(f"{sim.url}/sym_details/NSE_CM.csv")
    assert sim.stats()["total"] == 0


def test_a_shuffled_column_order_is_still_read_by_content():
    order = tuple(reversed(range(21)))
    with SimulatorServer(SimulatorConfig(master_column_order=order), port=0) as sim:
        body = fetch_url(f"{sim.url}/sym_details/NSE_CM.csv")
    assert rows(body)[0][11].startswith("NSE:")  # documented column 9 is now column 11
    master = parse_master(body, segment="NSE_CM", source="sim")
    assert master.column == 11 and "NSE:SBIN-EQ" in master.tickers


# --- one universe: the master is what /data/history knows --------------------------------------------
def test_history_knows_exactly_the_symbols_of_the_master_minus_the_configured_unknown_ones():
    cfg = SimulatorConfig(clock=Clock(NOW.timestamp()), unknown_symbols=frozenset({"NSE:WIPRO-EQ"}))
    with SimulatorServer(cfg, port=0) as sim:
        master = parse_master(fetch_url(f"{sim.url}/sym_details/NSE_CM.csv"), segment="NSE_CM", source="sim")
        assert "NSE:WIPRO-EQ" not in master.tickers and "NSE:TCS-EQ" in master.tickers
        token = login(sim)
        for symbol, code in [("NSE:TCS-EQ", None), ("NSE:SIM0042-EQ", None), ("NSE:WIPRO-EQ", -300),
                             ("NSE:DELISTEDCO-EQ", -300), ("nse:tcs-eq", -300)]:  # fmt: skip
            body = history(sim, token, symbol)
            assert body.get("code") == code if code else body["s"] in ("ok", "no_data"), symbol


def test_the_shipped_ticker_list_is_all_listed_except_its_deliberately_delisted_company(sim):
    tickers = parse_ticker_csv((ROOT / "ticker_list" / "nse_tickers.csv").read_text())
    master = parse_master(fetch_url(f"{sim.url}/sym_details/NSE_CM.csv"), segment="NSE_CM", source="sim")
    known, unknown = validate(tickers.symbols, {"NSE_CM": master})
    assert [u["symbol"] for u in unknown] == ["NSE:DELISTEDCO-EQ"]
    assert [str(s) for s in known] == ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:INFY-EQ", "NSE:M&M-EQ"]


def login(sim) -> str:
    cfg = sim.config
    r = requests.get(
        f"{sim.url}/api/v3/generate-authcode",
        params={"client_id": cfg.app_id, "redirect_uri": cfg.redirect_uri, "response_type": "code", "state": "s"},
        allow_redirects=False,
        timeout=5,
    )
    code = r.headers["Location"].split("auth_code=")[1].split("&")[0]
    r = requests.post(
        f"{sim.url}/api/v3/validate-authcode",
        json={"grant_type": "authorization_code", "appIdHash": cfg.app_id_hash, "code": code},
        timeout=5,
    )
    return r.json()["access_token"]


def history(sim, token: str, symbol: str) -> dict:
    r = requests.get(
        f"{sim.url}/data/history",
        params={"symbol": symbol, "resolution": "1", "date_format": "1", "range_from": "2026-11-25",
                "range_to": "2026-11-25", "cont_flag": "1"},
        headers={"Authorization": f"{sim.config.app_id}:{token}"},
        timeout=5,
    )  # fmt: skip
    return r.json()


# --- the plan against the simulator's master --------------------------------------------------------
@pytest.fixture
def s3(mocked_aws):
    client = boto3.client("s3", region_name=mocked_aws)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": mocked_aws})
    client.upload_file(str(ROOT / "ticker_list" / "nse_tickers.csv"), BUCKET, LIST_KEY)
    return client


class Counting:
    """``fetch_url`` that counts what it downloads."""

    def __init__(self):
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        return fetch_url(url, attempts=2, wait_s=0)


def plan(s3, base_url: str, run_id: str, *, now: datetime = NOW, fetch=fetch_url) -> dict:
    today = ist_today(now)
    return plan_run(
        PlanRequest(run_id, today, today),
        s3=s3,
        raw_bucket=BUCKET,
        ticker_list_key=LIST_KEY,
        map_concurrency=4,
        symbol_master_url=base_url,
        now=now,
        fetch=fetch,
    )


def test_the_shipped_list_is_planned_against_the_simulator_with_one_download_a_day(s3, sim):
    fetch = Counting()
    base = f"{sim.url}/sym_details"
    # When the shipped list is planned twice on the same IST day
    first = plan(s3, base, "run-1", fetch=fetch)
    second = plan(s3, base, "run-2", fetch=fetch)
    # Then the master was downloaded once and cached for the day
    assert fetch.urls == [f"{base}/NSE_CM.csv"]
    assert [first["symbol_master"]["NSE_CM"]["source"], second["symbol_master"]["NSE_CM"]["source"]] == [
        "download",
        "cache",
    ]
    # And the delisted company is dead-lettered, not planned, and no history request was made for anything
    items = json.loads(s3.get_object(Bucket=BUCKET, Key=first["items_key"])["Body"].read())
    assert [i["symbol"] for i in items] == ["NSE:SBIN-EQ", "NSE:RELIANCE-EQ", "NSE:INFY-EQ", "NSE:M&M-EQ"]
    assert [u["symbol"] for u in first["unknown"]] == ["NSE:DELISTEDCO-EQ"]
    assert sim.stats()["requests"] == {}


def test_with_the_master_unreachable_the_newest_cached_copy_is_used_and_reported(s3):
    with SimulatorServer(SimulatorConfig(), port=0) as sim:
        base = f"{sim.url}/sym_details"
        plan(s3, base, "yesterday", now=datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    # The simulator is gone: the port refuses connections
    result = plan(s3, base, "today", fetch=Counting())
    copy = result["symbol_master"]["NSE_CM"]
    assert (copy["source"], copy["as_of"]) == ("stale-cache", "2026-11-25")
    assert f"{base}/NSE_CM.csv" in copy["warning"]
    assert result["count"] == 4 and result["unknown_count"] == 1


def test_with_the_master_unreachable_and_nothing_cached_every_ticker_is_planned_unchecked(s3):
    with SimulatorServer(SimulatorConfig(), port=0) as sim:
        base = f"{sim.url}/sym_details"
    # The simulator is gone: the port refuses connections, and no copy was ever cached
    result = plan(s3, base, "r", fetch=Counting())

    copy = result["symbol_master"]["NSE_CM"]
    assert copy["source"] == "unavailable" and f"{base}/NSE_CM.csv" in copy["warning"]
    assert result["count"] == 5 and result["unknown_count"] == 0  # DELISTEDCO too: history's -300 will tell


# --- fetch_url: retries what is worth retrying ------------------------------------------------------
class Flaky(BaseHTTPRequestHandler):
    statuses: list[int] = []
    seen: list[str] = []

    def do_GET(self):
        Flaky.seen.append(self.headers.get("User-Agent", ""))
        status = Flaky.statuses.pop(0) if Flaky.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"NSE:SBIN-EQ\n" if status == 200 else b"<html>error</html>")

    def log_message(self, *args):
        pass


@pytest.fixture
def flaky():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Flaky.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/NSE_CM.csv"
    server.shutdown()
    server.server_close()


def test_server_errors_are_retried_then_succeed_with_a_real_user_agent(flaky):
    Flaky.statuses = [503, 500]
    assert fetch_url(flaky, attempts=3, wait_s=0) == b"NSE:SBIN-EQ\n"
    assert len(Flaky.seen) == 3 and all(ua.startswith("pricefeed/") for ua in Flaky.seen)


def test_a_persistent_server_error_is_transient_after_the_last_attempt(flaky):
    Flaky.statuses = [502, 502, 502]
    with pytest.raises(TransientFyersError, match="HTTP 502"):
        fetch_url(flaky, attempts=3, wait_s=0)
    assert len(Flaky.seen) == 3


def test_a_404_is_not_retried(flaky):
    Flaky.statuses = [404]
    with pytest.raises(FyersError, match="HTTP 404") as raised:
        fetch_url(flaky, attempts=3, wait_s=0)
    assert not isinstance(raised.value, TransientFyersError) and len(Flaky.seen) == 1
