"""Blob storage: the local filesystem by default, S3-compatible object storage for scale-out.
Audio and uploaded files live here, never in Redis (Redis holds counters and leases that
must be fast and small; a recording is large, long-lived and needs no atomic counters)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aibroker.config import get_settings
from aibroker.storage.base import BlobNotFound, BlobStore, StorageUnavailable, StoredBlob

__all__ = ["BlobNotFound", "BlobStore", "StorageUnavailable", "StoredBlob", "blob_store_for", "get_blob_store",
           "reset_blob_store"]

_stores: dict[int, tuple[Any, BlobStore]] = {}


def blob_store_for(settings: Any) -> BlobStore:
    """The store for these StorageSettings (an app's own settings: tests run several apps in
    one process), built once per settings object."""
    found = _stores.get(id(settings))
    if found is None or found[0] is not settings:
        found = (settings, _build(settings))
        _stores[id(settings)] = found
    return found[1]


@lru_cache
def get_blob_store() -> BlobStore:
    """The process's store, from AIBROKER_STORAGE_BACKEND (`local` or `s3`)."""
    return blob_store_for(get_settings().storage)


def _build(settings: Any) -> BlobStore:
    if settings.storage_backend == "s3":
        from aibroker.storage.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    from aibroker.storage.local import LocalBlobStore

    return LocalBlobStore(settings.storage_dir)


def reset_blob_store() -> None:
    """Forget the cached stores (tests and settings reloads)."""
    get_blob_store.cache_clear()
    _stores.clear()
