"""``/data/history`` of a running Fyers simulator: candles, no_data, symbols, range limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests

from pricefeed.simulator import SimulatorConfig, SimulatorServer

IST = ZoneInfo("Asia/Kolkata")
NOW = 1_720_094_400.0  # Thu 2024-07-04 12:00 UTC = 17:30 IST
WED_OPEN = 1_719_978_300  # Wed 2024-07-03 09:15 IST


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Client:
    """Logs in once, then fetches history."""

    def __init__(self, sim: SimulatorServer):
        cfg = sim.config
        self.sim = sim
        r = requests.get(
            f"{sim.url}/api/v3/generate-authcode",
            allow_redirects=False,
            timeout=5,
            params={
                "client_id": cfg.app_id,
                "redirect_uri": cfg.redirect_uri,
                "response_type": "code",
                "state": "s",
            },
        )
        code = parse_qs(urlparse(r.headers["Location"]).query)["auth_code"][0]
        h = hashlib.sha256(f"{cfg.app_id}:{cfg.secret_key}".encode()).hexdigest()
        r = requests.post(
            f"{sim.url}/api/v3/validate-authcode",
            timeout=5,
            json={"grant_type": "authorization_code", "appIdHash": h, "code": code},
        )
        self.header = {"Authorization": f"{cfg.app_id}:{r.json()['access_token']}"}

    def get(
        self,
        symbol="NSE:SBIN-EQ",
        resolution="1",
        date_format="0",
        range_from=None,
        range_to=None,
        **extra: str,
    ) -> requests.Response:
        params = {
            "symbol": symbol,
            "resolution": resolution,
            "date_format": date_format,
            "range_from": str(range_from),
            "range_to": str(range_to),
            "cont_flag": "1",
            **extra,
        }
        return requests.get(f"{self.sim.url}/data/history", params=params, headers=self.header, timeout=10)

    def days(self, first: str, last: str, **kw) -> requests.Response:
        return self.get(date_format="1", range_from=first, range_to=last, **kw)


@pytest.fixture
def clock():
    return Clock(NOW)


@pytest.fixture
def sim(clock):
    cfg = SimulatorConfig(clock=clock, unknown_symbols=frozenset({"NSE:GONE-EQ"}))
    with SimulatorServer(cfg, port=0) as server:
        yield server


@pytest.fixture
def client(sim):
    return Client(sim)


def test_one_weekday_is_375_valid_candles_and_stable(client):
    r = client.days("2024-07-03", "2024-07-03")
    body = r.json()
    assert r.status_code == 200 and body["s"] == "ok"
    candles = body["candles"]
    assert len(candles) == 375
    stamps = [dt.datetime.fromtimestamp(c[0], IST) for c in candles]
    assert stamps[0].strftime("%Y-%m-%d %H:%M") == "2024-07-03 09:15"
    assert stamps[-1].strftime("%H:%M") == "15:29"
    assert all(b[0] - a[0] == 60 for a, b in itertools.pairwise(candles))
    for _t, o, h, lo, c, v in candles:
        assert lo <= min(o, c) <= max(o, c) <= h and 100 <= lo and h <= 3000
        assert round(o, 2) == o and isinstance(v, int) and v > 0
    assert client.days("2024-07-03", "2024-07-03").json()["candles"] == candles
    sub = client.get(range_from=WED_OPEN + 100 * 60, range_to=WED_OPEN + 159 * 60).json()["candles"]
    assert sub == candles[100:160]


def test_weekend_is_no_data_in_both_styles(client, sim):
    body = client.days("2024-07-06", "2024-07-07").json()
    assert body["s"] == "no_data" and body["candles"] == []
    sim.set_faults(no_data_style="absent")
    body = client.days("2024-07-06", "2024-07-07").json()
    assert body["s"] == "no_data" and "candles" not in body
    assert client.days("2017-06-01", "2017-06-30").json()["s"] == "no_data"  # before minute history


@pytest.mark.parametrize(
    "symbol", ["NSE:GONE-EQ", "NSE:UNKNOWN1-EQ", "BSE:DELISTEDCO-A", "SBIN", "nse:sbin-eq"]
)
def test_unknown_symbols_are_minus_300(client, symbol):
    r = client.days("2024-07-03", "2024-07-03", symbol=symbol)
    assert r.status_code == 400
    assert r.json() == {"s": "error", "code": -300, "message": "Invalid symbol provided"}


def test_unknown_symbol_status_knob(client, sim):
    sim.set_faults(invalid_symbol_status=200)
    r = client.days("2024-07-03", "2024-07-03", symbol="NSE:GONE-EQ")
    assert r.status_code == 200 and r.json()["code"] == -300


def test_futures_and_index_symbols_are_known(client):
    for symbol in ("NSE:NIFTY50-INDEX", "NSE:NIFTY20OCTFUT", "NSE:M&M-EQ"):
        assert client.days("2024-07-03", "2024-07-03", symbol=symbol).json()["s"] == "ok"


def test_range_limits(client):
    def err(r):
        assert r.status_code == 400 and r.json() == {"s": "error", "code": -50, "message": "Invalid input"}

    assert client.days("2024-03-27", "2024-07-04").json()["s"] == "ok"  # 100 whole days
    err(client.days("2024-03-26", "2024-07-04"))  # 101 days
    assert client.days("2023-07-05", "2024-07-04", resolution="D").json()["s"] == "ok"  # 366 days
    err(client.days("2023-07-04", "2024-07-04", resolution="D"))
    err(client.get(range_from=WED_OPEN + 60, range_to=WED_OPEN))  # backwards
    err(client.get(resolution="7", range_from=WED_OPEN, range_to=WED_OPEN + 60))
    err(client.get(range_from="yesterday", range_to=WED_OPEN))


def test_coarser_resolutions(client):
    counts = {
        res: len(client.days("2024-07-01", "2024-07-05", resolution=res).json()["candles"])
        for res in ("5", "15", "60", "D", "1D")
    }
    assert counts == {"5": 75 * 4, "15": 25 * 4, "60": 7 * 4, "D": 4, "1D": 4}  # Mon-Thu (Fri is future)
    daily = client.days("2024-07-03", "2024-07-03", resolution="D").json()["candles"]
    assert daily[0][0] == 1_719_964_800  # 00:00 UTC of the trading date


def test_current_minute_is_forming_and_the_future_absent(client, clock):
    clock.t = WED_OPEN + 30 * 60 + 20  # 09:45:20 IST on the Wednesday
    first = client.days("2024-07-03", "2024-07-03").json()["candles"]
    assert len(first) == 31 and first[-1][0] == WED_OPEN + 30 * 60
    clock.t += 30
    second = client.days("2024-07-03", "2024-07-03").json()["candles"]
    assert second[:30] == first[:30] and second[-1][0] == first[-1][0]
    assert second[-1][5] >= first[-1][5]
    clock.t = NOW
    final = client.days("2024-07-03", "2024-07-03").json()["candles"]
    assert final[:30] == first[:30]


def test_a_storm_of_some_seconds_begins_at_the_next_history_request_however_late(client, sim, clock):
    sim.set_faults(rate_limit_storm_s=5)
    clock.t += 100  # the caller takes its time: the storm has not begun

    first = client.days("2024-07-03", "2024-07-03")
    clock.t += 4
    second = client.days("2024-07-03", "2024-07-03")
    clock.t += 1.5
    after = client.days("2024-07-03", "2024-07-03")

    assert (first.status_code, first.headers["X-Retry-After-Ms"], first.json()["code"]) == (429, "5000", -429)
    assert (second.status_code, second.headers["Retry-After"]) == (429, "1")
    assert after.status_code == 200 and after.json()["s"] == "ok"
    knobs = sim.set_faults()
    assert knobs["rate_limit_storm_until"] == NOW + 100 + 5 and knobs["rate_limit_storm_s"] == 0


@pytest.mark.parametrize("value", [-1, True, float("inf"), "5"])
def test_a_storm_length_that_is_not_a_number_of_seconds_is_refused(sim, value):
    with pytest.raises(ValueError, match="rate_limit_storm_s must be a number >= 0"):
        sim.set_faults(rate_limit_storm_s=value)


def test_per_symbol_knobs_answer_short_like_real_history_does(client, sim, clock):
    whole = client.days("2024-07-02", "2024-07-03").json()["candles"]
    assert len(whole) == 750
    sim.set_faults(
        no_data_symbols=["NSE:SBIN-EQ"],
        cut_at={"NSE:TCS-EQ": "13:59"},
        publish_lag_s={"NSE:INFY-EQ": 180},
        listed_on={"NSE:RELIANCE-EQ": "2024-07-03"},
    )

    assert client.days("2024-07-02", "2024-07-03").json() == {"s": "no_data", "code": 200, "message": "", "candles": []}
    cut = client.days("2024-07-02", "2024-07-03", symbol="NSE:TCS-EQ").json()["candles"]
    assert len(cut) == 2 * (13 * 60 + 59 - (9 * 60 + 15))  # 09:15..13:58 of each day
    assert dt.datetime.fromtimestamp(cut[-1][0], IST).strftime("%H:%M") == "13:58"
    listed = client.days("2024-07-02", "2024-07-03", symbol="NSE:RELIANCE-EQ").json()["candles"]
    assert len(listed) == 375 and dt.datetime.fromtimestamp(listed[0][0], IST).date() == dt.date(2024, 7, 3)

    clock.t = WED_OPEN + 30 * 60 + 20  # 09:45:20 IST: the lagged symbol has published through 09:41 (closed 09:42)
    lagged = client.days("2024-07-03", "2024-07-03", symbol="NSE:INFY-EQ").json()["candles"]
    on_time = client.days("2024-07-03", "2024-07-03", symbol="NSE:HDFCBANK-EQ").json()["candles"]
    assert (len(lagged), len(on_time)) == (27, 31)  # on time: 09:15..09:44 and the forming 09:45
    assert dt.datetime.fromtimestamp(lagged[-1][0], IST).strftime("%H:%M") == "09:41"
    clock.t = NOW
    assert len(client.days("2024-07-03", "2024-07-03", symbol="NSE:INFY-EQ").json()["candles"]) == 375

    sim.set_faults(no_data_symbols=[], cut_at={}, publish_lag_s={}, listed_on={})
    assert client.days("2024-07-02", "2024-07-03").json()["candles"] == whole


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        ({"cut_at": {"NSE:TCS-EQ": "1359"}}, "cut_at\\['NSE:TCS-EQ'\\] must be \"HH:MM\" \\(IST\\), not '1359'"),
        ({"cut_at": {"NSE:TCS-EQ": "25:00"}}, "cut_at"),
        ({"publish_lag_s": {"NSE:TCS-EQ": -1}}, "publish_lag_s\\['NSE:TCS-EQ'\\] must be a number of seconds >= 0"),
        ({"listed_on": {"NSE:TCS-EQ": "2024-02-30"}}, "listed_on\\['NSE:TCS-EQ'\\] must be \"YYYY-MM-DD\""),
        ({"listed_on": ["NSE:TCS-EQ"]}, "listed_on must be an object of symbol"),
        ({"no_data_symbols": "NSE:TCS-EQ"}, "no_data_symbols must be a list of symbols"),
    ],
)
def test_a_per_symbol_knob_that_makes_no_sense_is_refused_naming_it(sim, knobs, message):
    with pytest.raises(ValueError, match=message):
        sim.set_faults(**knobs)


def test_with_oi_flag_futures_options_and_mcx_answer_open_interest_as_a_7th_value(client):
    plain = client.days("2024-07-03", "2024-07-03", symbol="NSE:NIFTY26DECFUT").json()["candles"]
    with_oi = client.days("2024-07-03", "2024-07-03", symbol="NSE:NIFTY26DECFUT", oi_flag="1").json()["candles"]
    assert [c[:6] for c in with_oi] == plain and {len(c) for c in plain} == {6}
    assert {len(c) for c in with_oi} == {7} and all(isinstance(c[6], int) and c[6] > 0 for c in with_oi)
    assert len({c[6] for c in with_oi}) > 1  # it moves during the day
    for symbol in ("MCX:GOLD20DECFUT", "NSE:NIFTY20OCT11000CE"):
        answer = client.days("2024-07-03", "2024-07-03", symbol=symbol, oi_flag="1").json()
        assert {len(c) for c in answer["candles"]} == {7}, symbol
    cash = client.days("2024-07-03", "2024-07-03", symbol="NSE:SBIN-EQ", oi_flag="1").json()["candles"]
    assert {len(c) for c in cash} == {6}  # no open interest for cash


def test_each_known_fyers_data_defect_can_be_served_for_a_symbol(client, sim):
    clean = client.days("2024-07-03", "2024-07-03").json()["candles"]
    sim.set_faults(defects={"NSE:SBIN-EQ": ["high_below_open", "volume_sentinel", "non_positive_price"]})
    bad = client.days("2024-07-03", "2024-07-03").json()["candles"]
    assert bad[10][2] < bad[10][1]  # high below open
    assert bad[20][5] == 429_496_726_000  # the volume sentinel
    assert bad[30][3] == 0  # a non-positive price
    assert [c for i, c in enumerate(bad) if i not in (10, 20, 30)] == [c for i, c in enumerate(clean)
                                                                        if i not in (10, 20, 30)]
    assert client.days("2024-07-03", "2024-07-03", symbol="NSE:INFY-EQ").json()["s"] == "ok"  # others untouched

    sim.set_faults(defects={"NSE:SBIN-EQ": ["double_volume"]})
    doubled = client.days("2024-07-03", "2024-07-03").json()["candles"]
    assert [c[5] for c in doubled] == [2 * c[5] for c in clean]


def test_a_muhurat_session_can_be_served_stamped_15_minutes_late(client, sim):
    diwali = client.days("2023-11-12", "2023-11-12").json()["candles"]  # Muhurat 18:15-19:15 IST only
    sim.set_faults(defects={"NSE:SBIN-EQ": ["muhurat_late"]})
    late = client.days("2023-11-12", "2023-11-12").json()["candles"]
    assert len(diwali) == len(late) == 60 and [c[0] - 900 for c in late] == [c[0] for c in diwali]
    stamp = dt.datetime.fromtimestamp(late[-1][0], IST).strftime("%H:%M")
    assert stamp == "19:29"  # past the session's close: how Fyers served Muhurat hours
    assert client.days("2024-07-03", "2024-07-03").json()["candles"][0][0] == WED_OPEN  # regular days untouched


def test_a_defect_knob_names_the_kinds_it_takes(sim):
    with pytest.raises(ValueError, match="defects\\['NSE:SBIN-EQ'\\] must be a list of high_below_open"):
        sim.set_faults(defects={"NSE:SBIN-EQ": ["typo"]})
