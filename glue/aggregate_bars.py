"""Glue entry script: read the job arguments, then run ``pricefeed.aggregate.arguments`` (no logic here).

Arguments: --raw_bucket --processed_bucket --symbols_key (JSON document {"symbols": [...], "dates"?: [...]}
in the raw bucket) --result_key, and --ingested_prefix (the run's ingest manifests: aggregate exactly
the symbol-days they name) and/or the dates: --dates (YYYY-MM-DD,...) or --from/--to (default: IST today).
--executor spark|threads: where the symbol-days run (default: spark on Glue, threads elsewhere; the
local stack uses threads, a test runs local Spark). Glue's own extras (--JOB_NAME, ...) are ignored.
"""

import argparse
import logging
import sys

import boto3

from pricefeed.aggregate.arguments import (
    JOB_ARGUMENTS,
    OPTIONAL_JOB_ARGUMENTS,
    REQUIRED_JOB_ARGUMENTS,
    run_from_job_arguments,
)
from pricefeed.errors import InvalidInput

EXECUTORS = ("spark", "threads")


def job_arguments(argv: list[str]) -> tuple[dict, bool]:
    """The job's arguments and whether this runs on Glue."""
    names = [*JOB_ARGUMENTS, "executor"]
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:  # running locally: no awsglue, same "--key value" pairs
        parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
        for name in names:
            parser.add_argument(f"--{name}")
        try:
            known, _glue_extras = parser.parse_known_args(argv[1:])
        except argparse.ArgumentError as exc:
            raise InvalidInput(f"job argument {exc.argument_name}: {exc.message}") from None
        return vars(known), False
    # getResolvedOptions fails on any name it is given that is absent: ask for optional ones only when passed.
    optional = [*OPTIONAL_JOB_ARGUMENTS, "executor"]
    present = [n for n in optional if any(a == f"--{n}" or a.startswith(f"--{n}=") for a in argv)]
    return getResolvedOptions(argv, [*REQUIRED_JOB_ARGUMENTS, *present]), True


def spark_context(args: dict, on_glue: bool):
    """A SparkContext when the symbol-days run on Spark, else None."""
    executor = args.get("executor") or ("spark" if on_glue else "threads")
    if executor not in EXECUTORS:
        raise InvalidInput(f"job argument --executor is {executor!r}, not one of {', '.join(EXECUTORS)}")
    if executor == "threads":
        return None
    from pricefeed.aggregate.spark import spark_context as context

    return context(on_glue=on_glue)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    arguments, glue = job_arguments(sys.argv)
    run_from_job_arguments(arguments, s3=boto3.client("s3"), spark_context=spark_context(arguments, glue))
