"""Where the gateway's chat calls meet the guardrails: before planning (the prompt), after
the upstream call and before settlement (the answer), and around a stream.

A blocked answer was generated and paid for upstream: it is billed and recorded like any
answer (with its verdict), then refused with 400 `content_flagged`.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from aibroker.billing.leases import LocalHold
from aibroker.catalog.registry import CHAT
from aibroker.gateway.attempts import Attempted
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import Ticket
from aibroker.guardrails import stream as guarded_stream
from aibroker.guardrails.engine import ContentFlagged, note
from aibroker.guardrails.policy import OPEN, Policy
from aibroker.providers.base import Usage, usage_from_openai

if TYPE_CHECKING:
    from aibroker.gateway.service import Gateway


async def policy_for(gateway: Gateway, ctx: CallContext) -> Policy:
    guardrails = gateway.guardrails
    if guardrails is None:
        return OPEN
    try:
        return await guardrails.policy(ctx)
    except Exception as exc:  # the settings could not be read: a busy database is a 503
        from aibroker.gateway.service import UNROUTED

        raise await gateway.refuse_if_busy(ctx, UNROUTED, exc) from exc  # type: ignore[arg-type]


async def guard_input(gateway: Gateway, ctx: CallContext, body: dict[str, Any]) -> Policy:
    """The organization's policy, with the prompt screened; a block is recorded as a refusal."""
    policy = await policy_for(gateway, ctx)
    if not (policy.moderate_input or policy.redact_input_pii):
        return policy
    try:
        await gateway.guardrails.screen_input(gateway, ctx, body, policy)  # type: ignore[union-attr]
    except ContentFlagged as exc:
        await gateway.refused(ctx, _primary(gateway, ctx, body), exc)
        raise
    return policy


def _primary(gateway: Gateway, ctx: CallContext, body: dict[str, Any]) -> Any:
    from aibroker.gateway.service import UNROUTED

    try:
        return gateway.router.candidates(ctx, body.get("model"), CHAT)[0]
    except Exception:
        return UNROUTED


async def guard_answer(gateway: Gateway, ctx: CallContext, body: dict[str, Any], policy: Policy) -> ContentFlagged | None:
    if not (policy.moderate_output or policy.redact_output_pii):
        return None
    return await gateway.guardrails.screen_output(gateway, ctx, body, policy)  # type: ignore[union-attr]


def cached_copy(body: dict[str, Any], policy: Policy) -> dict[str, Any]:
    """A cache hit screened without touching the stored entry."""
    return copy.deepcopy(body) if policy.moderate_output or policy.redact_output_pii else body


async def guard_stream(
    gateway: Gateway, ctx: CallContext, body: dict[str, Any], done: Attempted, hold: LocalHold | None, ticket: Ticket, policy: Policy
) -> None:
    """Rewrite `done.value` (iterator, first chunk) for the output guardrails, or bill and raise a block."""
    if policy.moderate_output:
        chunks = await guarded_stream.read_whole(done.value)
        answer = guarded_stream.assemble(chunks)
        blocked = await gateway.guardrails.screen_output(gateway, ctx, answer, policy)  # type: ignore[union-attr]
        if blocked is not None:
            await _bill_blocked(gateway, ctx, body, done, hold, ticket, chunks, answer)
            raise blocked
        guarded_stream.rewrite_chunks(chunks, answer)
        done.value = (guarded_stream.replay(chunks[1:]), chunks[0])
    elif policy.redact_output_pii:
        assert gateway.guardrails is not None

        def finished(changed: bool) -> None:
            if changed:
                note(ctx, "redacted:output:pii")

        wrapper = guarded_stream.RedactingStream(done.value, gateway.guardrails.redactor, on_done=finished)
        done.value = await wrapper.open()


async def _bill_blocked(
    gateway: Gateway, ctx: CallContext, body: dict[str, Any], done: Attempted, hold: LocalHold | None, ticket: Ticket,
    chunks: list[dict[str, Any]], answer: dict[str, Any],
) -> None:
    from aibroker.gateway.streaming import estimate_usage

    usage: Usage | None = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = usage_from_openai(chunk["usage"])
    if usage is None:
        usage = estimate_usage(body, [c["message"]["content"] for c in answer["choices"]])
    cost = gateway.cost(ctx, done.model, usage)
    op = gateway.settlement(ctx, hold, done.model, usage, cost, status="success", attempt=done.attempts,
                            upstream_ms=done.upstream_ms, streamed=True)
    await gateway.settle(op, hold)
    gateway.observe(ctx, done.model, usage, cost)
    await gateway.admission.settle(ctx, ticket, done.model, usage)
