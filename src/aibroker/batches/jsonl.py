"""A batch input file, line by line from blob storage, and its validation (OpenAI's
`validating` step): every line a JSON object with a unique `custom_id`, `method: POST`, the
batch's `url` and a `body` object naming a `model`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aibroker.storage import BlobStore

MAX_LISTED_ERRORS = 100
MAX_CUSTOM_ID = 512


@dataclass(slots=True)
class Line:
    index: int  # 0-based position among the file's non-blank lines
    custom_id: str
    body: dict[str, Any]


@dataclass(slots=True)
class Validation:
    total: int = 0
    model: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def fail(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.errors) < MAX_LISTED_ERRORS:
            self.errors.append({"code": code, "message": message, "param": param, "line": line})


async def raw_lines(store: BlobStore, key: str) -> AsyncIterator[bytes]:
    """The non-blank lines of the stored file, one chunk read at a time."""
    partial: list[bytes] = []  # the pieces of a line not yet ended (a long line spans chunks)
    async for chunk in store.open(key):
        pieces = chunk.split(b"\n")
        if len(pieces) == 1:
            partial.append(chunk)
            continue
        pieces[0] = b"".join([*partial, pieces[0]])
        partial = [pieces.pop()]
        for line in pieces:
            if line.strip():
                yield line
    last = b"".join(partial)
    if last.strip():
        yield last


def parse(raw: bytes) -> Line | tuple[str, str, str | None]:
    """A Line (index 0, set by the caller), or (code, message, param) of what is wrong with it."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return "invalid_json_line", "This line is not parseable as valid JSON.", None
    if not isinstance(data, dict):
        return "invalid_json_line", "Each line must be a JSON object.", None
    custom_id = data.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return "missing_required_parameter", "Each line needs a 'custom_id' string.", "custom_id"
    if len(custom_id) > MAX_CUSTOM_ID:
        return "invalid_value", f"'custom_id' is longer than {MAX_CUSTOM_ID} characters.", "custom_id"
    body = data.get("body")
    if not isinstance(body, dict):
        return "missing_required_parameter", "Each line needs a 'body' object (the request).", "body"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "missing_required_parameter", "The request body needs a 'model'.", "body.model"
    return Line(0, custom_id, body)


async def validate(store: BlobStore, key: str, endpoint: str, max_lines: int) -> Validation:
    result = Validation()
    seen: set[str] = set()
    async for raw in raw_lines(store, key):
        result.total += 1
        number = result.total  # errors name 1-based lines, as OpenAI's do
        if result.total > max_lines:
            result.fail("too_many_requests", f"A batch holds at most {max_lines} requests.", number)
            break
        parsed = parse(raw)
        if isinstance(parsed, tuple):
            result.fail(parsed[0], parsed[1], number, parsed[2])
            continue
        data = orjson.loads(raw)
        if data.get("method", "POST") != "POST":
            result.fail("invalid_method", "'method' must be POST.", number, "method")
        if data.get("url") != endpoint:
            result.fail("invalid_url", f"'url' must be the batch's endpoint, {endpoint}.", number, "url")
        if parsed.custom_id in seen:
            result.fail("duplicate_custom_id", f"The custom_id '{parsed.custom_id[:100]}' appears more than once.", number, "custom_id")
        seen.add(parsed.custom_id)
        result.model = result.model or parsed.body["model"]
    if result.total == 0:
        result.fail("empty_file", "The input file has no requests.", None)
    return result


async def lines(store: BlobStore, key: str) -> AsyncIterator[Line]:
    """The lines of a validated file, with their indexes."""
    index = 0
    async for raw in raw_lines(store, key):
        parsed = parse(raw)
        if isinstance(parsed, Line):
            parsed.index = index
            yield parsed
        index += 1
