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
from aibroker.gateway.formats.anthropic import (
    MessagesRequest,
    error_body,
    to_anthropic,
    to_openai,
)
from aibroker.gateway.formats.anthropic_stream import anthropic_events
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    cache_noted,
    error_headers,
    read_json,
    services,
    unless_disconnected,
    validate,
)
from aibroker.gateway.request_context import call_context
from aibroker.providers.base import usage_from_openai
from aibroker.routing.consensus import ConsensusRunner, consensus_feature

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

# aibroker's own body fields, kept through the translation (never sent upstream).
BROKER_FIELDS = ("cache", "aibroker")


def _error(exc: BrokerError) -> Response:
    return JSONResponse(error_body(exc), status_code=exc.status_code, headers=error_headers(exc))


async def _sse(events: AsyncIterator[tuple[str, dict[str, Any]]]) -> AsyncIterator[bytes]:
    async for name, data in events:
        yield b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _consensus_message(result: dict[str, Any], model: str, stops: list[str] | None) -> dict[str, Any]:
    """The consensus answer (OpenAI-shaped, usage summed over every call) as an Anthropic Message."""
    message = to_anthropic(result, usage_from_openai(result.get("usage")), model=model, stops=stops)
    if "aibroker" in result:  # the votes, when the request asked for them
        message["aibroker"] = result["aibroker"]
    return message


def _is_anthropic(request: Request, model: str) -> bool:
    """Prompt-caching marks go upstream only to Anthropic itself (others refuse the field)."""
    try:
        return bool(services(request).catalog.resolve(model).provider == "anthropic")
    except BrokerError:
        return False  # the pipeline reports the unknown model in its own words


@router.post("/messages", openapi_extra=openapi_body(MessagesRequest))
async def create_message(request: Request) -> Response:
    """Create a message (Anthropic's Messages API), plain or streamed (SSE events).

    Authenticate with `x-api-key: abk_...` (what the anthropic SDK sends) or
    `Authorization: Bearer abk_...`. `model` may be any catalog model of any provider
    (`mock/mock-chat`, `openai/gpt-4o-mini`, `anthropic/claude-sonnet-4-5`, ...).
    `max_tokens` is required. Errors use Anthropic's envelope
    `{"type": "error", "error": {"type", "message"}}`. Response headers carry
    `x-aibroker-cost-micros` and `x-aibroker-balance-micros`; a stream carries them in
    the `aibroker` field of its `message_delta` event.

    Routing as on /v1/chat/completions: `x-aibroker-feature` (or body `feature`, or the
    key's default feature), `x-aibroker-profile` / `x-aibroker-group` (or body `profile` /
    `group`); `Cache-Control: no-store` or body `"cache": false` bypasses the response
    cache. A consensus feature answers by collaborative voting, not streamed (400)."""
    try:
        principal = await authenticate(request)
        raw = await read_json(request)
        request_model = validate(MessagesRequest, raw)
        user = (request_model.metadata or {}).get("user_id")
        ctx = call_context(request, principal, "messages", raw, user_id=str(user) if user else None)
        gateway = services(request).gateway
        voting = consensus_feature(gateway.router, ctx.feature)
        # Voters may be any provider: Anthropic's prompt-caching marks only go to a lone Anthropic model.
        keep_marks = voting is None and _is_anthropic(request, request_model.model)
        body = to_openai(request_model, keep_cache_marks=keep_marks)
        body.update({name: raw[name] for name in BROKER_FIELDS if name in raw})
        stops = request_model.stop_sequences
        if voting is not None:  # collaborative voting; a stream is refused (400), as on /v1/chat/completions
            result, headers = await unless_disconnected(request, ConsensusRunner(gateway, gateway.router).run(ctx, body, voting))
            return JSONResponse(_consensus_message(result, request_model.model, stops), headers=headers)
        if request_model.stream:
            answer = await cache_noted(ctx, gateway.chat_stream(ctx, body))
            headers = {"x-aibroker-provider": answer.model.provider, "x-aibroker-model": answer.model.id, **answer.headers}
            events = anthropic_events(answer.chunks, request_model.model, stops)
            return StreamingResponse(_sse(events), media_type="text/event-stream", headers=headers)
        done = await unless_disconnected(request, gateway.chat(ctx, body), ctx)
        message = to_anthropic(done.body, done.usage, model=request_model.model, stops=stops)
        return JSONResponse(message, headers=done.headers(ctx.request_id))
    except BrokerError as exc:
        return _error(exc)
