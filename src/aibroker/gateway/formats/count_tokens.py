"""POST /v1/messages/count_tokens: Anthropic's token counting, for any model of the catalog.

The request (a Messages request without max_tokens or sampling) is translated as /v1/messages
translates it, routed to the model and admitted by the limits (so it counts against request
rate limits, as Anthropic limits it separately), but never held, billed or recorded (Anthropic
does not bill it); a refusal is recorded like any refusal. The count comes from the provider
adapter when it can count (`count_tokens`: Anthropic forwards to its /v1/messages/count_tokens,
the mock counts exactly what it bills), else from the broker's estimate below.

The estimate (other providers): a tokenizer-like count of the text (billing.estimate's
`generated_tokens`, which mirrors byte-level BPE: about one token per 6 letters of an English
word, per 3 bytes of non-Latin text, per 2 punctuation characters), plus 3 tokens per message,
the tool definitions counted the same way as JSON, and IMAGE_TOKENS (the hold's bound) per image.
It is an estimate, not the hold's upper bound: the real bill can differ by a few percent.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from aibroker.billing.estimate import IMAGE_TOKENS, generated_tokens
from aibroker.catalog.registry import CHAT
from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.context import CallContext
from aibroker.gateway.formats.anthropic import MessagesRequest, error_body, to_openai
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import CACHE_HEADER, JSONResponse, authenticate, error_headers, read_json, services, validate
from aibroker.gateway.request_context import call_context
from aibroker.providers.base import Call, Usage

router = APIRouter(prefix="/v1", tags=["Anthropic-compatible"])

PER_MESSAGE_TOKENS = 3
IGNORED = ("max_tokens", "stream", "stream_options", "temperature", "top_p", "stop", "user")


class CountTokensRequest(MessagesRequest):
    """Anthropic's count_tokens request: `model`, `messages`, optional `system`, `tools`, `tool_choice`."""

    max_tokens: int | None = Field(default=None, ge=1, description="Not needed here; ignored.")


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return generated_tokens(content)
    tokens = 0
    for part in content or ():
        if not isinstance(part, dict):
            continue
        if part.get("type") in ("image_url", "image", "input_image"):
            tokens += IMAGE_TOKENS
        else:
            tokens += generated_tokens(str(part.get("text") or ""))
    return tokens


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The broker's estimate of a chat request's input tokens (see the module docstring)."""
    tokens = 0
    for message in body.get("messages") or ():
        tokens += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
        if message.get("tool_calls"):
            tokens += generated_tokens(orjson.dumps(message["tool_calls"]).decode())
    if body.get("tools"):
        tokens += generated_tokens(orjson.dumps(body["tools"]).decode())
    return tokens


async def count_input_tokens(gateway: Any, ctx: CallContext, body: dict[str, Any]) -> int:
    """Route, check, admit, count; nothing is held or billed."""
    await gateway.load_byok(ctx)
    gateway.admission.screen(ctx, body, CHAT)
    primary = gateway.router.candidates(ctx, body.get("model"), CHAT)[0]
    if primary.kind != CHAT:
        raise InvalidRequest(f"The model '{primary.id}' is an {primary.kind} model; count_tokens takes chat models.",
                             param="model")
    ticket = await gateway.admit(ctx, primary, body)
    adapter = gateway.pool.get(primary.provider)
    try:
        if getattr(adapter, "count_tokens", None) is None:
            tokens = estimate_input_tokens(body)
        else:
            call = Call(primary, {**body, "model": primary.name}, api_key=ctx.byok_keys.get(primary.provider))
            done = await gateway.runner.run([(primary, call)], lambda p, c: p.count_tokens(c), lambda *_: None)
            tokens = int(done.value)
    except BaseException:
        await gateway.admission.settle(ctx, ticket, primary, None)
        raise
    await gateway.admission.settle(ctx, ticket, primary, Usage())
    return tokens


@router.post("/messages/count_tokens", openapi_extra=openapi_body(CountTokensRequest))
async def count_tokens(request: Request) -> Response:
    """Count a Messages request's input tokens (Anthropic's format): `{"input_tokens": N}`.
    Anthropic models are counted by Anthropic; the mock counts exactly what it bills; other
    providers get the broker's estimate (a tokenizer-like count, see docs/formats.md). Free: never
    billed nor recorded, but authenticated and counted by the request rate limits."""
    try:
        principal = await authenticate(request)
        raw = await read_json(request)
        parsed = validate(CountTokensRequest, raw)
        ctx = call_context(request, principal, "count_tokens", raw)
        body = to_openai(parsed.model_copy(update={"max_tokens": 1, "stream": False}))
        for name in IGNORED:
            body.pop(name, None)
        tokens = await count_input_tokens(services(request).gateway, ctx, body)
        return JSONResponse({"input_tokens": tokens}, headers={"x-request-id": ctx.request_id, CACHE_HEADER: "bypass"})
    except BrokerError as exc:
        return JSONResponse(error_body(exc), status_code=exc.status_code, headers=error_headers(exc))
