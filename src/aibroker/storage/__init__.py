"""Blob storage: the local filesystem by default, S3-compatible object storage for scale-out.
Audio and uploaded files live here, never in Redis (Redis holds counters and leases that
must be fast and small; a recording is large, long-lived and needs no atomic counters)."""

from __future__ import annotations

from functools import lru_cache

from aibroker.config import get_settings
from aibroker.storage.base import BlobNotFound, BlobStore, StorageUnavailable, StoredBlob

__all__ = ["BlobNotFound", "BlobStore", "StorageUnavailable", "StoredBlob", "get_blob_store", "reset_blob_store"]


@lru_cache
def get_blob_store() -> BlobStore:
    """The process's store, from AIBROKER_STORAGE_BACKEND (`local` or `s3`)."""
    settings = get_settings().storage
    if settings.storage_backend == "s3":
        from aibroker.storage.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    from aibroker.storage.local import LocalBlobStore

    return LocalBlobStore(settings.storage_dir)


def reset_blob_store() -> None:
    """Forget the cached store (tests and settings reloads)."""
    get_blob_store.cache_clear()
