"""pricefeed: Fyers 1-minute OHLCV history → raw JSON in S3 → Parquet bars with Athena partitions."""

__version__ = "0.1.0"
