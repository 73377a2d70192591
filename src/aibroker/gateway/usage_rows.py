"""Usage record rows, built in the pipeline and written by the money writer."""

from __future__ import annotations

from typing import Any

from aibroker.billing.pricing import Cost
from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.context import CallContext
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.providers.base import Usage

# Typical English text runs ~4 bytes per token; used only when a cut stream left no usage.
BYTES_PER_TOKEN_ESTIMATE = 4


def usage_row(
    ctx: CallContext,
    model: ModelEntry,
    usage: Usage,
    cost: Cost | None,
    *,
    status: str,
    attempt: int,
    upstream_ms: int,
    streamed: bool = False,
    error: BaseException | None = None,
) -> dict[str, Any]:
    principal = ctx.principal
    return {
        "id": new_id("use"),
        "request_id": ctx.request_id,
        "organization_id": principal.organization_id,
        "api_key_id": principal.api_key_id,
        "user_id": ctx.user_id,
        "user_name": ctx.user_name,
        "feature": ctx.feature,
        "endpoint": ctx.endpoint,
        "provider": model.provider,
        "model": model.id,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "provider_cost_micros": cost.provider_micros if cost else 0,
        "billed_cost_micros": 0,  # set by the writer to what was actually debited
        "margin_bps": cost.margin_bps if cost else 0,
        "latency_ms": ctx.elapsed_ms(),
        "upstream_latency_ms": upstream_ms,
        "status": status,
        "error_type": _error_type(error),
        "error_message": (getattr(error, "message", None) or str(error))[:500] if error else None,
        "attempt": attempt,
        "streamed": streamed,
        "cached": False,
        "byok": False,
        "guardrail": ctx.guardrail,
        "created_at": utcnow(),
        "batch_id": ctx.batch_id,
        "batch_custom_id": ctx.batch_custom_id,
        "ab_split_id": ctx.ab_split[0] if ctx.ab_split else None,
        "ab_arm": ctx.ab_split[1] if ctx.ab_split else None,
    }


def _error_type(error: BaseException | None) -> str | None:
    if error is None:
        return None
    return getattr(error, "error_type", None) or type(error).__name__


def estimate_stream_usage(body: dict[str, Any], pieces: list[str]) -> Usage:
    """A stream that ended without a usage report (cut, or the client left): count what
    was generated. Each content chunk is at least one token; bytes/4 covers long chunks."""
    generated = sum(max(1, -(-len(p.encode()) // BYTES_PER_TOKEN_ESTIMATE)) for p in pieces)
    prompt_bytes = sum(len(str(m.get("content") or "").encode()) for m in body.get("messages") or [])
    prompt = -(-prompt_bytes // BYTES_PER_TOKEN_ESTIMATE) + 3 * len(body.get("messages") or [])
    return Usage(input_tokens=prompt, output_tokens=generated, estimated=True)
