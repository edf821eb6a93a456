"""Request limits AWS enforces and moto does not, so a call that AWS would refuse fails here too.

Glue's catalog batch calls take at most so many entries (AWS answers ``InvalidInputException``; moto takes any
number): BatchCreatePartition and BatchUpdatePartition 100, BatchGetPartition 1,000, BatchDeletePartition 25
("AWS Glue API" reference, each action's request syntax). S3's 1,024-byte key limit sits with the other PutObject
checks in the package's ``__init__``; Step Functions' history limit in ``history``; the 256 KiB state payload is
moto's own (``quotas.is_within_size_quota`` after every state).
"""

from __future__ import annotations

from typing import Any

from moto.glue import models as glue_models
from moto.glue.exceptions import InvalidInputException

from pricefeed.local.motopatch.wrapping import wrap_once

#: backend method -> (the request field it takes, AWS's maximum entries)
GLUE_BATCH_LIMITS = {
    "batch_create_partition": ("PartitionInputList", 100),
    "batch_update_partition": ("Entries", 100),
    "batch_get_partition": ("PartitionsToGet", 1000),
    "batch_delete_partition": ("PartitionsToDelete", 25),
}


def _limited(original, field: str, limit: int):
    def call(self, database_name: str, table_name: str, entries: list[Any], *args: Any, **kwargs: Any):
        if entries is not None and len(entries) > limit:
            raise InvalidInputException(
                original.__name__,
                f"1 validation error detected: Value at '{field[0].lower()}{field[1:]}' failed to satisfy "
                f"constraint: Member must have length less than or equal to {limit}",
            )
        return original(self, database_name, table_name, entries, *args, **kwargs)

    call.__wrapped__ = original
    return call


def install() -> None:
    """Wrap each limited Glue call once (idempotent)."""
    for name, (field, limit) in GLUE_BATCH_LIMITS.items():
        wrap_once(glue_models.GlueBackend, name, lambda method, f=field, n=limit: _limited(method, f, n))
