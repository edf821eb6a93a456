"""Emulator overhead no AWS service has (the package docstring, item 6); also for tests' in-process ``mock_aws``.

The S3 listing index is its own module (``s3_index``)."""

from __future__ import annotations

import functools
import importlib
import threading

from moto import backends as moto_backends
from moto.core.base_backend import BackendDict
from moto.moto_server.werkzeug_app import MotoRequestHandler
from moto.s3 import models as s3_models
from moto.stepfunctions.parser.asl.component.common.path import result_path as sfn_result_path
from moto.stepfunctions.parser.asl.utils import json_path as sfn_json_path

from pricefeed.local.motopatch import s3_index

_applied = threading.Lock()


def speed_up() -> None:
    """Remove moto's per-request overheads (docstring, item 6). Idempotent."""
    with _applied:
        if getattr(speed_up, "done", False):
            return
        MotoRequestHandler.disable_nagle_algorithm = True  # socketserver sets TCP_NODELAY per connection
        services = tuple(moto_backends.list_of_moto_modules())  # the installed package does not change
        moto_backends.list_of_moto_modules = lambda: services
        s3_models.S3Backend._url_module = property(lambda self: importlib.import_module("moto.s3.urls"))
        create = BackendDict._create_account_specific_backend

        def known_or_create(self: BackendDict, account_id: str) -> None:
            if dict.__contains__(self, account_id) and any(d is self for d in BackendDict._instances):
                return  # what moto's own check concludes, without comparing every registered dict by value
            create(self, account_id)

        BackendDict._create_account_specific_backend = known_or_create
        s3_index.install()
        # The ASL interpreter parses every JSONPath on every evaluation with jsonpath-ng's yacc parser (~0.3 ms
        # each, half an idle loop's time); parsed paths are immutable, so one parse per distinct path will do.
        sfn_json_path.parse = functools.lru_cache(maxsize=4096)(sfn_json_path.parse)
        sfn_result_path.parse = functools.lru_cache(maxsize=4096)(sfn_result_path.parse)
        speed_up.done = True  # type: ignore[attr-defined]
