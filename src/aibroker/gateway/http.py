"""HTTP plumbing shared by the AI routes: body parsing, auth, disconnect races, SSE."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.ops.body import read_body
from aibroker.tenancy.auth import CODE_HEADER, CODE_USER_HEADER, ORG_HEADER, Principal
from aibroker.tenancy.roles import Permission

if TYPE_CHECKING:
    from aibroker.gateway.context import CallContext

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

CLIENT_CLOSED = 499  # nginx's convention for "the client went away"

# Every answer of an AI route says what the response cache did: hit | miss | bypass.
CACHE_HEADER = "x-aibroker-cache"
# The routes that call a model. Their errors carry CACHE_HEADER too (handlers.py, fastpath.py).
AI_ROUTES = frozenset({
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1/moderations"),
    ("POST", "/v1/audio/speech"),
    ("POST", "/v1/images/generations"),
    ("POST", "/v1/audio/transcriptions"),
    ("POST", "/api/ai/broker"),
    ("POST", "/api/ai/broker/test"),
})


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def services(request: Request) -> Any:
    return request.app.state.services


def request_id(request: Request) -> str:
    return request.scope["state"]["request_id"]


async def read_json(request: Request) -> dict[str, Any]:
    # Read while counting: a chunked body past the limit is refused before it is held whole.
    raw = await read_body(request, services(request).settings.server.max_body_bytes)
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON ({exc.args[0] if exc.args else exc}).") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return data


def validate(schema: type[M], data: dict[str, Any]) -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc), param=_first_param(exc)) from exc


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"'{where}': {error['msg']}")
    return "Invalid request: " + "; ".join(parts)


def _first_param(exc: ValidationError) -> str | None:
    errors = exc.errors()
    return ".".join(str(p) for p in errors[0]["loc"]) if errors and errors[0]["loc"] else None


async def authenticate(
    request: Request, *, acting_for: str | None = None, permission: str | None = Permission.USE_AI_BROKER
) -> Principal:
    """The caller, holding `permission` (403 otherwise). Routes that need another permission
    name it; the default, USE_AI_BROKER, is what every AI route needs."""
    acting_for = acting_for or request.headers.get(ORG_HEADER) or request.query_params.get("organizationId")
    authorization = request.headers.get("authorization")
    if not authorization and request.headers.get("x-api-key"):
        # Anthropic's SDK sends its key as x-api-key; the same abk_ key works there.
        authorization = "Bearer " + request.headers["x-api-key"]
    found = services(request)
    principal = await found.auth.authenticate(
        authorization, acting_for=acting_for,
        code=request.headers.get(CODE_HEADER), code_user=request.headers.get(CODE_USER_HEADER),
    )
    if principal.guard is not None:
        await guarded(request, principal)
    if principal.api_key_id is not None and found.activity is not None:
        found.activity.touch_key(principal.api_key_id)  # memory only: written every few seconds
    return principal.require(permission) if permission else principal


async def guarded(request: Request, principal: Principal) -> None:
    """The key's IP allowlist, then its request signature (over the raw body, kept for the route)."""
    from aibroker.tenancy import key_guard

    guard, found = principal.guard, services(request)
    assert guard is not None
    key_guard.check_ip(request, guard, found.key_guards.trusted)
    if guard.signing_secret is not None:
        limit = max(found.settings.server.max_body_bytes, found.settings.server.max_audio_bytes)
        body = await read_body(request, limit)
        request._body = body  # the route reads the same bytes again
        await key_guard.check_signature(request, guard, body, found.key_guards.nonces)


def error_headers(exc: BrokerError) -> dict[str, str]:
    """An AI route's error headers: the error's own, with the cache outcome (bypass unless
    the request had reached the cache before it failed, see `note_cache`)."""
    return exc.headers if CACHE_HEADER in exc.headers else {**exc.headers, CACHE_HEADER: "bypass"}


def note_cache(exc: BrokerError, ctx: CallContext) -> BrokerError:
    """Keep on an error what the cache had decided before it (a miss, then the upstream failed)."""
    if CACHE_HEADER not in exc.headers:
        exc.headers = {**exc.headers, CACHE_HEADER: ctx.cache_status}
    return exc


async def cache_noted(ctx: CallContext, work: Awaitable[T]) -> T:
    """Await `work`; an error it raises says what the cache had decided (see `note_cache`)."""
    try:
        return await work
    except BrokerError as exc:
        note_cache(exc, ctx)
        raise


async def unless_disconnected(request: Request, work: Awaitable[T], ctx: CallContext | None = None) -> T:
    """Run `work`, cancelling it (and so the upstream call) if the client disconnects.
    With the request's `ctx`, an error of `work` says what the cache had decided."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_wait_disconnect(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if not task.done():
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: S110 - the client is gone; its outcome has nobody to go to
            pass
        raise BrokerError("The client closed the connection.", status_code=CLIENT_CLOSED, error_type="client_closed")
    try:
        return task.result()
    except BrokerError as exc:
        if ctx is not None:
            note_cache(exc, ctx)
        raise


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def sse(chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    """OpenAI's SSE framing. A failure after the first chunk becomes an error event."""
    try:
        async for chunk in chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
    except BrokerError as exc:
        yield b"data: " + orjson.dumps(exc.body()) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"
