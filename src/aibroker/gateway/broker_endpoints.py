"""Seed 000's broker API: one prompt in, the answer with its cost and stats out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from aibroker.cache.keys import no_store
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
from aibroker.gateway.schemas import BrokerRequest
from aibroker.gateway.service import Answer
from aibroker.gateway.usage_repository import UsageRepository
from aibroker.kit.money import format_micros
from aibroker.models import UsageRecord
from aibroker.routing.router import GROUP_HEADER, PROFILE_HEADER
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai/broker", tags=["Broker (seed 000)"])

TEST_PROMPT = "Reply with the single word OK."


def _text_of(answer: Answer) -> str:
    choices = answer.body.get("choices") or [{}]
    return (choices[0].get("message") or {}).get("content") or ""


def _result(ctx: CallContext, answer: Answer, currency: str) -> dict[str, Any]:
    usage, cost = answer.usage, answer.cost
    return {
        "success": True,
        "requestId": ctx.request_id,
        "response": _text_of(answer),
        "provider": answer.model.provider,
        "model": answer.model.id,
        "cost": {
            "providerCostMicros": cost.provider_micros,
            "finalCostMicros": cost.billed_micros,
            "marginBps": cost.margin_bps,
            "providerCost": format_micros(cost.provider_micros),
            "finalCost": format_micros(cost.billed_micros),
            "currency": currency,
        },
        "stats": {
            "inputTokens": usage.input_tokens,
            "outputTokens": usage.output_tokens,
            "tokensUsed": usage.input_tokens + usage.output_tokens,
            "responseTimeMs": ctx.elapsed_ms(),
            "attempts": answer.attempts,
        },
        "balanceMicros": answer.balance_micros,
    }



def _currency(request: Request) -> str:
    return services(request).settings.billing.currency


async def _ask(request: Request, req: BrokerRequest, *, feature: str) -> tuple[CallContext, Answer]:
    principal = await authenticate(request, acting_for=req.organizationId)
    gateway = services(request).gateway
    messages = [{"role": "system", "content": req.systemPrompt}] if req.systemPrompt else []
    messages.append({"role": "user", "content": req.prompt})
    # No model: the router picks (the routing matrix for a routed usageType, else the platform default).
    body: dict[str, Any] = {"messages": messages}
    if req.model:
        body["model"] = req.model
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.maxTokens is not None:
        body["max_tokens"] = req.maxTokens
    ctx = CallContext(
        request_id=request_id(request), principal=principal, endpoint="broker",
        feature=feature, user_id=req.userId, user_name=req.userName,
        profile=request.headers.get(PROFILE_HEADER), group=request.headers.get(GROUP_HEADER),
        no_store=no_store(request.headers.get("cache-control")),
    )
    return ctx, await unless_disconnected(request, gateway.chat(ctx, body))


@router.post("")
async def broker(request: Request) -> Response:
    """Process one AI request for an organization: balance check, provider choice, call,
    cost x (1 + margin), wallet debit, usage record (seed 000)."""
    req = validate(BrokerRequest, await read_json(request))
    ctx, answer = await _ask(request, req, feature=req.usageType)
    return JSONResponse(_result(ctx, answer, _currency(request)), headers=answer.headers(ctx.request_id))


@router.get("")
async def broker_stats(request: Request) -> Response:
    """Broker statistics for the caller's organization: totals and by provider / model."""
    principal = await authenticate(request, permission=Permission.VIEW_USAGE)
    org = principal.organization_id
    async with services(request).db.sessions() as session:
        repo = UsageRepository(session)
        totals = await repo.totals(org)
        by_provider = await repo.grouped(org, UsageRecord.provider, "provider")
        by_model = await repo.grouped(org, UsageRecord.model, "model")
    requests = totals["requests"] or 0
    return JSONResponse(
        {
            "organizationId": org,
            "totalRequests": requests,
            "successRate": round(totals["succeeded"] / requests, 4) if requests else None,
            "totals": totals,
            "byProvider": by_provider,
            "byModel": by_model,
        }
    )


@router.post("/test")
async def broker_test(request: Request) -> Response:
    """Send a tiny real request through the whole pipeline (billed like any call) to check
    that a model answers. Body (optional): {"organizationId", "model", "prompt"}."""
    raw = await read_json(request) if await request.body() else {}
    raw.setdefault("prompt", TEST_PROMPT)
    raw.setdefault("maxTokens", 16)
    req = validate(BrokerRequest, raw)
    ctx, answer = await _ask(request, req, feature="broker_test")
    return JSONResponse({**_result(ctx, answer, _currency(request)), "test": "passed"}, headers=answer.headers(ctx.request_id))
