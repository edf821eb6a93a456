"""``GET /sym_details/<SEGMENT>.csv``: the simulator's symbol master, and the one universe it knows.

A symbol exists for the simulator exactly when it is listed here (minus ``SimulatorConfig.unknown_symbols``):
``/data/history`` answers -300 for anything else. Rows have Fyers' 21 columns in the documented order
(0 fytoken, 1 name, 2 instrument type, 3 lot, 4 tick, 5 ISIN, 6 session, 7 last update, 8 expiry,
9 ticker, 10 exchange code, 11 segment code, 12 scrip code, 13 underlying, 14 underlying scrip code,
15 strike, 16 option type, 17 underlying fytoken, 18-20 reserved), no header row; ``master_column_order``
reorders them (output column j = documented column ``order[j]``), as Fyers once did.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import TYPE_CHECKING

from aiohttp import web

from pricefeed.market_hours import COMMODITY_SEGMENTS, SEGMENTS, Hours, us_daylight_saving
from pricefeed.symbol import Symbol

from .timeutil import ist_date

if TYPE_CHECKING:
    from .state import SimState

COLUMNS = 21
SYNTHETIC_COUNT = 3000  # NSE:SIM0001-EQ … NSE:SIM3000-EQ, for benchmarks with hundreds of tickers
_EXCHANGE_CODE = {"NSE": 10, "MCX": 11, "BSE": 12}
_SEGMENT_CODE = {"CM": 10, "FO": 11, "CD": 12, "COM": 20}
# Column 6 as Fyers writes it (BSE's rows have been seen without the "|1815-1915" part); commodity closes by season.
_SESSION = {"NSE_CD": "0900-1700|1815-1915:", "BSE_FO": "0915-1530:"}

# Real NSE names: (ticker name, company, scrip token, ISIN); token/ISIN None → derived from the name.
_NSE_EQUITIES: tuple[tuple[str, str, int | None, str | None], ...] = (
    ("SBIN", "STATE BANK OF INDIA", 3045, "INE062A01020"),
    ("RELIANCE", "RELIANCE INDUSTRIES LTD", 2885, "INE002A01018"),
    ("INFY", "INFOSYS LIMITED", 1594, "INE009A01021"),
    ("TCS", "TATA CONSULTANCY SERV LT", 11536, "INE467B01029"),
    ("HDFCBANK", "HDFC BANK LTD", 1333, "INE040A01034"),
    ("ICICIBANK", "ICICI BANK LTD.", 4963, "INE090A01021"),
    ("M&M", "MAHINDRA & MAHINDRA LTD", 2031, "INE101A01026"),
    ("BAJAJ-AUTO", "BAJAJ AUTO LIMITED", 16669, "INE917I01010"),
    ("WIPRO", "WIPRO LTD", 3787, "INE075A01022"),
    ("ITC", "ITC LTD", 1660, "INE154A01025"),
    ("LT", "LARSEN & TOUBRO LTD.", None, None),
    ("AXISBANK", "AXIS BANK LIMITED", None, None),
    ("KOTAKBANK", "KOTAK MAHINDRA BANK LTD", None, None),
    ("HINDUNILVR", "HINDUSTAN UNILEVER LTD.", None, None),
    ("BHARTIARTL", "BHARTI AIRTEL LIMITED", None, None),
    ("ASIANPAINT", "ASIAN PAINTS LIMITED", None, None),
    ("MARUTI", "MARUTI SUZUKI INDIA LTD.", None, None),
    ("SUNPHARMA", "SUN PHARMACEUTICAL IND L", None, None),
    ("TITAN", "TITAN COMPANY LIMITED", None, None),
    ("ULTRACEMCO", "ULTRATECH CEMENT LIMITED", None, None),
    ("NESTLEIND", "NESTLE INDIA LIMITED", None, None),
    ("BAJFINANCE", "BAJAJ FINANCE LIMITED", None, None),
    ("BAJAJFINSV", "BAJAJ FINSERV LTD.", None, None),
    ("HCLTECH", "HCL TECHNOLOGIES LTD", None, None),
    ("TECHM", "TECH MAHINDRA LIMITED", None, None),
    ("POWERGRID", "POWER GRID CORP. LTD.", None, None),
    ("NTPC", "NTPC LTD", None, None),
    ("ONGC", "OIL AND NATURAL GAS CORP.", None, None),
    ("COALINDIA", "COAL INDIA LTD", None, None),
    ("TATASTEEL", "TATA STEEL LIMITED", None, None),
    ("JSWSTEEL", "JSW STEEL LIMITED", None, None),
    ("ADANIENT", "ADANI ENTERPRISES LIMITED", None, None),
    ("ADANIPORTS", "ADANI PORT & SEZ LTD", None, None),
    ("GRASIM", "GRASIM INDUSTRIES LTD", None, None),
    ("CIPLA", "CIPLA LTD", None, None),
    ("DRREDDY", "DR. REDDY'S LABORATORIES", None, None),
    ("EICHERMOT", "EICHER MOTORS LTD", None, None),
    ("HEROMOTOCO", "HERO MOTOCORP LIMITED", None, None),
    ("BRITANNIA", "BRITANNIA INDUSTRIES LTD", None, None),
    ("APOLLOHOSP", "APOLLO HOSPITALS ENTER. L", None, None),
    ("TATAMOTORS", "TATA MOTORS LIMITED", None, None),
    ("INDUSINDBK", "INDUSIND BANK LIMITED", None, None),
    ("BPCL", "BHARAT PETROLEUM CORP  LT", None, None),
    ("HINDALCO", "HINDALCO  INDUSTRIES  LTD", None, None),
    ("SBILIFE", "SBI LIFE INSURANCE CO LTD", None, None),
    ("HDFCLIFE", "HDFC LIFE INS CO LTD", None, None),
    ("TATACONSUM", "TATA CONSUMER PRODUCT LTD", None, None),
    ("J&KBANK", "THE JAMMU & KASHMIR BANK LIMITED", None, None),
    ("NAM-INDIA", "NIPPON LIFE IND ASSET MANAGEMENT, LTD", None, None),  # a name with a comma: quoted
)
_NSE_INDICES = ("NIFTY50", "NIFTYBANK", "FINNIFTY", "NIFTYIT", "INDIAVIX", "NIFTYNXT50", "NIFTYMIDCAP50")
# (segment, ticker, description, underlying, instrument type, lot, expiry epoch, strike, option type)
_CONTRACTS: tuple[tuple[str, str, str, str, int, int, int, float, str], ...] = (
    ("NSE_FO", "NSE:NIFTY20OCTFUT", "NIFTY 20 Oct 29 FUT", "NIFTY", 11, 75, 1603965600, -1.0, "XX"),
    ("NSE_FO", "NSE:NIFTY20OCT11000CE", "NIFTY 20 Oct 29 11000 CE", "NIFTY", 14, 75, 1603965600, 11000.0, "CE"),
    ("NSE_FO", "NSE:NIFTY20O0811000CE", "NIFTY 20 Oct 08 11000 CE", "NIFTY", 14, 75, 1602151200, 11000.0, "CE"),
    ("NSE_FO", "NSE:BANKNIFTY20OCTFUT", "BANKNIFTY 20 Oct 29 FUT", "BANKNIFTY", 11, 25, 1603965600, -1.0, "XX"),
    ("NSE_FO", "NSE:SBIN20OCTFUT", "SBIN 20 Oct 29 FUT", "SBIN", 13, 3000, 1603965600, -1.0, "XX"),
    ("NSE_FO", "NSE:NIFTY26DECFUT", "NIFTY 26 Dec 31 FUT", "NIFTY", 11, 75, 1798704000, -1.0, "XX"),
    ("NSE_CD", "NSE:USDINR20OCTFUT", "USDINR 20 Oct 28 FUT", "USDINR", 16, 1000, 1603879200, -1.0, "XX"),
    ("NSE_CD", "NSE:EURINR20OCTFUT", "EURINR 20 Oct 28 FUT", "EURINR", 16, 1000, 1603879200, -1.0, "XX"),
    ("NSE_COM", "NSE:GOLDGUINEA20OCTFUT", "GOLDGUINEA 20 Oct 30 FUT", "GOLDGUINEA", 30, 1, 1604052000, -1.0, "XX"),
    ("BSE_FO", "BSE:SENSEX20OCTFUT", "SENSEX 20 Oct 29 FUT", "SENSEX", 11, 10, 1603965600, -1.0, "XX"),
    ("MCX_COM", "MCX:CRUDEOIL20OCTFUT", "CRUDEOIL 20 Oct 19 FUT", "CRUDEOIL", 30, 100, 1603130400, -1.0, "XX"),
    ("MCX_COM", "MCX:GOLD20DECFUT", "GOLD 20 Dec 04 FUT", "GOLD", 30, 1, 1607104800, -1.0, "XX"),
    ("MCX_COM", "MCX:SILVER20DECFUT", "SILVER 20 Dec 04 FUT", "SILVER", 30, 30, 1607104800, -1.0, "XX"),
    # contracts still live in 2026-12: the others have expired, and Fyers serves no history for those
    ("NSE_CD", "NSE:USDINR26DECFUT", "USDINR 26 Dec 29 FUT", "USDINR", 16, 1000, 1798538400, -1.0, "XX"),
    ("MCX_COM", "MCX:CRUDEOIL26DECFUT", "CRUDEOIL 26 Dec 18 FUT", "CRUDEOIL", 30, 100, 1797588000, -1.0, "XX"),
    ("MCX_COM", "MCX:GOLD27FEBFUT", "GOLD 27 Feb 05 FUT", "GOLD", 30, 1, 1801821600, -1.0, "XX"),
)


@dataclass(frozen=True)
class Listing:
    """One master row's facts (the documented columns are derived from these)."""

    segment: str
    ticker: str
    name: str
    underlying: str
    token: int
    isin: str = ""
    instrument: int = 0
    lot: int = 1
    expiry: str = ""
    strike: float = -1.0
    option: str = "XX"


def _token(text: str) -> int:
    return 20_000 + int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % 80_000


def _equity(segment: str, ticker: str, name: str, underlying: str, token: int | None, isin: str | None) -> Listing:
    token = token if token is not None else _token(ticker)
    isin = isin or f"INE{token % 1000:03d}S01{token % 1000:03d}"
    return Listing(segment, ticker, name, underlying, token, isin)


@cache
def listings() -> dict[str, Listing]:
    """Every listed ticker → its row facts (built once)."""
    rows: list[Listing] = []
    for name, company, token, isin in _NSE_EQUITIES:
        rows.append(_equity("NSE_CM", f"NSE:{name}-EQ", company, name, token, isin))
    for name in _NSE_INDICES:
        rows.append(Listing("NSE_CM", f"NSE:{name}-INDEX", name, name, _token(name), instrument=10))
    for i in range(1, SYNTHETIC_COUNT + 1):
        name = f"SIM{i:04d}"
        rows.append(_equity("NSE_CM", f"NSE:{name}-EQ", f"SIMULATED COMPANY {i:04d} LTD", name, 900_000 + i, None))
    for name, company in (("SBIN", "STATE BANK OF INDIA"), ("RELIANCE", "RELIANCE INDUSTRIES LTD.")):
        rows.append(_equity("BSE_CM", f"BSE:{name}-A", company, name, None, None))
    rows.append(Listing("BSE_CM", "BSE:SENSEX-INDEX", "SENSEX", "SENSEX", _token("BSE:SENSEX"), instrument=10))
    for segment, ticker, text, underlying, kind, lot, expiry, strike, option in _CONTRACTS:
        token = _token(ticker)
        rows.append(Listing(segment, ticker, text, underlying, token, "", kind, lot, str(expiry), strike, option))
    return {row.ticker: row for row in rows}


def universe(unknown: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every ticker the simulator knows: the master's, minus ``unknown``."""
    return frozenset(listings()) - unknown


def is_listed(symbol: str | None, unknown: frozenset[str] = frozenset()) -> bool:
    return symbol is not None and symbol in listings() and symbol not in unknown


def _fytoken(segment: str, token: int) -> str:
    exchange, _, kind = segment.partition("_")
    return f"{_EXCHANGE_CODE[exchange]}{_SEGMENT_CODE[kind]}{token:010d}"


def session_column(segment: str, day: date) -> str:
    """The session column of ``segment``'s rows in the master of IST ``day``: commodities close at 23:30 while US
    daylight saving time is in force and at 23:55 outside it, and the master says the close of its own day."""
    if segment in COMMODITY_SEGMENTS:
        return f"0900-{'2330' if us_daylight_saving(day) else '2355'}|1815-1915:"
    return _SESSION.get(segment, "0915-1530|1815-1915:")


def hours_of(symbol: str, day: date) -> Hours:
    """The sessions the simulator trades ``symbol`` in on ``day``: its master row's, read as the pipeline reads them."""
    row = listings().get(symbol)
    try:
        parsed = Symbol.parse(symbol)
    except ValueError:
        parsed = Symbol("NSE", "UNKNOWN")
    return Hours.of(parsed, row.segment, session_column(row.segment, day)) if row else Hours.of(parsed)


def documented_row(row: Listing, last_update: str) -> list[str]:
    """The 21 columns of ``row`` in the documented order."""
    exchange, _, kind = row.segment.partition("_")
    fytoken = _fytoken(row.segment, row.token)
    under_token = listings().get(f"NSE:{row.underlying}-EQ")
    under_code = under_token.token if under_token else row.token
    tick = "0.0025" if row.segment == "NSE_CD" else "0.05"
    return [
        fytoken, row.name, str(row.instrument), str(row.lot), tick, row.isin,
        session_column(row.segment, date.fromisoformat(last_update)), last_update, row.expiry, row.ticker,
        str(_EXCHANGE_CODE[exchange]), str(_SEGMENT_CODE[kind]), str(row.token), row.underlying, str(under_code),
        f"{row.strike:.1f}", row.option, _fytoken(row.segment, under_code), "None", "None", "None",
    ]  # fmt: skip


def render(segment: str, *, unknown: frozenset[str], last_update: str, order: tuple[int, ...] | None) -> bytes:
    """The CSV file of ``segment``: no header, one row per listed ticker, ``\\n`` line ends."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in listings().values():
        if row.segment == segment and row.ticker not in unknown:
            cells = documented_row(row, last_update)
            writer.writerow([cells[i] for i in order] if order is not None else cells)
    return out.getvalue().encode()


def check_order(order: tuple[int, ...] | None) -> tuple[int, ...] | None:
    """``master_column_order`` as given, or ``ValueError`` if it names a column that does not exist."""
    if order is not None and (not order or any(not 0 <= i < COLUMNS for i in order)):
        raise ValueError(f"master_column_order must list documented column indexes 0-{COLUMNS - 1}")
    return order


def sym_details_handler(state: SimState):
    """The aiohttp handler serving ``state``'s master files (rendered once per segment and IST day)."""
    order = check_order(state.cfg.master_column_order)
    rendered: dict[tuple[str, str], bytes] = {}

    async def sym_details(request: web.Request) -> web.Response:
        name = request.match_info["file"]
        segment = name.removesuffix(".csv")
        if not name.endswith(".csv") or segment not in SEGMENTS:
            raise web.HTTPNotFound(text="Not Found")
        day = ist_date(state.now()).isoformat()
        body = rendered.get((segment, day))
        if body is None:
            body = rendered[(segment, day)] = render(
                segment, unknown=state.cfg.unknown_symbols, last_update=day, order=order
            )
        return web.Response(body=body, content_type="text/csv")

    return sym_details
