"""The embedded default: objects as files under one data directory. Writes go to a
temporary file in the same directory, fsynced, then renamed over the key, so a crash
never leaves a half-written object under a key."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

from aibroker.storage.base import READ_CHUNK_BYTES, BlobNotFound, StorageUnavailable, StoredBlob, as_chunks, check_key


class LocalBlobStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None) -> StoredBlob:
        target = self._path(key)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            handle = await asyncio.to_thread(open, tmp, "wb")
            try:
                async for chunk in as_chunks(data):
                    digest.update(chunk)
                    size += len(chunk)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(handle.flush)
                await asyncio.to_thread(os.fsync, handle.fileno())
            finally:
                await asyncio.to_thread(handle.close)
            await asyncio.to_thread(os.replace, tmp, target)
        except OSError as exc:
            await asyncio.to_thread(_unlink_quietly, tmp)
            raise StorageUnavailable(f"local storage write failed: {exc.strerror or exc}") from exc
        except BaseException:
            await asyncio.to_thread(_unlink_quietly, tmp)
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    async def compose(self, key: str, parts: list[str], *, content_type: str | None = None) -> StoredBlob:
        async def stream() -> AsyncIterator[bytes]:
            for part in parts:
                async for chunk in self.open(part):
                    yield chunk

        return await self.put(key, stream(), content_type=content_type)

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"local storage read failed: {exc.strerror or exc}") from exc
        try:
            await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else max(0, end - start)
            while remaining is None or remaining > 0:
                want = READ_CHUNK_BYTES if remaining is None else min(READ_CHUNK_BYTES, remaining)
                chunk = await asyncio.to_thread(handle.read, want)
                if not chunk:
                    break
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self._path(key))).st_size
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageUnavailable(f"local storage stat failed: {exc.strerror or exc}") from exc

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(_unlink_quietly, self._path(key))
        except OSError as exc:
            raise StorageUnavailable(f"local storage delete failed: {exc.strerror or exc}") from exc

    async def delete_prefix(self, prefix: str) -> int:
        directory = self._path(prefix.rstrip("/"))

        def remove() -> int:
            if not directory.is_dir():
                return 0
            count = sum(1 for p in directory.rglob("*") if p.is_file())
            shutil.rmtree(directory, ignore_errors=True)
            return count

        return await asyncio.to_thread(remove)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError):  # nothing is there (its directory is not one)
        pass
