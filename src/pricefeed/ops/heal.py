"""What `pricefeed heal` finds and starts: the symbols whose settled state has open stretches (days a run jumped
over, answers' empty tails awaiting their second ask; :mod:`pricefeed.ingest.settled`), what asking them costs, and
the scheduled run that asks them.

A scheduled run already asks every open stretch of the tickers it runs; heal is for the ones the daily list no
longer holds, for seeing what is open, and for not waiting until the next schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pricefeed.errors import InvalidInput
from pricefeed.ingest.settled import Settled, Stretch, ranges_to_ask
from pricefeed.ingest.symbol_range import fewest_windows
from pricefeed.ingest.watermark import PK_PREFIX
from pricefeed.istime import IST, last_closed_minute_epoch, utcnow
from pricefeed.symbol import Symbol


@dataclass(frozen=True)
class Open:
    """One symbol's open stretches (those overlapping the dates asked for) and the requests a run would spend."""

    symbol: Symbol
    stretches: tuple[Stretch, ...]
    requests: int

    @property
    def first_day(self) -> date:
        return datetime.fromtimestamp(self.stretches[0].first, IST).date()

    @property
    def last_day(self) -> date:
        return datetime.fromtimestamp(self.stretches[-1].last, IST).date()

    @property
    def holes(self) -> int:
        return sum(1 for s in self.stretches if s.kind == "hole")


def find_open(
    dynamodb: Any, table: str, *, first: date | None = None, last: date | None = None, now: datetime | None = None
) -> list[Open]:
    """Every symbol with an open stretch overlapping IST dates ``first``..``last`` (default: any), by symbol.
    ``requests`` counts what a scheduled run would ask for it: its open stretches and its frontier to now."""
    if first and last and last < first:
        raise InvalidInput(f"--to {last} is before --from {first}")
    end = last_closed_minute_epoch(now or utcnow())
    found = []
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="begins_with(pk, :p) AND attribute_exists(#o) AND #o <> :none",
        ExpressionAttributeNames={"#o": "open"},
        ExpressionAttributeValues={":p": {"S": PK_PREFIX}, ":none": {"S": "[]"}},
        ConsistentRead=True,
    )
    for page in pages:
        for item in page.get("Items", []):
            state = Settled.from_item(int(item["covered_through"]["N"]), item["open"]["S"])
            wanted = tuple(s for s in state.open if _overlaps(s, first, last))
            if not wanted:
                continue
            asks = ranges_to_ask(state, start=end + 1, end=end)  # a stored state always has its frontier
            symbol = Symbol.parse(item["pk"]["S"].removeprefix(PK_PREFIX))
            found.append(Open(symbol, wanted, len(fewest_windows(asks))))
    return sorted(found, key=lambda o: str(o.symbol))


def _overlaps(stretch: Stretch, first: date | None, last: date | None) -> bool:
    start = datetime.fromtimestamp(stretch.first, IST).date()
    end = datetime.fromtimestamp(stretch.last, IST).date()
    return (first is None or end >= first) and (last is None or start <= last)


def heal_csv(found: list[Open]) -> str:
    """The ad-hoc ticker list of the run that asks them."""
    return "symbol\n" + "".join(f"{o.symbol}\n" for o in found)
