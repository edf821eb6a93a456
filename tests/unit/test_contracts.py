"""Derivative contracts read from their Fyers symbols: expiry and open interest."""

from __future__ import annotations

from datetime import date

import pytest

from pricefeed.contracts import Contract, carries_open_interest, contract_of, expired
from pricefeed.symbol import Symbol


@pytest.mark.parametrize(("symbol", "contract"), [
    ("NSE:NIFTY20OCTFUT", Contract("NIFTY", date(2020, 10, 31), False)),
    ("NSE:NIFTY20OCT11000CE", Contract("NIFTY", date(2020, 10, 31), False)),
    ("NSE:NIFTY20O0811000CE", Contract("NIFTY", date(2020, 10, 8), True)),
    ("NSE:BANKNIFTY2510911000PE", Contract("BANKNIFTY", date(2025, 1, 9), True)),
    ("NSE:M&M20OCTFUT", Contract("M&M", date(2020, 10, 31), False)),
    ("NSE:USDINR26DEC82.5CE", Contract("USDINR", date(2026, 12, 31), False)),
    ("MCX:CRUDEOIL20OCTFUT", Contract("CRUDEOIL", date(2020, 10, 31), False)),
    ("BSE:SENSEX20OCTFUT", Contract("SENSEX", date(2020, 10, 31), False)),
    ("NSE:SBIN-EQ", None),
    ("NSE:NIFTY50-INDEX", None),
    ("BSE:SBIN-A", None),
])
def test_a_contracts_expiry_is_read_from_its_name(symbol, contract):
    assert contract_of(Symbol.parse(symbol)) == contract


@pytest.mark.parametrize(("symbol", "oi"), [
    ("NSE:NIFTY26DECFUT", True), ("NSE:NIFTY26DEC26000CE", True), ("MCX:GOLDM26DECFUT", True),
    ("NSE:SBIN-EQ", False), ("NSE:NIFTY50-INDEX", False), ("BSE:SBIN-A", False),
])
def test_futures_options_and_mcx_carry_open_interest_cash_does_not(symbol, oi):
    assert carries_open_interest(Symbol.parse(symbol)) is oi


def test_a_contract_is_expired_after_its_day_or_once_its_month_is_over():
    weekly, monthly = Symbol.parse("NSE:NIFTY26D0326000CE"), Symbol.parse("NSE:NIFTY26DECFUT")
    assert expired(weekly, date(2026, 12, 3)) is None  # its own day still trades
    assert "expired on 2026-12-03" in expired(weekly, date(2026, 12, 4))
    assert expired(monthly, date(2026, 12, 31)) is None  # the month's expiry day is not in the name
    assert "expired in Dec 2026" in expired(monthly, date(2027, 1, 1))
    assert expired(Symbol.parse("NSE:SBIN-EQ"), date(2030, 1, 1)) is None
