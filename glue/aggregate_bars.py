"""Glue entry script: read the job arguments, then run ``pricefeed.aggregate.arguments`` (no logic here).

Arguments: --raw_bucket --processed_bucket --symbols_key (JSON document {"symbols": [...], "dates"?: [...]}
in the raw bucket) --result_key, and --ingested_prefix (the run's ingest manifests: aggregate exactly
the symbol-days they name) and/or the dates: --dates (YYYY-MM-DD,...) or --from/--to (default: IST today).
--executor spark|threads: where the symbol-days run (default: spark on Glue, threads elsewhere; the
local stack uses threads, a test runs local Spark). Glue's own extras (--JOB_NAME, ...) are ignored.
"""

import logging
import sys

import boto3

from pricefeed.aggregate.arguments import job_arguments, run_from_job_arguments, spark_context

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    arguments, on_glue = job_arguments(sys.argv)
    run_from_job_arguments(arguments, s3=boto3.client("s3"), spark_context=spark_context(arguments, on_glue))
