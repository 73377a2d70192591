"""Blob storage behind one interface (DESIGN: storage/). Keys are organization-scoped paths
chosen by the caller (`<org_id>/<domain>/<id>/...`); bytes move as async chunk streams so a
large object is never whole in memory."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from aibroker.errors import BrokerError

# The size of the pieces a stored object is read back in.
READ_CHUNK_BYTES = 1024 * 1024


class StorageUnavailable(BrokerError):
    """The storage backend cannot be reached or refused the operation; nothing was kept."""

    status_code = 503
    error_type = "service_unavailable"

    def __init__(self, message: str = "the storage backend is unavailable") -> None:
        super().__init__(message, code="storage_unavailable", headers={"Retry-After": "5"})


class BlobNotFound(BrokerError):
    status_code = 404
    error_type = "not_found_error"

    def __init__(self, key: str) -> None:
        super().__init__("stored object not found", code="blob_not_found")
        self.key = key


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    """What every backend provides. A `put` is all-or-nothing: a reader never sees a
    half-written object, and a failed put leaves nothing under the key."""

    async def put(self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None) -> StoredBlob: ...

    async def compose(self, key: str, parts: list[str], *, content_type: str | None = None) -> StoredBlob:
        """Write `key` as the concatenation of the stored `parts`, streamed."""
        ...

    def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes of `key` from `start` to `end` (exclusive; None: to the end)."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size, or None when there is none under the key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing what is not there is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (a path ending in '/'); answers how many."""
        ...


def check_key(key: str) -> str:
    """Keys are relative paths of safe segments: no traversal, no absolute paths."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid storage key {key!r}")
    for part in parts:
        if not all(c.isalnum() or c in "-_.=" for c in part):
            raise ValueError(f"invalid storage key {key!r}")
    return key


async def as_chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        if data:
            yield bytes(data)
        return
    async for chunk in data:
        if chunk:
            yield chunk
