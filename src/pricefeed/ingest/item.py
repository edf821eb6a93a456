"""One Map item of the ingest: a symbol and the IST dates of its run, as the state machine's ItemSelector sends it
(``statemachine/ingest_pipeline.asl.json``), checked field by field."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pricefeed.errors import InvalidInput, reject_unknown_fields
from pricefeed.istime import ISO_DATE, parse_date
from pricefeed.lake import paths
from pricefeed.symbol import Symbol

# What the Map's ItemSelector sends (statemachine/ingest_pipeline.asl.json), in that order.
_ITEM_ORDER = ("symbol", "from", "to", "incremental", "ingested_prefix", "run_id", "attempt")


@dataclass(frozen=True)
class IngestRequest:
    """One Map item: a symbol and the IST dates of the run (what the ASL's ItemSelector sends)."""

    symbol: Symbol
    from_date: date
    to_date: date
    incremental: bool = False
    run_id: str = ""
    attempt: int = 0
    ingested_prefix: str | None = None

    def log_keys(self) -> dict[str, str]:
        """What every log line of this item's ingest carries."""
        dates = {"from_date": self.from_date.isoformat(), "to_date": self.to_date.isoformat()}
        return {"symbol": str(self.symbol), **dates, "run_id": self.run_id}

    @property
    def trading_date(self) -> date:
        """The run's last IST date (what logs and dead letters name)."""
        return self.to_date

    @classmethod
    def parse(cls, event: object) -> IngestRequest:
        """``{"symbol", "from", "to", "incremental"?, "run_id"?, "attempt"?, "ingested_prefix"?}``.

        ``InvalidInput`` names the bad field, and any field the state machine does not send.
        """
        if not isinstance(event, dict):
            raise InvalidInput(f"ingest item must be an object, got {type(event).__name__}")
        reject_unknown_fields(event, _ITEM_ORDER, "ingest item")
        if not isinstance(event.get("symbol"), str):
            raise InvalidInput("ingest item has no 'symbol' string")
        symbol = Symbol.parse(event["symbol"])
        first, last = _date_field(event, "from"), _date_field(event, "to")
        if first > last:
            raise InvalidInput(f"ingest item 'from' ({first}) is after 'to' ({last})")
        incremental = _optional(event, "incremental", bool, False)
        run_id = _optional(event, "run_id", str, "")
        attempt = _optional(event, "attempt", int, 0)
        if attempt < 0:
            raise InvalidInput(f"ingest item 'attempt' must be a non-negative integer, got {attempt}")
        prefix = _optional(event, "ingested_prefix", str, "") or None
        if prefix is not None:
            paths.check_prefix(prefix, name="ingest item 'ingested_prefix'")
        return cls(symbol, first, last, incremental, run_id, attempt, prefix)


def _date_field(event: dict, name: str) -> date:
    value = event.get(name)
    if isinstance(value, str) and not ISO_DATE.fullmatch(value):
        raise InvalidInput(f"ingest item '{name}' must be a YYYY-MM-DD string, got {value[:40]!r}")
    return parse_date(value, what=f"ingest item '{name}'")


def _optional(event: dict, name: str, kind: type, default):
    value = event.get(name)
    if value is None:
        return default
    if type(value) is not kind:  # type(): a bool is not an attempt number, 0/1 is not a bool
        raise InvalidInput(f"ingest item '{name}' must be a {kind.__name__}, got {type(value).__name__}")
    return value
