"""The auto-responder job (seed 004's `ai_response`): score the inbound message, decide
(reply / escalate / away message / stay silent), call the gateway, store the reply and
enqueue its send. Reads and AI calls happen before the job's transaction is touched.

Every AI call goes through the gateway as the tenant (feature "chat_reply"): routed, limited,
charged to the tenant's wallet and recorded like any request. A refusal (402 balance, 429 /
403 limits) stops the reply and emits an "auto_reply.blocked" event instead of failing silently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from aibroker.errors import BrokerError
from aibroker.gateway.context import CallContext
from aibroker.gateway.validation import MissingCapability
from aibroker.jobs import JobContext, RetryLater, enqueue
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_request_id
from aibroker.messaging import context as ai_context
from aibroker.messaging import conversations, leads, scoring
from aibroker.models import ChannelConnection, Conversation, Lead, Message
from aibroker.providers.errors import ProviderError
from aibroker.routing.consensus import ConsensusRunner, consensus_feature

FEATURE = "chat_reply"
AWAY_REPEAT = dt.timedelta(hours=12)  # the away message is sent at most this often per conversation
SEND_JOB = "messaging.send_{channel}"
STYLE_HINTS = {
    "professional": "Keep a professional, courteous tone.",
    "friendly": "Be warm and friendly.",
    "casual": "Be relaxed and casual.",
    "concise": "Answer in as few words as possible.",
}


@dataclass(slots=True)
class Decision:
    action: str  # reply | escalate | away | silent | observe
    reason: str = ""
    reply: str | None = None
    request_id: str | None = None
    cost_micros: int = 0
    signals: list[str] = field(default_factory=list)
    signal_reason: str = ""
    blocked: BrokerError | None = None


def decide(inbound: Message, conversation: Conversation, connection: ChannelConnection, ctx: ai_context.Context) -> Decision:
    if conversation.handled_by != "ai" or not connection.ai_enabled or conversation.status not in conversations.OPEN:
        return Decision("observe", "a human handles this conversation")
    lowered = inbound.content.lower()
    hit = next((k for k in ctx.escalation_keywords if k and k.lower() in lowered), None)
    if hit:
        return Decision("escalate", f"escalation keyword '{hit}'")
    if ctx.auto_escalate_after_messages and conversation.ai_messages_since_handoff >= ctx.auto_escalate_after_messages:
        return Decision("escalate", f"{conversation.ai_messages_since_handoff} AI replies without resolution")
    if not ai_context.is_open(ctx.business_hours):
        sent = conversations.aware(conversation.away_sent_at)
        if ctx.away_message and (sent is None or utcnow() - sent > AWAY_REPEAT):
            return Decision("away", "outside business hours", reply=ctx.away_message)
        return Decision("silent", "outside business hours")
    return Decision("reply")


def _estimate_tokens(text: str) -> int:
    return len(text) // 3 + 4  # generous: ~3 characters per token plus the message frame


def build_messages(ctx: ai_context.Context, history: list[Message], channel: str, context_tokens: int) -> list[dict[str, Any]]:
    """System prompt + as much recent history as fits the model's context (oldest dropped first)."""
    system = f"{ctx.system_prompt}\n{STYLE_HINTS.get(ctx.response_style, f'Response style: {ctx.response_style}.')}\n" \
             f"You are replying on {channel}: plain text, short messages."
    budget = max(256, context_tokens - ctx.max_tokens - _estimate_tokens(system))
    turns: list[dict[str, Any]] = []
    for message in reversed(history):
        if message.status in ("failed", "blocked"):
            continue
        cost = _estimate_tokens(message.content)
        if cost > budget:
            break
        budget -= cost
        turns.append({"role": "user" if message.direction == "inbound" else "assistant", "content": message.content})
    turns.reverse()
    while turns and turns[0]["role"] != "user":  # a chat starts with the customer
        turns.pop(0)
    return [{"role": "system", "content": system}, *turns]


def _call_context(principal: Any, lead: Lead) -> CallContext:
    return CallContext(request_id=new_request_id(), principal=principal, endpoint="chat", feature=FEATURE,
                       user_id=lead.id, user_name=lead.name)


async def _ask_ai(job: JobContext, decision: Decision, inbound: Message, lead: Lead, history: list[Message],
                  ctx: ai_context.Context, channel: str) -> None:
    services = job.services
    gateway = services.gateway
    principal = await services.auth.principal_for_org(inbound.organization_id, admin=True)
    # The tenant's model, else "auto": the routing matrix (when chat_reply is routed) or the
    # platform's default model chooses, and a matrix that lists only some models still admits it.
    model = ctx.model or "auto"
    try:
        if ctx.scoring_enabled:
            try:
                answer = await gateway.chat(_call_context(principal, lead), scoring.request_body(model, inbound.content))
                decision.signals, decision.signal_reason = scoring.parse_signals(answer.body)
            except MissingCapability as exc:  # the routed models cannot answer in JSON: reply unscored
                decision.signal_reason = f"not scored: {exc.message}"
        if decision.action == "reply":
            try:
                context_tokens = services.catalog.resolve(ctx.model or gateway.default_model()).context_length
            except BrokerError:
                context_tokens = 8192
            call = _call_context(principal, lead)
            # "cache": a retry of this job (it failed after the AI call, before its commit) asks the
            # very same question and gets the answer already paid for from the cache, free by
            # default, instead of paying again. Any later message changes the history, so the key.
            body = {"model": model, "messages": build_messages(ctx, history, channel, context_tokens),
                    "temperature": ctx.temperature, "max_tokens": ctx.max_tokens, "cache": True}
            voting = consensus_feature(gateway.router, FEATURE)
            if voting is not None:  # the platform routes chat_reply by collaborative voting
                del body["model"]  # the matrix's voters answer, as on the HTTP routes
                verdict = await ConsensusRunner(gateway, gateway.router).decide(call, body, voting)
                answer, cost_micros = verdict.final, sum(a.cost.billed_micros for a in verdict.answers)
            else:
                answer = await gateway.chat(call, body)
                cost_micros = answer.cost.billed_micros
            choice = (answer.body.get("choices") or [{}])[0]
            decision.reply = ((choice.get("message") or {}).get("content") or "").strip()
            decision.request_id, decision.cost_micros = call.request_id, cost_micros
            if not decision.reply:
                decision.action, decision.reason = "silent", "the model returned an empty reply"
    except ProviderError as exc:  # upstream trouble: the job retries with backoff
        raise RetryLater(f"AI provider failed: {exc.message}", delay=exc.retry_after) from exc
    except BrokerError as exc:  # 402 balance, 429 / 403 limits, bad configuration: no reply
        decision.blocked = exc


async def respond(job: JobContext) -> dict[str, Any]:
    async with job.reads() as reads:
        inbound = await reads.get(Message, job.payload["message_id"])
        if inbound is None:
            return {"skipped": "message not found"}
        conversation = await reads.get(Conversation, inbound.conversation_id)
        lead = await reads.get(Lead, conversation.lead_id)
        connection = await reads.get(ChannelConnection, conversation.connection_id)
        ctx = await ai_context.load(reads, inbound.organization_id)
        history = await conversations.history(reads, conversation.id)
    decision = decide(inbound, conversation, connection, ctx)
    if ctx.scoring_enabled or decision.action == "reply":
        await _ask_ai(job, decision, inbound, lead, history, ctx, conversation.channel)

    # The job's transaction: everything below commits together with the job's completion.
    session = job.session
    conversation = await session.get(Conversation, conversation.id, with_for_update=True)
    lead = await session.get(Lead, lead.id, with_for_update=True)
    if decision.signals:
        await leads.apply_signals(session, lead, decision.signals, message_id=inbound.id,
                                  details={"reason": decision.signal_reason})
    if decision.blocked is not None:
        exc = decision.blocked
        conversations.emit(session, inbound.organization_id, "auto_reply.blocked", {
            "conversation_id": conversation.id, "message_id": inbound.id, "status": exc.status_code,
            "code": exc.code, "reason": exc.message,
        })
        return {"action": "blocked", "status": exc.status_code, "reason": exc.message, "signals": decision.signals}
    if decision.action == "escalate":
        conversations.escalate(session, conversation, decision.reason)
    elif decision.action in ("reply", "away"):
        if conversation.handled_by != "ai":  # an agent took over while the AI was thinking
            return {"action": "dropped", "reason": "a human took the conversation", "signals": decision.signals}
        author = "ai" if decision.action == "reply" else "system"
        reply = conversations.add_message(
            session, conversation, direction="outbound", author=author, content=decision.reply or "", status="queued",
            request_id=decision.request_id, cost_micros=decision.cost_micros, details={"in_reply_to": inbound.id},
        )
        if decision.action == "reply":
            conversation.ai_messages_since_handoff += 1
        else:
            conversation.away_sent_at = utcnow()
        await session.flush()
        await enqueue(session, SEND_JOB.format(channel=conversation.channel), {"message_id": reply.id},
                      organization_id=inbound.organization_id, priority=10)
        return {"action": decision.action, "reply_id": reply.id, "signals": decision.signals, "cost_micros": decision.cost_micros}
    return {"action": decision.action, "reason": decision.reason, "signals": decision.signals}
