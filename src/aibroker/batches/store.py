"""The blob store files live in: the process's (`get_blob_store()`), or, for an app built
with settings of its own (tests, embedded use), a local store on those settings."""

from __future__ import annotations

from typing import Any

from aibroker.config import get_settings
from aibroker.storage import BlobStore, get_blob_store


def blob_store(services: Any) -> BlobStore:
    store = getattr(services, "batch_blob_store", None)
    if store is None:
        settings = services.settings.storage
        if settings.storage_backend == "local" and settings.storage_dir != get_settings().storage.storage_dir:
            from aibroker.storage.local import LocalBlobStore

            store = LocalBlobStore(settings.storage_dir)
        else:
            store = get_blob_store()
        services.batch_blob_store = store
    return store
