"""The CloudWatch metrics pricefeed's handlers emit (Powertools EMF, namespace ``pricefeed``, dimension
``service`` = the function's POWERTOOLS_SERVICE_NAME). template.yaml's alarms and dashboard name these;
tests check that every metric the dashboard plots is one of them.
"""

NAMESPACE = "pricefeed"

FYERS_REQUESTS = "FyersRequests"  # ingest_symbol: /data/history requests answered (one raw envelope each)
CANDLES_FETCHED = "CandlesFetched"  # ingest_symbol: 1-minute candles in those answers
RATE_LIMITED = "RateLimited"  # ingest_symbol: attempts that ended on Fyers' HTTP 429 (RateLimited)
INGEST_FAILURES = "IngestFailures"  # ingest_symbol: attempts that ended on any other pricefeed error
TOKEN_REFRESHES = "TokenRefreshes"  # noqa: S105 - a metric name; refresh_tokens: access tokens renewed by the morning schedule
DEAD_LETTERS = "DeadLetters"  # record_failure: symbols that failed for good; plan_run: unknown symbols
BARS_STORED = "BarsStored"  # repair_partitions: bars the run wrote, one metric per `timeframe` dimension
MISSING_MINUTES = "MissingMinutes"  # repair_partitions: session minutes the run's symbol-days lack
SYMBOL_DAYS_WITH_GAPS = "SymbolDaysWithGaps"  # repair_partitions: symbol-days not complete
PAUSED_FOR_LOGIN = "PausedForLogin"  # ingest_symbol: symbols paused until the next Fyers login (never failed)
LOGIN_WAITS = "LoginWaits"  # login_gate: runs that found no usable Fyers login and began to wait for one
REFRESH_TOKEN_DAYS_LEFT = "RefreshTokenDaysLeft"  # noqa: S105 - a metric name; refresh_tokens: days until only a person can log in again

EMITTED = frozenset(
    {
        FYERS_REQUESTS,
        CANDLES_FETCHED,
        RATE_LIMITED,
        INGEST_FAILURES,
        TOKEN_REFRESHES,
        DEAD_LETTERS,
        BARS_STORED,
        MISSING_MINUTES,
        SYMBOL_DAYS_WITH_GAPS,
        REFRESH_TOKEN_DAYS_LEFT,
        PAUSED_FOR_LOGIN,
        LOGIN_WAITS,
    }
)
