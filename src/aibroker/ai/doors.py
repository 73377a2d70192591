"""Seed 001's AI routes, as thin doors onto the gateway: POST /api/ai/completions, /api/ai/chat,
/api/ai/embeddings. Each translates seed 001's request (camelCase or snake_case options) into
the pipeline's call, so it is routed, admitted, held, billed and recorded like /v1/*.

Authentication as on every AI route: an API key (`Authorization: Bearer abk_...`), a signed-in
user's token, the platform service key with `x-organization-id`, or `x-organization-code`
where the organization allows it. Routing headers (`x-aibroker-feature`, ...) apply too."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from aibroker.catalog.registry import EMBEDDING
from aibroker.gateway.context import CallContext
from aibroker.gateway.formats.schemas import openapi_body
from aibroker.gateway.http import JSONResponse, authenticate, read_json, services, unless_disconnected, validate
from aibroker.gateway.request_context import call_context
from aibroker.gateway.service import Answer
from aibroker.tenancy.auth import Principal

router = APIRouter(prefix="/api/ai", tags=["AI (seed 001)"])
MAX_TOKENS = 1_000_000
# Which provider's model serves a kind when the request names none (the first enabled).
PREFERENCE = ("openai", "anthropic", "gemini", "ollama", "mock")


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    model: str | None = Field(default=None, max_length=200, description="`provider/model` or a catalog name; default: the router's choice.")
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_TOKENS, validation_alias=_alias("maxTokens", "max_tokens"),
                                   description="Cap of the answer's tokens (`maxTokens` or `max_tokens`).")
    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    feature: str | None = Field(default=None, max_length=80, description="The feature (usage type) this call serves.")
    user: str | None = Field(default=None, max_length=120, validation_alias=_alias("userId", "user"), description="The end user (`userId` or `user`).")
    cache: bool | None = Field(default=None, description="false: never read or write the response cache.")


class AiCompletionRequest(_Options):
    """Seed 001's `complete(prompt, options)`."""

    prompt: str = Field(min_length=1, description="The prompt.")
    system_prompt: str | None = Field(default=None, validation_alias=_alias("systemPrompt", "system_prompt"), description="Instructions sent first.")


class AiMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"] = Field(description="Who speaks.")
    content: str = Field(description="What is said.")


class AiChatRequest(_Options):
    """Seed 001's `chat(messages, options)`."""

    messages: list[AiMessage] = Field(min_length=1, max_length=10_000, description="The conversation so far.")


class AiEmbeddingRequest(BaseModel):
    """Seed 001's `embed(text, options)`: `text` (or `input`), one string or a list."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    input: str | list[str] = Field(validation_alias=_alias("text", "input"), description="The text(s) to embed (`text` or `input`).")
    model: str | None = Field(default=None, max_length=200, description="An embedding model; default: the first enabled one.")
    feature: str | None = Field(default=None, max_length=80, description="The feature (usage type) this call serves.")
    user: str | None = Field(default=None, max_length=120, validation_alias=_alias("userId", "user"), description="The end user.")


def default_of_kind(request: Request, kind: str) -> str:
    """The model a request of `kind` gets when it names none: the first enabled provider's
    (by PREFERENCE) cheapest."""
    entries = [e for e in services(request).catalog.available() if e.kind == kind]
    entries.sort(key=lambda e: (PREFERENCE.index(e.provider) if e.provider in PREFERENCE else len(PREFERENCE),
                                e.input_micros_per_m + e.image_micros + e.audio_minute_micros, e.id))
    if not entries:
        from aibroker.routing.router import NoAvailableProvider

        raise NoAvailableProvider(f"No {kind} model is available in this broker.", code="no_available_provider")
    return entries[0].id


def _fields(req: _Options | AiEmbeddingRequest) -> dict[str, Any]:
    fields: dict[str, Any] = {"feature": req.feature, "user": req.user}
    if getattr(req, "cache", None) is not None:
        fields["cache"] = req.cache
    return fields


def _chat_body(req: _Options, messages: list[dict[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": messages, "model": req.model or "auto"}
    if req.max_tokens is not None:
        body["max_tokens"] = req.max_tokens
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.cache is not None:
        body["cache"] = req.cache
    return body


def _answer(ctx: CallContext, answer: Answer, obj: str, **content: Any) -> dict[str, Any]:
    return {
        "id": ctx.request_id, "object": obj, **content, "model": answer.model.id, "provider": answer.model.provider,
        "usage": {"prompt_tokens": answer.usage.input_tokens, "completion_tokens": answer.usage.output_tokens,
                  "total_tokens": answer.usage.input_tokens + answer.usage.output_tokens},
        "cost_micros": answer.cost.billed_micros, "cached": ctx.cache_status == "hit", "latency_ms": ctx.elapsed_ms(),
    }


async def _chat(request: Request, principal: Principal, req: _Options, messages: list[dict[str, Any]],
                endpoint: str) -> tuple[CallContext, Answer]:
    ctx = call_context(request, principal, endpoint, _fields(req))
    answer = await unless_disconnected(request, services(request).gateway.chat(ctx, _chat_body(req, messages)), ctx)
    return ctx, answer


def _first_choice(answer: Answer) -> dict[str, Any]:
    return (answer.body.get("choices") or [{}])[0]


@router.post("/completions", openapi_extra=openapi_body(AiCompletionRequest))
async def complete(request: Request) -> Response:
    """Text completion (seed 001): `{"prompt", "model"?, "systemPrompt"?, "maxTokens"?, "temperature"?}`
    -> `{"text", "model", "provider", "usage", "cost_micros", "cached", "latency_ms"}`."""
    principal = await authenticate(request)  # first: a caller aimed at another organization learns nothing
    req = validate(AiCompletionRequest, await read_json(request))
    messages = [{"role": "system", "content": req.system_prompt}] if req.system_prompt else []
    messages.append({"role": "user", "content": req.prompt})
    ctx, answer = await _chat(request, principal, req, messages, "completions")
    choice = _first_choice(answer)
    body = _answer(ctx, answer, "ai.completion", text=(choice.get("message") or {}).get("content") or "",
                   finish_reason=choice.get("finish_reason"))
    return JSONResponse(body, headers=answer.headers(ctx.request_id))


@router.post("/chat", openapi_extra=openapi_body(AiChatRequest))
async def chat(request: Request) -> Response:
    """Chat (seed 001): `{"messages": [{"role", "content"}], "model"?, ...}` -> `{"message": {"role", "content"}, ...}`."""
    principal = await authenticate(request)
    req = validate(AiChatRequest, await read_json(request))
    ctx, answer = await _chat(request, principal, req, [m.model_dump() for m in req.messages], "chat")
    choice = _first_choice(answer)
    message = {"role": "assistant", "content": (choice.get("message") or {}).get("content") or ""}
    body = _answer(ctx, answer, "ai.chat", message=message, finish_reason=choice.get("finish_reason"))
    return JSONResponse(body, headers=answer.headers(ctx.request_id))


@router.post("/embeddings", openapi_extra=openapi_body(AiEmbeddingRequest))
async def embed(request: Request) -> Response:
    """Embeddings (seed 001): `{"text" | "input": str | [str], "model"?}` -> `{"embeddings": [[...]], ...}`."""
    principal = await authenticate(request)
    req = validate(AiEmbeddingRequest, await read_json(request))
    ctx = call_context(request, principal, "embeddings", _fields(req))
    body = {"input": req.input, "model": req.model or default_of_kind(request, EMBEDDING)}
    answer = await unless_disconnected(request, services(request).gateway.embed(ctx, body), ctx)
    vectors = [item.get("embedding") for item in sorted(answer.body.get("data") or [], key=lambda d: d.get("index", 0))]
    return JSONResponse(_answer(ctx, answer, "ai.embeddings", embeddings=vectors), headers=answer.headers(ctx.request_id))
