"""The blob store files live in: the one for the app's own storage settings (the storage
package builds it once per settings object, local or S3)."""

from __future__ import annotations

from typing import Any

from aibroker.storage import BlobStore, blob_store_for


def blob_store(services: Any) -> BlobStore:
    return blob_store_for(services.settings.storage)
