"""Glue entry script: read the job arguments, then run ``pricefeed.aggregate_job`` (no logic here).

Arguments: --raw_bucket --processed_bucket --symbols_key (JSON document {"symbols": [...], "dates"?: [...]}
in the raw bucket) --result_key, and --ingested_prefix (the run's ingest manifests: aggregate exactly
the symbol-days they name) and/or --dates (YYYY-MM-DD,...; required without --ingested_prefix).
Glue's own extras (--JOB_NAME, ...) are ignored.
"""

import argparse
import logging
import sys

import boto3

from pricefeed.aggregate_job import (
    JOB_ARGUMENTS,
    OPTIONAL_JOB_ARGUMENTS,
    REQUIRED_JOB_ARGUMENTS,
    run_from_job_arguments,
)
from pricefeed.errors import InvalidInput


def job_arguments(argv: list[str]) -> dict:
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:  # running locally: no awsglue, same "--key value" pairs
        parser = argparse.ArgumentParser(allow_abbrev=False, add_help=False, exit_on_error=False)
        for name in JOB_ARGUMENTS:
            parser.add_argument(f"--{name}")
        try:
            known, _glue_extras = parser.parse_known_args(argv[1:])
        except argparse.ArgumentError as exc:
            raise InvalidInput(f"job argument {exc.argument_name}: {exc.message}") from None
        return vars(known)
    # getResolvedOptions fails on any name it is given that is absent: ask for optional ones only when passed.
    present = [n for n in OPTIONAL_JOB_ARGUMENTS if any(a == f"--{n}" or a.startswith(f"--{n}=") for a in argv)]
    return getResolvedOptions(argv, [*REQUIRED_JOB_ARGUMENTS, *present])


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run_from_job_arguments(job_arguments(sys.argv), s3=boto3.client("s3"))
