"""The Anthropic-compatible route: POST /v1/messages, for the official `anthropic` SDK.

The request is translated to the broker's OpenAI shape and runs the same pipeline as
/v1/chat/completions (routing, limits, hold, retries, fallbacks, settlement), against any
upstream provider; the answer and its stream are translated back to Anthropic's format."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.errors import BrokerError
from aibroker.gateway.anthropic_format import (
    MessagesRequest,
    error_body,
    to_anthropic,
    to_openai,
)
from aibroker.gateway.anthropic_stream import anthropic_events
from aibroker.gateway.context import CallContext
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    read_json,
    request_id,
    services,
    unless_disconnected,
    validate,
)

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

FEATURE_HEADER = "x-aibroker-feature"


def _error(exc: BrokerError) -> Response:
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=exc.headers)


async def _sse(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    async for name, data in events:
        yield b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _is_anthropic(request: Request, model: str) -> bool:
    """Prompt-caching marks go upstream only to Anthropic itself (others refuse the field)."""
    try:
        return bool(services(request).catalog.resolve(model).provider == "anthropic")
    except BrokerError:
        return False  # the pipeline reports the unknown model in its own words


@router.post("/messages")
async def create_message(request: Request) -> Response:
    """Create a message (Anthropic's Messages API), plain or streamed (SSE events).

    Authenticate with `x-api-key: abk_...` (what the anthropic SDK sends) or
    `Authorization: Bearer abk_...`. `model` may be any catalog model of any provider
    (`mock/mock-chat`, `openai/gpt-4o-mini`, `anthropic/claude-sonnet-4-5`, ...).
    `max_tokens` is required. Errors use Anthropic's envelope
    `{"type": "error", "error": {"type", "message"}}`. Response headers carry
    `x-aibroker-cost-micros` and `x-aibroker-balance-micros`; a stream carries them in
    the `aibroker` field of its `message_delta` event."""
    try:
        principal = await authenticate(request)
        request_model = validate(MessagesRequest, await read_json(request))
        body = to_openai(request_model, keep_cache_marks=_is_anthropic(request, request_model.model))
        ctx = CallContext(
            request_id=request_id(request),
            principal=principal,
            endpoint="messages",
            feature=request.headers.get(FEATURE_HEADER) or principal.default_feature,
            user_id=body.get("user") or principal.user_id,
        )
        gateway = services(request).gateway
        stops = request_model.stop_sequences
        if request_model.stream:
            answer = await gateway.chat_stream(ctx, body)
            headers = {"x-aibroker-provider": answer.model.provider, "x-aibroker-model": answer.model.id, **answer.headers}
            events = anthropic_events(answer.chunks, request_model.model, stops)
            return StreamingResponse(_sse(events), media_type="text/event-stream", headers=headers)
        done = await unless_disconnected(request, gateway.chat(ctx, body))
        message = to_anthropic(done.body, done.usage, model=request_model.model, stops=stops)
        return JSONResponse(message, headers=done.headers(ctx.request_id))
    except BrokerError as exc:
        return _error(exc)
