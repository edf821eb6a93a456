"""A sorted index of each bucket's key names, so a prefixed LIST reads the keys under the prefix only.

moto answers ``ListObjects(V2)`` with a prefix by copying the whole bucket's key store and testing every key:
~190 ms a request at 150,000 keys on this machine (S3 answers in tens of milliseconds whatever the bucket's
size), which made a 5,000-symbol-day local job spend most of its time listing. Same answers, in a time that
grows with the keys under the prefix. The index lives on moto's key store itself and follows every change
made through the store's methods; a size mismatch (a change made some other way) rebuilds it.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.s3 import models as s3_models
from moto.s3.utils import _VersionedKeyStore
from sortedcontainers import SortedList

_lock = threading.RLock()
_HIGHEST = "\U0010ffff"


def _index(store: _VersionedKeyStore) -> SortedList:
    index = store.__dict__.get("_pricefeed_names")
    if index is None or len(index) != dict.__len__(store):
        index = SortedList(dict.keys(store))
        store.__dict__["_pricefeed_names"] = index
    return index


def _noting(original, *, adds: bool):
    def method(self: _VersionedKeyStore, key: str, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            existed = dict.__contains__(self, key)
            answer = original(self, key, *args, **kwargs)
            index = self.__dict__.get("_pricefeed_names")
            if index is not None:
                if adds and not existed and dict.__contains__(self, key):
                    index.add(key)
                elif not adds and existed and not dict.__contains__(self, key):
                    index.remove(key)
            return answer

    method.__wrapped__ = original
    return method


def _prefixed(store: _VersionedKeyStore, prefix: str) -> list[tuple[str, Any]]:
    """(name, newest version) of every key under ``prefix``, as moto's ``items()`` would give them."""
    with _lock:
        names = list(_index(store).irange(prefix, prefix + _HIGHEST))
    found = []
    for name in names:
        versions = store.getlist(name)
        if versions:
            found.append((name, versions[-1]))
    return found


def _list_objects(original):
    def list_objects(self, bucket: Any, prefix: str | None, delimiter: str | None, marker: str | None,
                     max_keys: int | None):
        if not prefix or not isinstance(bucket.keys, _VersionedKeyStore) or type(bucket) is not s3_models.FakeBucket:
            return original(self, bucket, prefix, delimiter, marker, max_keys)
        key_results, folder_results = set(), set()
        for key_name, key in _prefixed(bucket.keys, prefix):  # moto's loop, over the prefix's keys only
            rest = key_name[len(prefix):]
            if delimiter and delimiter in rest:
                folder_results.add(f"{prefix}{rest.split(delimiter)[0]}{delimiter}")
            else:
                key_results.add(key)
        keys = sorted((k for k in key_results if not isinstance(k, s3_models.FakeDeleteMarker)), key=lambda k: k.name)
        folders = sorted(folder_results)
        if marker:
            keys = self._get_results_from_token(keys, self._pagination_tokens.get(marker) or marker)
        if max_keys is not None:
            keys, is_truncated, next_marker = self._truncate_result(keys, max_keys)
        else:
            is_truncated, next_marker = False, None
        return keys, folders, is_truncated, next_marker

    list_objects.__wrapped__ = original
    return list_objects


def install() -> None:
    """Idempotent."""
    if hasattr(s3_models.S3Backend.list_objects, "__wrapped__"):
        return
    _VersionedKeyStore.__setitem__ = _noting(_VersionedKeyStore.__setitem__, adds=True)
    _VersionedKeyStore.setlist = _noting(_VersionedKeyStore.setlist, adds=True)
    _VersionedKeyStore.pop = _noting(_VersionedKeyStore.pop, adds=False)
    _VersionedKeyStore.__delitem__ = _noting(dict.__delitem__, adds=False)
    s3_models.S3Backend.list_objects = _list_objects(s3_models.S3Backend.list_objects)
