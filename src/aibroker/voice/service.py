"""Opening voice sessions: the model (explicit, or the feature `voice_agent`'s route), plan
access, the concurrent-session limit, the first metering increment, the session token."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.catalog.registry import REALTIME, ModelEntry
from aibroker.errors import BrokerError, Conflict, InvalidRequest, PermissionDenied
from aibroker.gateway.context import CallContext
from aibroker.kit.clock import utcnow
from aibroker.messaging import context as ai_context
from aibroker.models import VoiceSession
from aibroker.voice import pricing, repository, tokens
from aibroker.voice.bridges import speaks_realtime
from aibroker.voice.repository import ACTIVE, PENDING
from aibroker.voice.schemas import VoiceInit

VOICE_FEATURE = "voice_agent"


@dataclass(slots=True)
class Opened:
    row: VoiceSession
    token: str | None
    model: ModelEntry


class VoiceService:
    def __init__(self, services: Any) -> None:
        self.services = services
        self.settings = services.settings.voice
        self.gateway = services.gateway

    # -- choices ------------------------------------------------------------------------

    def default_model(self) -> str:
        if self.settings.default_model:
            return self.settings.default_model
        return "openai/gpt-realtime" if "openai" in self.services.catalog.enabled_providers else "mock/mock-realtime"

    def choose_model(self, ctx: CallContext, requested: str | None) -> ModelEntry:
        """The requested realtime model, else the routing matrix's for the feature, else the default."""
        chain = self.gateway.router.candidates(ctx, requested, REALTIME)
        model = chain[0]
        if requested is None and model.kind != REALTIME:  # no voice route: the voice default
            model = self.gateway.router.candidates(ctx, self.default_model(), REALTIME)[0]
        if model.kind != REALTIME:
            raise InvalidRequest(f"The model '{model.id}' is a {model.kind} model, not a realtime voice model.",
                                 param="model", code="not_a_realtime_model")
        if not speaks_realtime(self.services, model):
            raise InvalidRequest(f"The provider '{model.provider}' has no realtime bridge in this broker.", param="model")
        return model

    def limits(self, plan: str) -> tuple[int, int]:
        """(concurrent sessions, seconds per session) for `plan`."""
        own = self.settings.plan_limits.get(plan) or {}
        return (int(own.get("concurrent", self.settings.max_concurrent_sessions)),
                int(own.get("max_seconds", self.settings.max_session_seconds)))

    def increment(self, ctx: CallContext, model: ModelEntry) -> int:
        if model.provider in ctx.byok_keys:
            return max(1, self.gateway.billing.byok_fee_micros)
        return pricing.increment_micros(model, self.settings.increment_seconds, self.gateway.margin_for(ctx))

    def stale_before(self, now: dt.datetime) -> dt.datetime:
        """An active session whose heartbeat is older than this lost its process."""
        grace = max(self.services.settings.billing.lease_ttl_seconds, 3 * self.settings.heartbeat_seconds)
        return now - dt.timedelta(seconds=grace)

    # -- checks -------------------------------------------------------------------------

    async def check_plan(self, ctx: CallContext, model: ModelEntry) -> None:
        """403 when the plan has no voice sessions or not this model (counted, then given back)."""
        concurrent, _ = self.limits(ctx.principal.plan)
        if concurrent <= 0:
            raise PermissionDenied(f"The {ctx.principal.plan} plan does not include realtime voice sessions.",
                                   code="voice_not_in_plan")
        ticket = await self.gateway.admit(ctx, model, {"model": model.id})
        await self.gateway.refund(ctx, ticket)

    async def check_concurrency(self, session: AsyncSession, ctx: CallContext) -> None:
        concurrent, _ = self.limits(ctx.principal.plan)
        # Inits racing each other must not all pass the count: a no-op write to the organization's
        # row first takes its lock (a row lock on PostgreSQL, the write lock on SQLite), held
        # until this transaction, which inserts the new session, ends.
        await session.execute(text("UPDATE organizations SET id = id WHERE id = :org"), {"org": ctx.principal.organization_id})
        now = utcnow()
        live = await repository.live_count(session, ctx.principal.organization_id, now, self.stale_before(now))
        if live >= concurrent:
            raise PermissionDenied(
                f"The organization already has {live} live voice sessions; its plan allows {concurrent} at once.",
                code="concurrent_session_limit", extra={"limit": concurrent},
            )

    async def check_wallet(self, ctx: CallContext, model: ModelEntry) -> None:
        """402 `insufficient_balance` unless the wallet can hold the first increment now."""
        hold = await self.gateway.reserve(ctx, self.increment(ctx, model))
        if hold is not None and self.gateway.leases is not None:
            self.gateway.leases.release(hold)  # held again, from the same lease, when the socket opens

    # -- opening ------------------------------------------------------------------------

    async def open(self, session: AsyncSession, ctx: CallContext, body: VoiceInit, session_id: str, *, connected: bool) -> Opened:
        """A new session row (pending with a token; or active, for /v1/realtime's own socket)."""
        await self.gateway.load_byok(ctx)
        model = self.choose_model(ctx, body.model)
        await self.check_plan(ctx, model)
        await self.check_wallet(ctx, model)
        instructions = body.instructions
        if instructions is None:
            context = await ai_context.load(session, ctx.principal.organization_id)
            instructions = context.system_prompt if context.configured else None
        await self.check_concurrency(session, ctx)  # last: it locks the organization until the insert commits
        now = utcnow()
        token = None if connected else tokens.mint()
        row = VoiceSession(
            organization_id=ctx.principal.organization_id, id=session_id, user_id=ctx.user_id,
            api_key_id=ctx.principal.api_key_id, model=model.id, feature=ctx.feature, voice=body.voice,
            language=body.language, instructions=instructions, tools=body.tools or [],
            input_audio_format="pcm16", output_audio_format="pcm16",
            status=ACTIVE if connected else PENDING,
            token_hash=tokens.digest(token) if token else None,
            token_expires_at=now + dt.timedelta(seconds=self.settings.token_seconds) if token else None,
            started_at=now if connected else None, heartbeat_at=now if connected else None,
            duration_ms=0, responses=0, input_tokens=0, output_tokens=0, input_audio_tokens=0,
            output_audio_tokens=0, cost_micros=0, transcript=[], created_at=now,
        )
        session.add(row)
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(f"A voice session '{session_id}' already exists in this organization.",
                           code="session_exists", param="sessionId") from exc
        return Opened(row, token, model)


def status_of(row: VoiceSession, stale_before: dt.datetime, now: dt.datetime) -> str:
    if row.status == PENDING and row.token_expires_at is not None and row.token_expires_at <= now:
        return "expired"
    if row.status == ACTIVE and (row.heartbeat_at is None or row.heartbeat_at <= stale_before):
        return "interrupted"
    return row.status


def view(row: VoiceSession, status: str) -> dict[str, Any]:
    return {
        "id": row.id, "status": status, "model": row.model, "voice": row.voice, "feature": row.feature,
        "user_id": row.user_id, "created_at": row.created_at, "started_at": row.started_at, "ended_at": row.ended_at,
        "duration_ms": row.duration_ms, "responses": row.responses, "input_tokens": row.input_tokens,
        "output_tokens": row.output_tokens, "input_audio_tokens": row.input_audio_tokens,
        "output_audio_tokens": row.output_audio_tokens, "cost_micros": row.cost_micros,
        "close_code": row.close_code, "close_reason": row.close_reason, "transcript": row.transcript or [],
    }


def refusal_close(exc: BrokerError) -> tuple[int, str]:
    """A WebSocket close code and reason for a refusal before the session starts."""
    code = {401: 4401, 402: 4402, 403: 4403, 404: 4404, 409: 4409, 429: 4429}.get(exc.status_code, 4400 if exc.status_code < 500 else 1011)
    return code, (exc.code or exc.error_type or "refused")[:120]
