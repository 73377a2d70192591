"""Seed 000's broker API: one prompt in, the answer with its cost and stats out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from aibroker.ai.platform_auth import is_platform_admin
from aibroker.ai.templates_apply import apply_template
from aibroker.gateway.context import CallContext
from aibroker.gateway.formats.schemas import BrokerRequest, openapi_body
from aibroker.gateway.http import (
    JSONResponse,
    authenticate,
    read_json,
    services,
    unless_disconnected,
    validate,
)
from aibroker.gateway.request_context import call_context
from aibroker.gateway.service import Answer
from aibroker.gateway.usage_repository import UsageRepository
from aibroker.kit.money import format_micros
from aibroker.models import UsageRecord
from aibroker.routing.consensus import ConsensusRunner, consensus_feature, text_of
from aibroker.tenancy.auth import ORG_HEADER
from aibroker.tenancy.roles import Permission

router = APIRouter(prefix="/api/ai/broker", tags=["Broker (seed 000)"])

TEST_PROMPT = "Reply with the single word OK."


# A request that names no feature (no header, usageType, feature or key default) is this.
DEFAULT_USAGE_TYPE = "CHAT_RESPONSE"


def _result(ctx: CallContext, final: Answer, answers: list[Answer], currency: str) -> dict[str, Any]:
    """Seed 000's answer. `final` holds the answer text; `answers` are every billed call
    (one, or a consensus request's votes and synthesis), whose costs and tokens add up."""
    provider_micros = sum(a.cost.provider_micros for a in answers)
    billed_micros = sum(a.cost.billed_micros for a in answers)
    input_tokens = sum(a.usage.input_tokens for a in answers)
    output_tokens = sum(a.usage.output_tokens for a in answers)
    balances = [a.balance_micros for a in answers if a.balance_micros is not None]
    return {
        "success": True,
        "requestId": ctx.request_id,
        "response": text_of(final),
        "provider": final.model.provider,
        "model": final.model.id,
        "cost": {
            "providerCostMicros": provider_micros,
            "finalCostMicros": billed_micros,
            "marginBps": final.cost.margin_bps,
            "providerCost": format_micros(provider_micros),
            "finalCost": format_micros(billed_micros),
            "currency": currency,
        },
        "stats": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "tokensUsed": input_tokens + output_tokens,
            "responseTimeMs": ctx.elapsed_ms(),
            "attempts": sum(a.attempts for a in answers),
        },
        "balanceMicros": min(balances) if balances else None,
    }


def _currency(request: Request) -> str:
    return services(request).settings.billing.currency


def _chat_body(req: BrokerRequest) -> dict[str, Any]:
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
    if req.cache is not None:
        body["cache"] = req.cache
    if req.aibroker is not None:
        body["aibroker"] = req.aibroker
    return body


async def _ask(request: Request, req: BrokerRequest, *, test: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the prompt (by consensus when its feature votes): seed 000's result and the headers."""
    principal = await authenticate(request, acting_for=req.organizationId)
    fields = {
        "feature": req.feature or req.usageType, "profile": req.profile, "group": req.group,
        "user": req.userId, "user_name": req.userName, "cache": req.cache,
    }
    ctx = call_context(request, principal, "broker", fields, fallback_feature=DEFAULT_USAGE_TYPE)
    if test:
        ctx.feature = "broker_test"  # the health check is recorded apart from real traffic
    gateway = services(request).gateway
    body = _chat_body(req)
    currency = _currency(request)
    voting = consensus_feature(gateway.router, ctx.feature)
    if voting is not None:  # collaborative voting, as on /v1/chat/completions
        runner = ConsensusRunner(gateway, gateway.router)
        verdict = await unless_disconnected(request, runner.decide(ctx, body, voting))
        response, headers = runner.respond(ctx, body, voting, verdict)
        result = _result(ctx, verdict.final, verdict.answers, currency)
        if "aibroker" in response:  # the votes, when the request asked for them
            result["aibroker"] = response["aibroker"]
        return result, headers
    answer = await unless_disconnected(request, gateway.chat(ctx, body), ctx)
    return _result(ctx, answer, [answer], currency), answer.headers(ctx.request_id)


@router.post("", openapi_extra=openapi_body(BrokerRequest))
async def broker(request: Request) -> Response:
    """Process one AI request for an organization: balance check, provider choice, call,
    cost x (1 + margin), wallet debit, usage record (seed 000).

    The feature is the `x-aibroker-feature` header, else `usageType` (or `feature`), else
    the API key's default feature, else CHAT_RESPONSE; `x-aibroker-profile` /
    `x-aibroker-group` (or `profile` / `group`) select the routing matrix rows. A consensus
    feature answers by collaborative voting (`"aibroker": {"include_votes": true}` adds the votes)."""
    req = validate(BrokerRequest, await apply_template(request, await read_json(request), "broker"))
    result, headers = await _ask(request, req)
    return JSONResponse(result, headers=headers)


@router.get("")
async def broker_stats(request: Request) -> Response:
    """Broker statistics for the caller's organization: totals and by provider / model. The
    platform service key (or a SUPER_ADMIN) naming no organization gets every organization's."""
    named = request.headers.get(ORG_HEADER) or request.query_params.get("organizationId")
    org: str | None = None
    if named or not await is_platform_admin(request):
        org = (await authenticate(request, permission=Permission.VIEW_USAGE)).organization_id
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


@router.post("/test", openapi_extra=openapi_body(BrokerRequest, description="Optional: model, prompt and organizationId."))
async def broker_test(request: Request) -> Response:
    """Send a tiny real request through the whole pipeline (billed like any call) to check
    that a model answers. Body (optional): {"organizationId", "model", "prompt"}."""
    raw = await read_json(request) if await request.body() else {}
    raw.setdefault("prompt", TEST_PROMPT)
    raw.setdefault("maxTokens", 16)
    req = validate(BrokerRequest, raw)
    result, headers = await _ask(request, req, test=True)
    return JSONResponse({**result, "test": "passed"}, headers=headers)
