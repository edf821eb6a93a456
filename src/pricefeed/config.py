"""Settings: one typed object built from the environment when a handler starts (never at import).

Every environment variable the deployed functions read is named here, with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from pricefeed.errors import InvalidInput

DEFAULT_FYERS_API_BASE_URL = "https://api-t1.fyers.in"
DEFAULT_TICKER_LIST_KEY = "config/nse_tickers.csv"
DEFAULT_MAP_CONCURRENCY = 10
DEFAULT_SYMBOL_MASTER_URL = "https://public.fyers.in/sym_details"


@dataclass(frozen=True)
class Settings:
    raw_bucket: str = ""
    processed_bucket: str = ""
    fyers_api_base_url: str = DEFAULT_FYERS_API_BASE_URL
    app_config_secret_id: str = ""
    token_secret_id: str = ""
    ticker_list_key: str = DEFAULT_TICKER_LIST_KEY
    map_concurrency: int = DEFAULT_MAP_CONCURRENCY
    #: The most G.1X workers the plan gives one aggregation run (``pricefeed.ingest.job_size``).
    max_glue_workers: int = 50
    glue_database: str = ""
    glue_table: str = ""
    #: The coverage-ledger table (``pricefeed.aggregate.ledger``), registered next to the bars table.
    glue_coverage_table: str = ""
    #: The compacted tier's tables (``pricefeed.aggregate.compact``): every symbol's bars and ledger rows by month.
    glue_bars_monthly_table: str = ""
    glue_coverage_monthly_table: str = ""
    #: The DynamoDB table shared by every worker: rate budget, refresh lock, OAuth states, watermarks.
    state_table: str = ""
    fyers_symbol_master_url: str = DEFAULT_SYMBOL_MASTER_URL
    #: Fyers' account-wide limits (one budget per app across every caller).
    fyers_per_second: int = 10
    fyers_per_minute: int = 200
    fyers_per_day: int = 100_000
    token_alert_topic_arn: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw in (None, ""):
                continue
            if f.type == "int":
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise InvalidInput(f"environment variable {f.name.upper()} must be an integer") from None
            else:
                values[f.name] = raw.rstrip("/") if f.name.endswith("_url") else raw
        return cls(**values)

    def require(self, *names: str) -> Settings:
        """Fail early, naming the variable, when a handler needs a setting that is empty."""
        missing = [n.upper() for n in names if not getattr(self, n)]
        if missing:
            raise InvalidInput(f"environment variable(s) not set: {', '.join(missing)}")
        return self
