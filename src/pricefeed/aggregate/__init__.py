"""The aggregation job (Glue) and the partition step: job arguments, raw reading, candle rules, bars,
the coverage ledger, the Spark runner, the catalog."""
