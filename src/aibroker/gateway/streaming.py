"""Streamed chat: relaying upstream chunks, billing what was generated, replaying cache hits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aibroker.billing.batch import Settled
from aibroker.billing.estimate import generated_tokens
from aibroker.billing.leases import LocalHold
from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.attempts import Attempted
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import Ticket
from aibroker.gateway.usage_rows import estimate_stream_usage
from aibroker.ops import metrics
from aibroker.providers.base import Call, Provider, Usage, usage_from_openai

if TYPE_CHECKING:
    from aibroker.gateway.service import Gateway


async def open_stream(provider: Provider, call: Call) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any]]:
    """Open a stream and read its first chunk, so an error before it can still be retried."""
    iterator = provider.stream_chat(call).__aiter__()
    first = await iterator.__anext__()
    return iterator, first


class Relay:
    """Passes chunks through; on the normal end settles before the final usage chunk (which
    then carries the real cost); on a cut or a client leaving, bills what was generated."""

    def __init__(
        self,
        gateway: Gateway,
        ctx: CallContext,
        body: dict[str, Any],
        done: Attempted,
        hold: LocalHold | None,
        ticket: Ticket,
        include_usage: bool,
    ) -> None:
        self.gateway = gateway
        self.ctx = ctx
        self.body = body
        self.done = done
        self.hold = hold
        self.ticket = ticket
        self.include_usage = include_usage
        self.pieces: list[str] = []
        self.usage: Usage | None = None

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        iterator, first = self.done.value
        echo = answered_model(self.body, self.done.model)
        settled = False
        status: str = "partial"
        error: BaseException | None = None
        try:
            chunk: dict[str, Any] | None = first
            while chunk is not None:
                if chunk.get("usage"):
                    self.usage = usage_from_openai(chunk["usage"])
                if echo is not None and "model" in chunk:
                    chunk["model"] = echo  # the usage chunk copies the first one's
                if chunk.get("choices"):
                    collect_text(chunk, self.pieces)
                    yield chunk
                chunk = await _next(iterator)
            # Queued before awaiting: a client leaving during the await must not settle twice.
            pending = self.gateway.commit(self._settlement("success", None), self.hold)
            settled = True
            result = await self.gateway.writer.outcome(pending)
            await self._finish("success")
            if self.include_usage:
                yield usage_chunk(first, self._usage(), result)
        except BaseException as exc:  # cut upstream, or the client went away
            error = exc
            raise
        finally:
            if not settled:
                # Not awaited: a cancelled task cannot wait; the writer commits it on its own.
                self.gateway.commit(self._settlement(status, error), self.hold)
                metrics.child(metrics.REQUESTS, self.ctx.endpoint, status).inc()
                asyncio.ensure_future(_close(iterator))

    def _usage(self) -> Usage:
        if self.usage is None:
            self.usage = estimate_usage(self.body, self.pieces)
        return self.usage

    def _settlement(self, status: str, error: BaseException | None) -> Any:
        usage, model = self._usage(), self.done.model
        cost = self.gateway.cost(self.ctx, model, usage)
        return self.gateway.settlement(
            self.ctx, self.hold, model, usage, cost, status=status, attempt=self.done.attempts,
            upstream_ms=self.done.upstream_ms, streamed=True, error=error,
        )

    async def _finish(self, status: str) -> None:
        usage, model = self._usage(), self.done.model
        self.gateway.observe(self.ctx, model, usage, self.gateway.cost(self.ctx, model, usage), status)
        await self.gateway.admission.settle(self.ctx, self.ticket, model, usage)


async def replay(body: dict[str, Any], include_usage: bool, cost: int, balance: int | None) -> AsyncIterator[dict[str, Any]]:
    """A cached (non-streamed) completion, replayed as a stream."""
    base = {"id": body.get("id"), "object": "chat.completion.chunk", "created": body.get("created"), "model": body.get("model")}
    for choice in body.get("choices") or []:
        message = choice.get("message") or {}
        delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
        if message.get("tool_calls"):
            delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
        yield {**base, "choices": [{"index": choice.get("index", 0), "delta": delta, "finish_reason": None}]}
        yield {**base, "choices": [{"index": choice.get("index", 0), "delta": {}, "finish_reason": choice.get("finish_reason")}]}
    if include_usage:
        yield {**base, "choices": [], "usage": body.get("usage"), "aibroker": {"cost_micros": cost, "balance_micros": balance, "cached": True}}


def answered_model(request: dict[str, Any], served: ModelEntry) -> str | None:
    """The `model` an answer names: what the client asked (`mock/mock-chat` or `mock-chat`)
    when that names the model that served it; None (the upstream's own name stays) after a
    fallback, `auto` or a default."""
    requested = request.get("model")
    return requested if isinstance(requested, str) and requested in (served.id, served.name) else None


def echo_model(answer: dict[str, Any], request: dict[str, Any], served: ModelEntry) -> dict[str, Any]:
    named = answered_model(request, served)
    return {**answer, "model": named} if named and "model" in answer else answer


async def _next(iterator: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return None


async def _close(iterator: AsyncIterator[dict[str, Any]]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        try:
            await closer()
        except Exception:  # noqa: S110 - the stream is already broken; closing is best effort
            pass


def estimate_usage(body: dict[str, Any], pieces: list[str]) -> Usage:
    """A stream that ended without a usage report (cut, or the client left): the prompt as
    before, and the output estimated once over the whole generated text (billing.estimate)."""
    prompt = estimate_stream_usage(body, [])
    cap = body.get("max_completion_tokens") or body.get("max_tokens")
    output = generated_tokens("".join(pieces), cap if isinstance(cap, int) and cap > 0 else None)
    return Usage(input_tokens=prompt.input_tokens, output_tokens=output, estimated=True)


def collect_text(chunk: dict[str, Any], pieces: list[str]) -> None:
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            pieces.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            arguments = (call.get("function") or {}).get("arguments")
            if arguments:
                pieces.append(arguments)


def usage_chunk(first: dict[str, Any], usage: Usage, settled: Settled) -> dict[str, Any]:
    chunk = {k: first[k] for k in ("id", "object", "created", "model") if k in first}
    chunk["choices"] = []
    chunk["usage"] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    chunk["aibroker"] = {"cost_micros": settled.debited, "balance_micros": settled.balance_after}
    return chunk
