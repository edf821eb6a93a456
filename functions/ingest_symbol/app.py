"""IngestSymbol: one Map item → one symbol's requested minutes of raw Fyers candles in S3.
Logic: pricefeed.ingest.worker (rate budget, token keeper) and pricefeed.ingest.symbol_range."""

import time

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.config import Settings
from pricefeed.errors import PricefeedError, RateLimited
from pricefeed.ingest.symbol_range import IngestRequest
from pricefeed.ingest.worker import REQUIRED_SETTINGS, ingest_from_fyers
from pricefeed.metric_names import CANDLES_FETCHED, FYERS_REQUESTS, INGEST_FAILURES, NAMESPACE, RATE_LIMITED

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    settings = Settings.from_env().require(*REQUIRED_SETTINGS)
    request = IngestRequest.parse(event)
    tracer.put_annotation(key="symbol", value=request.symbol)
    logger.append_keys(symbol=request.symbol, from_date=str(request.from_date), to_date=str(request.to_date),
                       run_id=request.run_id)
    started, attempt = time.monotonic(), request.attempt + 1
    try:
        result = ingest_from_fyers(request, settings)
    except PricefeedError as exc:  # a 429 even after the client's own retries, or any other named failure
        metrics.add_metric(name=RATE_LIMITED if isinstance(exc, RateLimited) else INGEST_FAILURES,
                           unit=MetricUnit.Count, value=1)
        exc.args = (f"attempt {attempt}: {exc}",)  # the Catch sees only the error: the dead letter reads it
        logger.warning("ingest failed", extra={"error_type": type(exc).__name__, "attempt": attempt})
        raise
    metrics.add_metric(name=FYERS_REQUESTS, unit=MetricUnit.Count, value=result["requests"])
    metrics.add_metric(name=CANDLES_FETCHED, unit=MetricUnit.Count, value=result["candles"])
    logger.info("ingested", extra={**result, "elapsed_ms": round((time.monotonic() - started) * 1000)})
    return result
