"""S3-compatible object storage (AWS S3, MinIO, Ceph, R2, moto ...) through aioboto3.

Puts stream: small objects go up in one PutObject; larger ones as a multipart upload of
PART_BYTES parts, completed only once every part is in (S3 makes the object visible
atomically at CompleteMultipartUpload) and aborted on any failure, so a failed put leaves
nothing under the key. `compose` streams the parts through the same multipart path: memory
stays one part, and the object's sha256 is computed on the way. Reads are ranged GETs."""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aibroker.storage.base import READ_CHUNK_BYTES, BlobNotFound, StorageUnavailable, StoredBlob, as_chunks, check_key

PART_BYTES = 8 * 1024 * 1024  # S3 wants >= 5 MiB for every part but the last
MISSING = {"404", "NoSuchKey", "NotFound"}


def _code(exc: ClientError) -> str:
    return str((exc.response.get("Error") or {}).get("Code") or "")


def _unavailable(exc: Exception, action: str) -> StorageUnavailable:
    detail = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
    return StorageUnavailable(f"S3 {action} failed ({detail})")


class S3BlobStore:
    def __init__(
        self, bucket: str, *, endpoint_url: str | None = None, region: str = "us-east-1",
        access_key_id: str | None = None, secret_access_key: str | None = None,
        part_bytes: int = PART_BYTES, connect_timeout: float = 5, read_timeout: float = 60, max_attempts: int = 3,
    ) -> None:
        if not bucket:
            raise ValueError("AIBROKER_S3_BUCKET is required for the s3 storage backend")
        self.bucket = bucket
        self.part_bytes = max(5 * 1024 * 1024, part_bytes)
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key, region_name=region,
        )
        self._client_kw: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "config": Config(connect_timeout=connect_timeout, read_timeout=read_timeout,
                             retries={"max_attempts": max_attempts, "mode": "standard"},
                             s3={"addressing_style": "path"}),
        }
        # One client per event loop (a client's connection pool belongs to its loop).
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any]] = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    @classmethod
    def from_settings(cls, settings: Any) -> S3BlobStore:
        return cls(
            settings.s3_bucket or "", endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
            access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key,
        )

    async def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is not None:
            return found[1]
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            found = self._clients.get(loop)
            if found is None:
                manager = self._session.client("s3", **self._client_kw)
                found = (manager, await manager.__aenter__())
                self._clients[loop] = found
        return found[1]

    async def aclose(self) -> None:
        """Close this loop's client (shutdown)."""
        found = self._clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].__aexit__(None, None, None)

    # -- writes -------------------------------------------------------------------------

    async def put(self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None) -> StoredBlob:
        check_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        digest, size = hashlib.sha256(), 0
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        client = await self._client()
        try:
            async for chunk in as_chunks(data):
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= self.part_bytes:
                    if upload_id is None:
                        started = await client.create_multipart_upload(Bucket=self.bucket, Key=key, **extra)
                        upload_id = started["UploadId"]
                    piece = bytes(buffer[: self.part_bytes])
                    del buffer[: self.part_bytes]
                    parts.append(await self._part(client, key, upload_id, len(parts) + 1, piece))
            if upload_id is None:
                await client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), **extra)
            else:
                if buffer:
                    parts.append(await self._part(client, key, upload_id, len(parts) + 1, bytes(buffer)))
                await client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
                upload_id = None
        except (ClientError, BotoCoreError) as exc:
            await self._abort(client, key, upload_id)
            raise _unavailable(exc, "write") from exc
        except BaseException:
            await asyncio.shield(self._abort(client, key, upload_id))
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    async def _part(self, client: Any, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = await client.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    async def _abort(self, client: Any, key: str, upload_id: str | None) -> None:
        if upload_id is None:
            return
        try:
            await client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except (ClientError, BotoCoreError):
            pass  # a bucket lifecycle rule reaps what an unreachable backend kept

    async def compose(self, key: str, parts: list[str], *, content_type: str | None = None) -> StoredBlob:
        async def stream() -> AsyncIterator[bytes]:
            for part in parts:
                async for chunk in self.open(part):
                    yield chunk

        return await self.put(key, stream(), content_type=content_type)

    # -- reads --------------------------------------------------------------------------

    async def open(self, key: str, *, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        check_key(key)
        if end is not None and end <= start:
            return
        client = await self._client()
        ranged = {"Range": f"bytes={start}-{'' if end is None else end - 1}"} if start or end is not None else {}
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=key, **ranged)
        except ClientError as exc:
            if _code(exc) in MISSING:
                raise BlobNotFound(key) from exc
            if _code(exc) == "InvalidRange":
                return  # starts at or past the end: nothing to read
            raise _unavailable(exc, "read") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, "read") from exc
        body = answer["Body"]
        try:
            while True:
                try:
                    chunk = await body.read(READ_CHUNK_BYTES)
                except (BotoCoreError, OSError) as exc:
                    raise _unavailable(exc, "read") from exc
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def size(self, key: str) -> int | None:
        check_key(key)
        client = await self._client()
        try:
            answer = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in MISSING:
                return None
            raise _unavailable(exc, "stat") from exc
        except BotoCoreError as exc:
            raise _unavailable(exc, "stat") from exc
        return int(answer["ContentLength"])

    async def delete(self, key: str) -> None:
        check_key(key)
        client = await self._client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, "delete") from exc

    async def delete_prefix(self, prefix: str) -> int:
        check_key(prefix.rstrip("/"))
        prefix = prefix.rstrip("/") + "/"
        client = await self._client()
        removed = 0
        try:
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents") or []]
                if keys:
                    await client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    removed += len(keys)
        except (ClientError, BotoCoreError) as exc:
            raise _unavailable(exc, "delete") from exc
        return removed
