"""IngestSymbol: one Map item → one symbol's minutes of raw Fyers candles in S3. Logic: pricefeed.ingest."""

import time
from functools import cache

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from pricefeed.errors import PricefeedError, RateLimited
from pricefeed.ingest.dead_letters import with_attempt
from pricefeed.ingest.item import IngestRequest
from pricefeed.ingest.worker import IngestWorker
from pricefeed.metric_names import (
    CANDLES_FETCHED,
    FYERS_REQUESTS,
    INGEST_FAILURES,
    NAMESPACE,
    PAUSED_FOR_LOGIN,
    RATE_LIMITED,
)

logger, metrics, tracer = Logger(), Metrics(namespace=NAMESPACE), Tracer()
worker = cache(IngestWorker.from_env)  # one per container: the token cache outlives an invocation


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
def handler(event, context):
    request = IngestRequest.parse(event)
    tracer.put_annotation(key="symbol", value=str(request.symbol))
    logger.append_keys(**request.log_keys())
    started, attempt = time.monotonic(), request.attempt + 1
    try:
        ingest = worker()
        refused_before = ingest.budget.failed_writes  # conditional writes of the shared budget item refused meanwhile
        result = ingest.ingest(request)
    except PricefeedError as exc:  # a 429 even after the client's own retries, or any other named failure
        if isinstance(exc, RateLimited):
            metrics.add_metric(name=RATE_LIMITED, unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name=INGEST_FAILURES, unit=MetricUnit.Count, value=1)
        exc.args = (with_attempt(str(exc), attempt),)  # the Catch sees only the error: RecordFailure reads it
        logger.warning("ingest failed", extra={"error_type": type(exc).__name__, "attempt": attempt})
        raise
    if result.get("paused_for_login"):
        metrics.add_metric(name=PAUSED_FOR_LOGIN, unit=MetricUnit.Count, value=1)
        logger.warning("paused until the next Fyers login", extra={"attempt": attempt})
        return result
    metrics.add_metric(name=FYERS_REQUESTS, unit=MetricUnit.Count, value=result["requests"])
    metrics.add_metric(name=CANDLES_FETCHED, unit=MetricUnit.Count, value=result["candles"])
    elapsed_ms, refused = round((time.monotonic() - started) * 1000), ingest.budget.failed_writes - refused_before
    logger.info("ingested", extra={**result, "elapsed_ms": elapsed_ms, "budget_writes_refused": refused})
    return result
