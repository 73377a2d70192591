"""A/B splits (written and checked here; routed by splits_book), their per-arm report, and
feedback. Every query is scoped to the caller's organization."""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, distinct, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.ai.schemas import FeedbackCreate, SplitArm, SplitCreate, SplitUpdate
from aibroker.ai.scope import owner_of
from aibroker.catalog.registry import CHAT
from aibroker.catalog.service import Catalog
from aibroker.db import upsert_insert
from aibroker.errors import BrokerError, Conflict, InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import AiFeedback, AiSplit, UsageRecord
from aibroker.tenancy.auth import Principal


def split_view(row: AiSplit) -> dict[str, Any]:
    return {"id": row.id, "object": "ai_split", "feature": row.feature, "name": row.name, "description": row.description,
            "arms": row.arms, "active": row.active, "created_at": row.created_at, "updated_at": row.updated_at}


def checked_arms(catalog: Catalog, arms: list[SplitArm]) -> list[dict[str, Any]]:
    """The arms as stored: known chat models (catalog ids), unique names, weights summing to 100."""
    total = sum(a.weight for a in arms)
    if total != 100:
        raise InvalidRequest(f"The arms' weights sum to {total}; they must sum to 100.", param="arms", code="split_weights_invalid")
    out: list[dict[str, Any]] = []
    for index, arm in enumerate(arms):
        try:
            entry = catalog.resolve(arm.model)
        except BrokerError:
            raise InvalidRequest(f"Arm {index}: unknown model '{arm.model}'.", param=f"arms.{index}.model",
                                 code="split_model_unknown") from None
        if entry.kind != CHAT:
            raise InvalidRequest(f"Arm {index}: '{entry.id}' is not a chat model.", param=f"arms.{index}.model",
                                 code="split_model_unknown")
        out.append({"name": arm.name or entry.id, "model": entry.id, "weight": arm.weight})
    names = [a["name"] for a in out]
    if len(set(names)) != len(names):
        raise InvalidRequest("Two arms have the same name (or model): name them apart.", param="arms", code="split_arms_duplicate")
    return out


async def get(session: AsyncSession, principal: Principal, split_id: str) -> AiSplit:
    row = await session.scalar(select(AiSplit).where(AiSplit.id == split_id, AiSplit.organization_id == principal.organization_id))
    if row is None:
        raise NotFound(f"No A/B split '{split_id}'.", param="id", code="split_not_found")
    return row


async def list_for(session: AsyncSession, principal: Principal) -> list[AiSplit]:
    query = select(AiSplit).where(AiSplit.organization_id == principal.organization_id).order_by(AiSplit.created_at, AiSplit.id)
    return list((await session.scalars(query)).all())


async def create(session: AsyncSession, principal: Principal, catalog: Catalog, body: SplitCreate) -> AiSplit:
    arms = checked_arms(catalog, body.arms)
    taken = await session.scalar(select(AiSplit.id).where(AiSplit.organization_id == principal.organization_id,
                                                          AiSplit.feature == body.feature))
    if taken is not None:
        raise Conflict(f"The feature '{body.feature}' already has a split ({taken}); change that one.",
                       param="feature", code="split_exists", extra={"split_id": taken})
    now = utcnow()
    row = AiSplit(id=new_id("split"), organization_id=principal.organization_id, feature=body.feature, name=body.name,
                  description=body.description, arms=arms, active=body.active, created_at=now, updated_at=now)
    try:
        async with session.begin_nested():  # a concurrent create of the same feature loses cleanly
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise Conflict(f"The feature '{body.feature}' already has a split.", param="feature", code="split_exists") from None
    return row


async def update(session: AsyncSession, principal: Principal, catalog: Catalog, split_id: str, body: SplitUpdate) -> AiSplit:
    row = await get(session, principal, split_id)
    fields = body.model_fields_set
    if "arms" in fields and body.arms is not None:
        row.arms = checked_arms(catalog, body.arms)
    for name in ("name", "description"):
        if name in fields:
            setattr(row, name, getattr(body, name))
    if "active" in fields and body.active is not None:
        row.active = body.active
    row.updated_at = utcnow()
    return row


async def report(session: AsyncSession, principal: Principal, split_id: str) -> dict[str, Any]:
    """Per arm: requests (distinct request ids), errors (requests without a success), refusals,
    latency (mean and max of answered requests, ms), tokens, billed cost, and feedback."""
    row = await get(session, principal, split_id)
    scope = (UsageRecord.organization_id == principal.organization_id, UsageRecord.ab_split_id == row.id)
    ok = UsageRecord.status == "success"
    stats = (await session.execute(
        select(
            UsageRecord.ab_arm,
            func.count(distinct(UsageRecord.request_id)),
            func.count(distinct(UsageRecord.request_id)).filter(ok),
            func.count(distinct(UsageRecord.request_id)).filter(UsageRecord.status == "refused"),
            func.avg(case((ok, UsageRecord.latency_ms))),
            func.max(case((ok, UsageRecord.latency_ms))),
            func.coalesce(func.sum(UsageRecord.input_tokens), 0),
            func.coalesce(func.sum(UsageRecord.output_tokens), 0),
            func.coalesce(func.sum(UsageRecord.billed_cost_micros), 0),
        ).where(*scope).group_by(UsageRecord.ab_arm)
    )).all()
    arm_requests = select(UsageRecord.ab_arm, UsageRecord.request_id).where(*scope).distinct().subquery()
    feedback = (await session.execute(
        select(arm_requests.c.ab_arm, func.count(AiFeedback.id), func.avg(AiFeedback.score))
        .join(AiFeedback, (AiFeedback.request_id == arm_requests.c.request_id) & (AiFeedback.organization_id == principal.organization_id))
        .group_by(arm_requests.c.ab_arm)
    )).all()
    scores = {arm: (int(count), float(mean) if mean is not None else None) for arm, count, mean in feedback}
    by_arm = {s[0]: s for s in stats}
    arms = []
    for arm in row.arms:
        s = by_arm.get(arm["name"])
        requests, succeeded, refused = (int(s[1]), int(s[2]), int(s[3])) if s else (0, 0, 0)
        count, mean = scores.get(arm["name"], (0, None))
        arms.append({
            **arm, "requests": requests, "succeeded": succeeded, "refused": refused, "errors": requests - succeeded - refused,
            "latency_ms_avg": round(float(s[4]), 1) if s and s[4] is not None else None,
            "latency_ms_max": int(s[5]) if s and s[5] is not None else None,
            "input_tokens": int(s[6]) if s else 0, "output_tokens": int(s[7]) if s else 0,
            "cost_micros": int(s[8]) if s else 0,
            "feedback": {"count": count, "score_avg": round(mean, 4) if mean is not None else None},
        })
    return {"split_id": row.id, "feature": row.feature, "active": row.active, "arms": arms}


async def give_feedback(session: AsyncSession, principal: Principal, body: FeedbackCreate) -> dict[str, Any]:
    """Score a request of the caller's organization (404 for any other); a later score replaces an earlier one."""
    known = await session.scalar(select(UsageRecord.id).where(
        UsageRecord.organization_id == principal.organization_id, UsageRecord.request_id == body.request_id).limit(1))
    if known is None:
        raise NotFound(f"No request '{body.request_id}' in this organization.", param="request_id", code="request_not_found")
    now = utcnow()
    insert = upsert_insert(session, AiFeedback.__table__).values(
        id=new_id("fb"), organization_id=principal.organization_id, request_id=body.request_id, score=body.score,
        comment=body.comment, author_id=owner_of(principal), created_at=now, updated_at=now,
    )
    await session.execute(insert.on_conflict_do_update(
        index_elements=["organization_id", "request_id"],
        set_={"score": body.score, "comment": body.comment, "author_id": owner_of(principal), "updated_at": now},
    ))
    return {"request_id": body.request_id, "score": body.score, "comment": body.comment, "updated_at": now}
