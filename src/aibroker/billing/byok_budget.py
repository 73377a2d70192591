"""Monthly limits on organizations' own provider keys, enforced exactly across processes.

Before the upstream call, the most the request can cost at the provider (catalog prices,
no margin: the same bound as the wallet hold) is added to the key's month in one
conditional UPDATE; it succeeds only when the sum stays within the limit. After the call the
difference to the actual cost is given back (all of it when the call failed, was refused or
was served from the cache). A request that the limit cannot take is served with the
platform's key and price instead (usage record `byok` false): the organization keeps
working, paid from its wallet. A process that dies mid-call leaves its bound counted: the
limit can be under-used, never passed.

Also the hooks that keep "last used" (billing/activity.py) on settlement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, update

from aibroker.billing.activity import month_of
from aibroker.billing.pricing import Cost
from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.context import CallContext
from aibroker.kit.clock import utcnow

if TYPE_CHECKING:
    from aibroker.gateway.service import Gateway

log = logging.getLogger(__name__)
_pending: set[asyncio.Future[Any]] = set()  # adjustments in flight (a reference keeps them alive)


async def reserve(sessions: Any, credential_id: str, month: str, need: int) -> bool:
    from aibroker.models import ProviderCredential

    table = ProviderCredential.__table__
    current = case((table.c.usage_month == month, table.c.usage_micros), else_=0)
    async with sessions() as session:
        done = await session.execute(
            update(table).where(table.c.id == credential_id, table.c.monthly_limit_micros.is_not(None),
                                current + need <= table.c.monthly_limit_micros)
            .values(usage_micros=current + need, usage_month=month)
        )
        await session.commit()
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def adjust(sessions: Any, credential_id: str, month: str, delta: int) -> None:
    from aibroker.models import ProviderCredential

    table = ProviderCredential.__table__
    after = table.c.usage_micros + delta
    try:
        async with sessions() as session:
            await session.execute(
                update(table).where(table.c.id == credential_id, table.c.usage_month == month)
                .values(usage_micros=case((after < 0, 0), else_=after))
            )
            await session.commit()
    except Exception:  # the reservation stays counted: the limit is under-used, never passed
        log.warning("could not settle a provider key's monthly usage", exc_info=True)


async def reserve_budgets(gateway: Gateway, ctx: CallContext, chain: list[ModelEntry], bound_of: Callable[[ModelEntry], int]) -> None:
    """Reserve each limited key the chain may use; a key that cannot take it is dropped
    from this request (the platform's key and price apply)."""
    store = gateway.byok
    if store is None or not ctx.byok_keys:
        return
    meta = store.meta(ctx.principal.organization_id)
    limited = {p: m for p, m in meta.items() if p in ctx.byok_keys and m.monthly_limit_micros is not None}
    if not limited:
        return
    month = month_of(utcnow())
    for provider in sorted({m.provider for m in chain if m.provider in limited}):
        need = max(bound_of(m) for m in chain if m.provider == provider)
        credential = limited[provider].credential_id
        if await reserve(store._sessions, credential, month, need):
            ctx.byok_reserved[provider] = (credential, need, month)
        else:
            ctx.byok_keys.pop(provider, None)


def settle_budgets(gateway: Gateway, ctx: CallContext, model: ModelEntry | None, cost: Cost | None) -> None:
    """After the call (or its failure / refusal): each reservation becomes what was used."""
    reserved, ctx.byok_reserved = ctx.byok_reserved, {}
    store = gateway.byok
    for provider, (credential, need, month) in reserved.items():
        used = cost.provider_micros if cost is not None and model is not None and model.provider == provider else 0
        if used != need and store is not None:
            future = asyncio.ensure_future(adjust(store._sessions, credential, month, used - need))
            _pending.add(future)
            future.add_done_callback(_pending.discard)


def on_settled(gateway: Gateway, ctx: CallContext, model: ModelEntry, cost: Cost, *, served: bool) -> None:
    """A settled request: the limits' reservations, and the last-used times (memory only)."""
    counted = dict(ctx.byok_reserved)
    settle_budgets(gateway, ctx, model if served else None, cost)
    activity = gateway.activity
    if activity is None or not served:
        return
    activity.touch_provider(model.provider)
    if model.provider in ctx.byok_keys and gateway.byok is not None:
        meta = gateway.byok.meta(ctx.principal.organization_id).get(model.provider)
        if meta is not None:
            activity.touch_credential(meta.credential_id, 0 if model.provider in counted else cost.provider_micros)


async def reserve_for_tokens(gateway: Gateway, ctx: CallContext, body: dict[str, Any], kind: str) -> None:
    """`reserve_budgets` for a chat or embedding request, with the bounds its hold uses."""
    if not ctx.byok_keys or gateway.byok is None:
        return
    from aibroker.billing.estimate import chat_input_bound, embedding_input_bound
    from aibroker.billing.pricing import bound_cost
    from aibroker.catalog.registry import CHAT
    from aibroker.gateway.validation import capped_output

    chain = gateway.router.candidates(ctx, body.get("model"), kind)
    cap = gateway.settings.default_max_tokens
    if kind == CHAT:
        def bound(m: ModelEntry) -> int:
            return bound_cost(m, chat_input_bound(body, m.context_length), capped_output(m, body, cap), 0)
    else:
        tokens = embedding_input_bound(body)

        def bound(m: ModelEntry) -> int:
            return bound_cost(m, tokens, 0, 0)
    await reserve_budgets(gateway, ctx, chain, bound)


async def planned(gateway: Gateway, ctx: CallContext, body: dict[str, Any], kind: str) -> Any:
    """The gateway's plan for a chat / embedding request, after the monthly limits of the
    organization's own keys had their say (a plan that fails gives its reservations back)."""
    from aibroker.catalog.registry import CHAT

    await reserve_for_tokens(gateway, ctx, body, kind)
    try:
        return gateway.plan_chat(ctx, body) if kind == CHAT else gateway.plan_embedding(ctx, body)
    except BaseException:
        settle_budgets(gateway, ctx, None, None)
        raise
