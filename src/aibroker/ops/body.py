"""Bounds of a request body: its size, enforced while reading (413 `body_too_large`), and the
nesting depth of its JSON.

Read a request body up to a limit, stopping as soon as it is passed.

`await request.body()` buffers everything the client sends before anyone can look at its size;
a chunked 64 MiB upload would sit in memory first. This reads the stream chunk by chunk and
gives up at the first byte past the limit, so memory stays bounded by the limit itself."""

from __future__ import annotations

from typing import Any

from starlette.requests import ClientDisconnect, Request

from aibroker.errors import InvalidRequest, PayloadTooLarge

BODY_TOO_LARGE = "body_too_large"


def too_large(limit: int, size: int | str | None = None) -> PayloadTooLarge:
    seen = f"is {size} bytes" if size is not None else "is larger"
    return PayloadTooLarge(f"The request body {seen}; the limit is {limit} bytes.", code=BODY_TOO_LARGE)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body if it is at most `limit` bytes; 413 (code `body_too_large`) otherwise,
    raised before more than `limit` bytes (plus one transport chunk) are held."""
    declared = request.headers.get("content-length")
    declared = (declared or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise too_large(limit, declared)  # refused without reading a byte of it
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise too_large(limit)
    except ClientDisconnect:
        raise InvalidRequest("The client closed the connection before sending the whole body.", code="client_disconnected") from None
    return bytes(body)


def nesting_exceeds(value: Any, max_depth: int) -> bool:
    """Whether parsed JSON nests deeper than `max_depth` (iterative: a deep value cannot exhaust
    the stack). Bodies stored in JSON columns need it: the encoder gives up near 1000 levels."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return True
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False
