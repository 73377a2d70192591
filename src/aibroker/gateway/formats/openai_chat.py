"""The OpenAI-compatible routes: /v1/chat/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.ai.templates_apply import apply_template
from aibroker.gateway.formats.schemas import ChatCompletionRequest, EmbeddingRequest, openapi_body
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    cache_noted,
    read_json,
    services,
    sse,
    unless_disconnected,
    validate,
)
from aibroker.gateway.request_context import call_context
from aibroker.routing.consensus import ConsensusRunner, consensus_feature

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.post("/chat/completions", openapi_extra=openapi_body(ChatCompletionRequest))
async def chat_completions(request: Request) -> Response:
    """Create a chat completion (OpenAI's format), plain or streamed (SSE).

    aibroker adds: the `x-aibroker-feature` header (or body `feature`), `x-aibroker-profile` /
    `x-aibroker-group` (or body `profile` / `group`) for the routing matrix, `model: "auto"`
    to let the matrix choose, consensus features (`aibroker.include_votes`), and the response
    headers `x-aibroker-cost-micros` / `x-aibroker-balance-micros`. A streamed call with
    `stream_options.include_usage` gets its cost in the final usage chunk (`aibroker`)."""
    principal = await authenticate(request)
    body = await apply_template(request, await read_json(request), "chat", principal)
    validate(ChatCompletionRequest, body)
    ctx = call_context(request, principal, "chat", body)
    gateway = services(request).gateway
    voting = consensus_feature(gateway.router, ctx.feature)
    if voting is not None:  # collaborative voting: every voting provider answers (routing/consensus.py)
        result, headers = await unless_disconnected(request, ConsensusRunner(gateway, gateway.router).run(ctx, body, voting))
        return JSONResponse(result, headers=headers)
    if body.get("stream"):
        answer = await cache_noted(ctx, gateway.chat_stream(ctx, body))
        headers = {"x-aibroker-provider": answer.model.provider, "x-aibroker-model": answer.model.id, **answer.headers}
        return StreamingResponse(sse(answer.chunks), media_type="text/event-stream", headers=headers)
    answer = await unless_disconnected(request, gateway.chat(ctx, body), ctx)
    return JSONResponse(answer.body, headers=answer.headers(ctx.request_id))


@router.post("/embeddings", openapi_extra=openapi_body(EmbeddingRequest))
async def embeddings(request: Request) -> Response:
    """Create embeddings (OpenAI's format)."""
    principal = await authenticate(request)
    body = await read_json(request)
    validate(EmbeddingRequest, body)
    ctx = call_context(request, principal, "embeddings", body)
    answer = await unless_disconnected(request, services(request).gateway.embed(ctx, body), ctx)
    return JSONResponse(answer.body, headers=answer.headers(ctx.request_id))


def _model_object(entry) -> dict:  # type: ignore[no-untyped-def]
    return {
        "id": entry.id,
        "object": "model",
        "created": 0,
        "owned_by": entry.provider,
        "kind": entry.kind,
        "context_length": entry.context_length,
        "max_output_tokens": entry.max_output_tokens,
        "capabilities": sorted(entry.capabilities),
        "pricing": entry.pricing(),
    }


@router.get("/models")
async def list_models(request: Request) -> Response:
    """The models this organization may use, with `pricing` (USD per token) and `context_length`."""
    principal = await authenticate(request)
    svc = services(request)
    entries = svc.catalog.available()  # an organization's own keys (BYOK) are for providers enabled here too
    if svc.limits is not None and svc.limits.enabled:  # the plan's allowed models, when it names them
        plan = svc.plans.get(principal.plan)
        entries = [e for e in entries if plan.allows(e.id, e.name)]
    entries.sort(key=lambda e: e.id)
    return JSONResponse({"object": "list", "data": [_model_object(e) for e in entries]})


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> Response:
    """One model of the catalog."""
    await authenticate(request)
    return JSONResponse(_model_object(services(request).catalog.resolve(model_id)))
