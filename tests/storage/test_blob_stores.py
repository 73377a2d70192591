"""Both blob stores behind one interface: the local filesystem and S3 (moto's server over
HTTP). Puts are all-or-nothing, reads are ranged, compose streams, prefixes delete."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from aibroker.storage.base import BlobNotFound, StorageUnavailable
from aibroker.storage.local import LocalBlobStore
from aibroker.storage.s3 import S3BlobStore
from tests.support.fleet import free_port
from tests.support.moto import ACCESS_KEY, REGION, SECRET_KEY

MB = 1024 * 1024


def s3_store(url: str, bucket: str, **kw) -> S3BlobStore:  # type: ignore[no-untyped-def]
    return S3BlobStore(bucket, endpoint_url=url, region=REGION, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, **kw)


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    moto = request.getfixturevalue("moto_server")
    return s3_store(moto.url, moto.new_bucket())


async def read_all(store, key, **kw) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join([piece async for piece in store.open(key, **kw)])


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def run(store, coro):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        try:
            return await coro
        finally:
            if hasattr(store, "aclose"):
                await store.aclose()  # the S3 client's connection pool belongs to this loop

    return asyncio.run(main())


def test_put_open_ranges_size_delete(store):
    data = os.urandom(300_000)

    async def scenario():
        blob = await store.put("org_a/recordings/r1/audio", pieces(data, 70_000), content_type="audio/mpeg")
        assert (blob.size, blob.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert await read_all(store, blob.key) == data
        assert await read_all(store, blob.key, start=1000, end=2000) == data[1000:2000]
        assert await read_all(store, blob.key, start=len(data) - 5) == data[-5:]
        assert await read_all(store, blob.key, start=10, end=10) == b""
        assert await store.size(blob.key) == len(data)
        await store.delete(blob.key)
        await store.delete(blob.key)  # deleting what is gone is fine
        assert await store.size(blob.key) is None
        with pytest.raises(BlobNotFound):
            await read_all(store, blob.key)

    run(store, scenario())


def test_compose_streams_parts_and_prefix_delete(store):
    parts = [os.urandom(n) for n in (100_000, 1, 50_000)]

    async def scenario():
        keys = [f"org_a/recordings/r2/chunks/{i:05d}" for i in range(len(parts))]
        for key, part in zip(keys, parts, strict=True):
            await store.put(key, part)
        blob = await store.compose("org_a/recordings/r2/audio", keys)
        whole = b"".join(parts)
        assert blob.size == len(whole) and blob.sha256 == hashlib.sha256(whole).hexdigest()
        assert await read_all(store, blob.key) == whole
        await store.put("org_a/recordings/r3/audio", b"other")
        assert await store.delete_prefix("org_a/recordings/r2/") == 4
        assert await store.size(blob.key) is None and await store.size("org_a/recordings/r3/audio") == 5

    run(store, scenario())


def test_a_failed_put_leaves_nothing(store):
    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(MB)
        raise RuntimeError("the client went away")

    async def scenario():
        await store.put("org_a/x/blob", b"old")
        with pytest.raises(RuntimeError):
            await store.put("org_a/x/blob", failing())
        assert await read_all(store, "org_a/x/blob") == b"old"  # the earlier object is intact

    run(store, scenario())


def test_keys_cannot_escape(store):
    async def scenario():
        for bad in ("../etc/passwd", "/abs", "a//b", "a/./b", "a/b c"):
            with pytest.raises(ValueError):
                await store.put(bad, b"x")

    run(store, scenario())


def test_s3_multipart_upload_of_a_large_object(moto_server):
    """Past one part the put is a multipart upload (5 MiB parts here): visible only once complete."""
    store = s3_store(moto_server.url, moto_server.new_bucket(), part_bytes=5 * MB)
    data = os.urandom(12 * MB + 123)

    async def scenario():
        blob = await store.put("org_b/big", pieces(data, MB))
        assert blob.size == len(data) and await read_all(store, "org_b/big") == data

    run(store, scenario())
    uploads = moto_server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads") or []
    assert uploads == []  # completed, none left open
    head = moto_server.client().head_object(Bucket=store.bucket, Key="org_b/big")
    assert head["ContentLength"] == len(data) and head["ETag"].strip('"').endswith("-3")  # three parts


def test_s3_failed_multipart_put_is_aborted(moto_server):
    store = s3_store(moto_server.url, moto_server.new_bucket(), part_bytes=5 * MB)

    async def failing() -> AsyncIterator[bytes]:
        yield os.urandom(6 * MB)
        raise RuntimeError("cut")

    async def scenario():
        with pytest.raises(RuntimeError):
            await store.put("org_b/partial", failing())
        assert await store.size("org_b/partial") is None

    run(store, scenario())
    assert (moto_server.client().list_multipart_uploads(Bucket=store.bucket).get("Uploads") or []) == []


def test_s3_down_is_storage_unavailable():
    store = s3_store(f"http://127.0.0.1:{free_port()}", "nothing", connect_timeout=0.5, max_attempts=1)

    async def scenario():
        with pytest.raises(StorageUnavailable) as raised:
            await store.put("org_c/x", b"data")
        assert raised.value.status_code == 503
        with pytest.raises(StorageUnavailable):
            await read_all(store, "org_c/x")
        with pytest.raises(StorageUnavailable):
            await store.size("org_c/x")

    run(store, scenario())
