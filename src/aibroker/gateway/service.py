"""The request pipeline: route -> check -> admit -> cache -> hold -> call (retry,
fallback) -> settle.

Every AI call in aibroker passes through `Gateway`, so every call is routed, limited,
charged and recorded the same way. Settlement (debit + usage record) is committed
before the answer leaves, so a served response never lacks its debit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aibroker.billing import byok_budget
from aibroker.billing.batch import HoldRefused, Settle, Settled
from aibroker.billing.estimate import chat_input_bound, embedding_input_bound
from aibroker.billing.leases import LeaseBook, LocalHold
from aibroker.billing.pricing import Cost, bound_cost, cost_of
from aibroker.billing.writer import MoneyWriter
from aibroker.catalog.registry import CHAT, EMBEDDING, ModelEntry
from aibroker.config import BillingSettings, GatewaySettings
from aibroker.errors import BrokerError, InsufficientBalance
from aibroker.gateway import streaming
from aibroker.gateway.attempts import AttemptRunner
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import (
    Admission,
    Cache,
    NoCache,
    OpenAdmission,
    Router,
    Ticket,
)
from aibroker.gateway.streaming import echo_model
from aibroker.gateway.usage_rows import usage_row
from aibroker.gateway.validation import (
    body_for,
    capped_output,
    check_chat,
    check_embedding,
)
from aibroker.guardrails import pipeline as guard
from aibroker.guardrails.engine import HEADER as GUARDRAIL_HEADER
from aibroker.guardrails.policy import OPEN, Policy
from aibroker.kit.money import format_micros
from aibroker.ops import metrics
from aibroker.ops.db_errors import DatabaseBusy, database_busy
from aibroker.providers.base import Call, Provider, Result, Usage, usage_from_openai
from aibroker.providers.pool import ProviderPool

if TYPE_CHECKING:
    from aibroker.billing.byok import ProviderKeyStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Unrouted:
    """What a request refused before it was routed is recorded under (provider, model)."""

    provider: str = "none"
    id: str = "none"


UNROUTED = _Unrouted()


@dataclass(slots=True)
class Answer:
    body: dict[str, Any]
    model: ModelEntry
    cost: Cost
    balance_micros: int | None
    usage: Usage
    attempts: int = 1
    extra_headers: dict[str, str] = field(default_factory=dict)

    def headers(self, request_id: str) -> dict[str, str]:
        headers = {
            "x-request-id": request_id,
            "x-aibroker-cost-micros": str(self.cost.billed_micros),
            "x-aibroker-provider": self.model.provider,
            "x-aibroker-model": self.model.id,
            **self.extra_headers,
        }
        if self.balance_micros is not None:
            headers["x-aibroker-balance-micros"] = str(self.balance_micros)
        return headers


@dataclass(slots=True)
class StreamAnswer:
    chunks: AsyncIterator[dict[str, Any]]
    model: ModelEntry
    headers: dict[str, str]


@dataclass(slots=True)
class Plan:
    """One request, ready to run: its candidates, what each is sent, and the hold bound."""

    chain: list[ModelEntry]
    calls: list[tuple[ModelEntry, Call]]
    bound_micros: int
    kind: str


class Gateway:
    def __init__(
        self,
        *,
        router: Router,
        pool: ProviderPool,
        writer: MoneyWriter,
        gateway_settings: GatewaySettings,
        billing_settings: BillingSettings,
        admission: Admission | None = None,
        cache: Cache | None = None,
        byok: ProviderKeyStore | None = None,
        plan_margin: Callable[[str], int | None] | None = None,
        leases: LeaseBook | None = None,
        guardrails: Any = None,
    ) -> None:
        self.router = router
        self.pool = pool
        self.writer = writer
        self.settings = gateway_settings
        self.billing = billing_settings
        self.admission: Admission = admission or OpenAdmission()
        self.cache: Cache = cache or NoCache()
        self.byok = byok
        self.plan_margin = plan_margin
        # Wallet holds come from this process's leases; None when the ledger is off.
        self.leases = leases if billing_settings.ledger_enabled else None
        self.runner = AttemptRunner(pool, gateway_settings)
        self.guardrails = guardrails  # guardrails.engine.Guardrails: per-organization output filters, moderation
        self.activity: Any = None  # billing.activity.ActivityRecorder: last-used times, written coalesced

    def default_model(self) -> str:
        return self.router.default_model()  # type: ignore[attr-defined, no-any-return]

    def margin_for(self, ctx: CallContext) -> int:
        """The organization's override, else its plan's margin (in-memory plans), else the default."""
        margin = ctx.principal.margin_bps
        if margin is None and self.plan_margin is not None:
            margin = self.plan_margin(ctx.principal.plan)
        return self.billing.default_margin_bps if margin is None else margin

    # -- BYOK: a candidate whose provider has the organization's own key costs only the fee --

    async def load_byok(self, ctx: CallContext) -> None:
        if self.byok is not None:
            try:
                ctx.byok_keys = await self.byok.keys_for(ctx.principal.organization_id)
            except Exception as exc:
                raise await self.refuse_if_busy(ctx, UNROUTED, exc) from exc  # type: ignore[arg-type]

    def bound(self, ctx: CallContext, model: ModelEntry, input_tokens: int, output_tokens: int) -> int:
        if model.provider in ctx.byok_keys:
            return self.billing.byok_fee_micros
        return bound_cost(model, input_tokens, output_tokens, self.margin_for(ctx))

    def cost(self, ctx: CallContext, model: ModelEntry, usage: Usage) -> Cost:
        fee = self.billing.byok_fee_micros if model.provider in ctx.byok_keys else None
        return cost_of(model, usage, self.margin_for(ctx), byok_fee_micros=fee, discount_bps=ctx.discount_bps)

    # -- planning ---------------------------------------------------------------------

    def plan_chat(self, ctx: CallContext, body: dict[str, Any]) -> Plan:
        chain = self.router.candidates(ctx, body.get("model"), CHAT)
        check_chat(chain[0], body)  # the primary must fit: say why, before any charge
        chain = [chain[0], *(m for m in chain[1:] if _fits(check_chat, m, body))]
        cap, keys = self.settings.default_max_tokens, ctx.byok_keys
        calls = [(m, Call(m, body_for(m, body, capped_output(m, body, cap)), api_key=keys.get(m.provider))) for m in chain]
        bound = max(self.bound(ctx, m, chat_input_bound(body, m.context_length), capped_output(m, body, cap)) for m in chain)
        return Plan(chain, calls, bound, CHAT)

    def plan_embedding(self, ctx: CallContext, body: dict[str, Any]) -> Plan:
        chain = self.router.candidates(ctx, body.get("model"), EMBEDDING)
        check_embedding(chain[0])
        chain = [chain[0], *(m for m in chain[1:] if _fits(lambda e, _b: check_embedding(e), m, body))]
        calls = [(m, Call(m, body_for(m, body, 0), api_key=ctx.byok_keys.get(m.provider))) for m in chain]
        tokens = embedding_input_bound(body)
        bound = max(self.bound(ctx, m, tokens, 0) for m in chain)
        return Plan(chain, calls, bound, EMBEDDING)

    # -- money ------------------------------------------------------------------------

    async def reserve(self, ctx: CallContext, amount: int) -> LocalHold | None:
        """Hold `amount` on the wallet (from this process's lease), or refuse with 402 before
        any upstream call."""
        if self.leases is None or amount <= 0:
            return None
        result = await self.leases.reserve(ctx.principal.organization_id, amount)
        if isinstance(result, HoldRefused):
            raise InsufficientBalance(
                f"Insufficient balance: this request needs up to {format_micros(result.required)} "
                f"but {format_micros(result.available)} is available. Top up the wallet or lower max_tokens.",
                code="insufficient_balance",
                extra={"available_micros": result.available, "required_micros": result.required},
            )
        return result

    async def admit(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any]) -> Ticket:
        """The limits' admission; a refusal (rate limit, quota, plan) is recorded before it is answered."""
        if ctx.internal:  # the broker's own check on a request already admitted (moderation)
            return Ticket()
        try:
            return await self.admission.admit(ctx, model, body)
        except BrokerError as exc:
            await self.refused(ctx, model, exc)
            raise
        except Exception as exc:  # tenant settings, the matrix's limits: a busy database is a 503
            raise await self.refuse_if_busy(ctx, model, exc) from exc

    async def hold(self, ctx: CallContext, model: ModelEntry, amount: int, ticket: Ticket | None = None) -> LocalHold | None:
        """`reserve`, with a 402 recorded like the other refusals; the refused request gives
        back everything admission counted for it (`ticket`)."""
        try:
            return await self.reserve(ctx, amount)
        except InsufficientBalance as exc:
            await self.refund(ctx, ticket)
            await self.refused(ctx, model, exc)
            raise
        except Exception as exc:  # the lease could not be taken: a busy database is a 503
            busy = await self.refuse_if_busy(ctx, model, exc)
            await self.refund(ctx, ticket)
            raise busy from exc

    async def refuse_if_busy(self, ctx: CallContext, model: ModelEntry, exc: Exception) -> DatabaseBusy:
        """A saturated database before any upstream call: record the refusal (the money writer
        has connections of its own; best effort) and return the 503 to raise. Any other error
        is raised again as it is."""
        busy = database_busy(exc)
        if busy is None:
            raise exc
        if not busy.recorded:
            try:
                await self.refused(ctx, model, busy)
                busy.recorded = True
            except Exception:  # noqa: BLE001 - the database is saturated: the 503 still goes out
                log.warning("could not record a database_busy refusal", exc_info=True)
        return busy

    async def refund(self, ctx: CallContext, ticket: Ticket | None) -> None:
        """A request refused after admission counted it: its counts go back (a refusal uses no limit)."""
        give_back = getattr(self.admission, "refund", None)
        if ticket is not None and give_back is not None:
            await give_back(ctx, ticket)

    async def refused(self, ctx: CallContext, model: ModelEntry, exc: BrokerError) -> None:
        """A request refused before any upstream call: a usage record says why; nothing is charged."""
        byok_budget.settle_budgets(self, ctx, None, None)
        row = usage_row(ctx, model, Usage(), None, status="refused", attempt=0, upstream_ms=0, error=exc)
        metrics.child(metrics.REQUESTS, ctx.endpoint, "refused").inc()
        await self.writer.outcome(self.writer.submit_nowait(Settle(ctx.principal.organization_id, row)))

    async def release(self, ctx: CallContext, hold: LocalHold | None, model: ModelEntry, exc: BaseException) -> None:
        """A failed or abandoned call: give the hold back, record why, charge nothing.
        Recorded before the error is answered; a cancelled request (client gone) cannot wait."""
        if hold is not None and self.leases is not None:
            self.leases.release(hold)
        byok_budget.settle_budgets(self, ctx, None, None)
        cancelled = isinstance(exc, asyncio.CancelledError)
        row = usage_row(ctx, model, Usage(), None, status="cancelled" if cancelled else "error", attempt=0, upstream_ms=0, error=exc)
        pending = self.writer.submit_nowait(Settle(ctx.principal.organization_id, row))
        metrics.child(metrics.REQUESTS, ctx.endpoint, row["status"]).inc()
        if not cancelled:
            await self.writer.outcome(pending)

    def settlement(
        self, ctx: CallContext, hold: LocalHold | None, model: ModelEntry, usage: Usage, cost: Cost, **kw: Any
    ) -> Settle:
        row = usage_row(ctx, model, usage, cost, **kw)
        row["byok"] = model.provider in ctx.byok_keys
        byok_budget.on_settled(self, ctx, model, cost, served=ctx.cache_status != "hit")
        debit = cost.billed_micros if self.billing.ledger_enabled else 0
        lease_id = hold.lease_id if hold is not None else None
        return Settle(ctx.principal.organization_id, row, hold_id=lease_id, debit=debit, from_lease=lease_id is not None)

    def commit(self, op: Settle, hold: LocalHold | None) -> asyncio.Future[Any]:
        """Queue a settlement; when it commits, the request's reservation leaves the lease.
        Await `writer.outcome(...)` of the result, or leave it (a cancelled request)."""
        pending = self.writer.submit_nowait(op)
        if hold is not None and self.leases is not None:
            book = self.leases
            pending.add_done_callback(lambda done: book.settled(hold, done.result()))
        return pending

    async def settle(self, op: Settle, hold: LocalHold | None) -> Settled:
        return await self.writer.outcome(self.commit(op, hold))

    def _record_failure(self, ctx: CallContext) -> Callable[..., None]:
        def record(model: ModelEntry, exc: Exception, attempt: int, elapsed_ms: int) -> None:
            row = usage_row(ctx, model, Usage(), None, status="error", attempt=attempt, upstream_ms=elapsed_ms, error=exc)
            # Not awaited: it joins the same batch as the request's settlement.
            self.writer.submit_nowait(Settle(ctx.principal.organization_id, row))

        return record

    def observe(self, ctx: CallContext, model: ModelEntry, usage: Usage, cost: Cost, status: str = "success") -> None:
        metrics.child(metrics.REQUESTS, ctx.endpoint, status).inc()
        metrics.child(metrics.TOKENS, model.provider, "input").inc(usage.input_tokens)
        metrics.child(metrics.TOKENS, model.provider, "output").inc(usage.output_tokens)
        metrics.child(metrics.COST_MICROS, model.provider).inc(cost.billed_micros)
        metrics.child(metrics.PROVIDER_COST_MICROS, model.provider).inc(cost.provider_micros)

    # -- non-streamed calls -----------------------------------------------------------

    async def chat(self, ctx: CallContext, body: dict[str, Any]) -> Answer:
        await self.load_byok(ctx)
        self.admission.screen(ctx, body, CHAT)  # input rules first: the upstream bodies see the redacted text
        policy = await guard.guard_input(self, ctx, body)
        return await self._run(ctx, body, await byok_budget.planned(self, ctx, body, CHAT), lambda p, c: p.chat(c), policy)

    async def embed(self, ctx: CallContext, body: dict[str, Any]) -> Answer:
        await self.load_byok(ctx)
        self.admission.screen(ctx, body, EMBEDDING)
        return await self._run(ctx, body, await byok_budget.planned(self, ctx, body, EMBEDDING), lambda p, c: p.embed(c))

    async def _run(
        self, ctx: CallContext, body: dict[str, Any], plan: Plan, invoke: Callable[[Provider, Call], Awaitable[Result]],
        policy: Policy = OPEN,
    ) -> Answer:
        primary = plan.chain[0]
        ticket = await self.admit(ctx, primary, body)
        cached = await self.cache.get(ctx, primary, body, plan.kind)
        if cached is not None:
            return await self._serve_cached(ctx, primary, guard.cached_copy(cached, policy), ticket, body, policy)
        hold = await self.hold(ctx, primary, plan.bound_micros, ticket)
        try:
            done = await self.runner.run(plan.calls, invoke, self._record_failure(ctx))
        except BaseException as exc:
            await self.release(ctx, hold, primary, exc)
            await self.admission.settle(ctx, ticket, primary, None)
            raise
        result: Result = done.value
        blocked = await guard.guard_answer(self, ctx, result.body, policy)  # before settling: the record carries the verdict
        cost = self.cost(ctx, done.model, result.usage)
        op = self.settlement(ctx, hold, done.model, result.usage, cost, status="success", attempt=done.attempts, upstream_ms=done.upstream_ms)
        answered = echo_model(result.body, body, done.model)
        if ctx.on_settle is not None:
            op.after = ctx.on_settle(answered, result.usage, op.usage)
        settled = await self.settle(op, hold)
        self.observe(ctx, done.model, result.usage, cost)
        await self.admission.settle(ctx, ticket, done.model, result.usage)
        if blocked is not None:  # generated and paid upstream: billed, then refused
            raise blocked
        await self.cache.put(ctx, done.model, body, plan.kind, result.body)
        billed = Cost(cost.provider_micros, settled.debited, cost.margin_bps)
        return Answer(answered, done.model, billed, settled.balance_after, result.usage, done.attempts, self._headers(ctx, ticket))

    async def _serve_cached(
        self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], ticket: Ticket, request: dict[str, Any],
        policy: Policy = OPEN,
    ) -> Answer:
        """A cache hit is recorded like any request (cached: true) and billed by the cache's policy."""
        blocked = await guard.guard_answer(self, ctx, body, policy)
        usage = usage_from_openai(body.get("usage"))
        cost, saved = self.cache.hit_cost(ctx, model, usage, self.margin_for(ctx))
        op = self.settlement(ctx, None, model, usage, cost, status="success", attempt=0, upstream_ms=0)
        op.usage["cached"] = True
        op.usage["cache_saved_micros"] = saved
        answered = echo_model(body, request, model)
        if ctx.on_settle is not None:
            op.after = ctx.on_settle(answered, usage, op.usage)
        settled = await self.settle(op, None)
        self.observe(ctx, model, usage, cost)
        await self.admission.settle(ctx, ticket, model, usage)
        if blocked is not None:
            raise blocked
        billed = Cost(cost.provider_micros, settled.debited, cost.margin_bps)
        return Answer(answered, model, billed, settled.balance_after, usage, 0, self._headers(ctx, ticket))

    def _headers(self, ctx: CallContext, ticket: Ticket) -> dict[str, str]:
        if ctx.guardrail:
            return {**ticket.headers, "x-aibroker-cache": ctx.cache_status, GUARDRAIL_HEADER: ctx.guardrail}
        return {**ticket.headers, "x-aibroker-cache": ctx.cache_status}

    # -- streamed calls ---------------------------------------------------------------

    async def chat_stream(self, ctx: CallContext, body: dict[str, Any]) -> StreamAnswer:
        """Retries and fallbacks happen until the first chunk; after that the stream is committed."""
        await self.load_byok(ctx)
        self.admission.screen(ctx, body, CHAT)
        policy = await guard.guard_input(self, ctx, body)
        plan = await byok_budget.planned(self, ctx, body, CHAT)
        primary = plan.chain[0]
        ticket = await self.admit(ctx, primary, body)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        cached = await self.cache.get(ctx, primary, body, CHAT)
        if cached is not None:
            answer = await self._serve_cached(ctx, primary, guard.cached_copy(cached, policy), ticket, body, policy)
            chunks = streaming.replay(answer.body, include_usage, answer.cost.billed_micros, answer.balance_micros)
            return StreamAnswer(chunks, primary, self._headers(ctx, ticket))
        hold = await self.hold(ctx, primary, plan.bound_micros, ticket)
        try:
            done = await self.runner.run(plan.calls, streaming.open_stream, self._record_failure(ctx))
            if policy.moderate_output or policy.redact_output_pii:
                await guard.guard_stream(self, ctx, body, done, hold, ticket, policy)
        except guard.ContentFlagged:
            raise  # billed and recorded by guard_stream
        except BaseException as exc:
            await self.release(ctx, hold, primary, exc)
            await self.admission.settle(ctx, ticket, primary, None)
            raise
        relay = streaming.Relay(self, ctx, body, done, hold, ticket, include_usage)
        return StreamAnswer(relay.chunks(), done.model, self._headers(ctx, ticket))


def _fits(check: Callable[[ModelEntry, dict[str, Any]], None], model: ModelEntry, body: dict[str, Any]) -> bool:
    try:
        check(model, body)
    except Exception:
        return False
    return True
