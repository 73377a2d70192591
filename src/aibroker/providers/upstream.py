"""HTTP plumbing shared by every adapter: one pooled aiohttp session per provider, JSON
posts, multipart posts and streams, with every transport failure translated into the
provider error tree.

aiohttp rather than httpx (DESIGN names httpx): against the same nginx upstream, httpx
0.28's pool served 620-800 req/s at 1 connection and 125-165 req/s at 64 concurrent,
aiohttp 4,800-6,100 and 2,500-4,000 (bench/http_clients.py measures it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from aibroker.providers.errors import (
    ProviderBadResponse,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeout,
)

Headers = Mapping[str, str]
# Builds the provider error for an HTTP error answer: (status, raw body, headers) -> error.
ErrorMapper = Callable[[int, bytes, Headers], ProviderError]


def retry_after_seconds(headers: Headers) -> float | None:
    """OpenAI sends retry-after-ms as well as the standard Retry-After (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class FilePart:
    name: str
    filename: str
    content: bytes
    content_type: str


class Upstream:
    """A pooled HTTP client for one provider, speaking JSON in and JSON / lines out."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        on_error: ErrorMapper,
        max_connections: int = 512,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._on_error = on_error
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self.timeout = timeout  # seconds per request (per read, for streams); tests may shorten it
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the running event loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300)
            self._session = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    def _timeout(self, *, streaming: bool = False, seconds: float | None = None) -> aiohttp.ClientTimeout:
        limit = seconds if seconds is not None else self.timeout
        if streaming:
            return aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout, sock_read=limit)
        return aiohttp.ClientTimeout(total=limit, sock_connect=self._connect_timeout)

    def _transport_error(self, exc: BaseException, what: str = "") -> ProviderError:
        if isinstance(exc, asyncio.TimeoutError):
            return ProviderTimeout(f"{self.name} timed out{what}", provider=self.name)
        return ProviderConnectionError(f"{self.name} unreachable{what}: {type(exc).__name__}", provider=self.name)

    def _parse(self, content: bytes) -> dict[str, Any]:
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise ProviderBadResponse(f"{self.name} sent malformed JSON", provider=self.name) from exc
        if not isinstance(data, dict):
            raise ProviderBadResponse(f"{self.name} sent an unexpected body", provider=self.name)
        return data

    async def _send_raw(self, method: str, path: str, *, timeout: float | None = None, **kw: Any) -> tuple[bytes, str]:
        """The answer's bytes and content type; an HTTP error raised through the error mapper."""
        try:
            async with self._client().request(method, self.base_url + path, timeout=self._timeout(seconds=timeout), **kw) as response:
                content = await response.read()
                status, headers = response.status, response.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc
        if status >= 400:
            raise self._on_error(status, content, headers)
        return content, headers.get("content-type", "application/octet-stream")

    async def _send(self, method: str, path: str, *, timeout: float | None = None, **kw: Any) -> dict[str, Any]:
        content, _ = await self._send_raw(method, path, timeout=timeout, **kw)
        return self._parse(content)

    async def request_bytes(self, path: str, *, body: Any, headers: Headers | None = None) -> tuple[bytes, str]:
        """POST JSON, answered with binary content (audio): (bytes, content type)."""
        return await self._send_raw("POST", path, data=orjson.dumps(body), headers=dict(headers or {}))

    async def request_json(
        self, method: str, path: str, *, body: Any = None, headers: Headers | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        data = orjson.dumps(body) if body is not None else None
        return await self._send(method, path, data=data, headers=dict(headers or {}), timeout=timeout)

    async def post_multipart(
        self, path: str, *, fields: Mapping[str, str], files: list[FilePart], headers: Headers | None = None
    ) -> dict[str, Any]:
        form = aiohttp.FormData()
        for key, value in fields.items():
            form.add_field(key, value)
        for part in files:
            form.add_field(part.name, part.content, filename=part.filename, content_type=part.content_type)
        # aiohttp writes the multipart content type with its boundary itself.
        plain = {k: v for k, v in (headers or {}).items() if k.lower() != "content-type"}
        return await self._send("POST", path, data=form, headers=plain)

    @contextlib.asynccontextmanager
    async def stream(self, path: str, *, body: Any, headers: Headers) -> AsyncIterator[AsyncIterator[str]]:
        """Open a streamed POST; yields its lines. HTTP errors raise before the first line."""
        try:
            response = await self._client().post(
                self.base_url + path, data=orjson.dumps(body), headers=dict(headers), timeout=self._timeout(streaming=True)
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc) from exc
        try:
            if response.status >= 400:
                try:
                    content = await response.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise self._transport_error(exc) from exc
                raise self._on_error(response.status, content, response.headers)
            yield self._lines(response)
        finally:
            response.release()

    async def _lines(self, response: aiohttp.ClientResponse) -> AsyncIterator[str]:
        # Split by hand: aiohttp's readline caps line length, and an SSE event may carry an image.
        buffer = b""
        try:
            async for piece in response.content.iter_any():
                buffer += piece
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    yield line.rstrip(b"\r").decode()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise self._transport_error(exc, " mid-stream") from exc
        if buffer:
            yield buffer.rstrip(b"\r").decode()

    def load_event(self, payload: str) -> dict[str, Any]:
        """One JSON event of a stream (an SSE data line or an NDJSON line)."""
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise ProviderBadResponse(f"{self.name} sent a malformed stream event", provider=self.name) from exc
        if not isinstance(event, dict):
            raise ProviderBadResponse(f"{self.name} sent an unexpected stream event", provider=self.name)
        return event

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str | None, str]]:
    """Server-sent events as (event name, data) pairs; multi-line data joined with newlines."""
    event: str | None = None
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        # comments (":") and unknown fields are ignored, as the SSE spec says
    if data:
        yield event, "\n".join(data)


def json_error(content: bytes) -> Any:
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


__all__ = ["ErrorMapper", "FilePart", "Headers", "Upstream", "json_error", "retry_after_seconds", "sse_data"]
