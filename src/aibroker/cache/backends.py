"""Where cached responses live: an in-process LRU with TTL per kind, or Redis.

Each entry carries its own expiry read against kit.clock, so TTLs are exact and tests
can move time; the backend's own expiry (TTLCache timer, Redis EX) only frees space.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson
from cachetools import TTLCache


class CacheBackend(Protocol):
    async def get(self, kind: str, key: str) -> bytes | None: ...

    async def set(self, kind: str, key: str, value: bytes, ttl: int) -> None: ...

    async def aclose(self) -> None: ...


def pack(body: dict[str, Any], expires_at: float) -> bytes:
    return orjson.dumps({"e": expires_at, "b": body})


def unpack(raw: bytes, now: float) -> dict[str, Any] | None:
    entry = orjson.loads(raw)
    return entry["b"] if entry["e"] > now else None


class MemoryBackend:
    """One bounded LRU per kind (cachetools.TTLCache: least recently used goes first when full)."""

    def __init__(self, ttls: dict[str, int], max_entries: int, timer: Callable[[], float]) -> None:
        self._caches = {kind: TTLCache(maxsize=max_entries, ttl=ttl, timer=timer) for kind, ttl in ttls.items()}

    async def get(self, kind: str, key: str) -> bytes | None:
        cache = self._caches.get(kind)
        return cache.get(key) if cache is not None else None

    async def set(self, kind: str, key: str, value: bytes, ttl: int) -> None:
        cache = self._caches.get(kind)
        if cache is not None:
            cache[key] = value

    async def aclose(self) -> None:
        return None


class RedisBackend:
    """Shared by every process. Keys: aibroker:cache:<kind>:<hash>."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)

    async def get(self, kind: str, key: str) -> bytes | None:
        return await self._redis.get(f"aibroker:cache:{kind}:{key}")  # type: ignore[no-any-return]

    async def set(self, kind: str, key: str, value: bytes, ttl: int) -> None:
        await self._redis.set(f"aibroker:cache:{kind}:{key}", value, ex=max(1, ttl))

    async def aclose(self) -> None:
        await self._redis.aclose()
