"""Payment history: an organization's payments (OWNER / ADMIN / DISTRIBUTOR), one payment with
the ledger entries it produced, and the platform admin's listing across organizations."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session, require_admin
from aibroker.errors import NotFound
from aibroker.gateway.http import authenticate
from aibroker.models import LedgerEntry, Payment
from aibroker.tenancy.roles import Permission
from aibroker.tenancy.scoped import scoped

router = APIRouter(tags=["Payments"])

LIMIT = Query(50, ge=1, le=200, description="Page size.")
CURSOR = Query(None, max_length=80, description="`next_cursor` of the previous page (older payments).")
Status = Literal["pending", "succeeded", "failed", "refunded", "partially_refunded", "disputed"]


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()  # SQLite drops the zone; stored UTC


def _view(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id, "organization_id": p.organization_id, "provider": p.provider, "external_id": p.external_id,
        "kind": p.kind, "plan": p.plan.upper() if p.plan else None, "amount_micros": p.amount_micros, "currency": p.currency,
        "status": p.status, "refunded_micros": p.refunded_micros, "disputed_micros": p.disputed_micros,
        "dispute_status": p.dispute_status, "organization_code_id": p.organization_code_id,
        "created_at": _iso(p.created_at), "updated_at": _iso(p.updated_at),
    }


async def _page(session: AsyncSession, query: Select[Any], limit: int, cursor: str | None) -> dict[str, Any]:
    """Newest first; ids are time-ordered, so the last id of a page is the cursor."""
    if cursor:
        query = query.where(Payment.id < cursor)
    rows = list(await session.scalars(query.order_by(Payment.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"object": "list", "data": [_view(p) for p in rows], "has_more": more, "next_cursor": rows[-1].id if more else None}


@router.get("/api/payments")
async def list_payments(
    request: Request, limit: int = LIMIT, cursor: str | None = CURSOR,
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """The caller's organization's payments at Stripe and Mercado Pago, newest first, with
    their status (pending, succeeded, failed, refunded, partially_refunded, disputed)."""
    who = await authenticate(request, permission=Permission.MANAGE_BILLING)
    return await _page(session, scoped(Payment, who.organization_id), limit, cursor)


@router.get("/api/payments/{payment_id}")
async def get_payment(payment_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """One payment and the ledger entries it produced (its credit, and the reversals of its
    refunds and disputes). Another organization's payment is 404."""
    who = await authenticate(request, permission=Permission.MANAGE_BILLING)
    payment = await session.scalar(scoped(Payment, who.organization_id).where(Payment.id == payment_id))
    if payment is None:
        raise NotFound(f"No payment '{payment_id}'.", param="payment_id", code="payment_not_found")
    entries: list[LedgerEntry] = []
    if payment.ledger_key:
        entries = list(await session.scalars(
            scoped(LedgerEntry, who.organization_id).where(or_(
                LedgerEntry.idempotency_key == payment.ledger_key,
                LedgerEntry.idempotency_key.startswith(f"reversal:{payment.ledger_key}:", autoescape=True),
            )).order_by(LedgerEntry.id)
        ))
    return {**_view(payment), "ledger_entries": [
        {"id": e.id, "kind": e.kind, "amount_micros": e.amount_micros, "balance_after_micros": e.balance_after_micros,
         "reference": e.payment_ref, "description": e.description, "created_at": _iso(e.created_at)} for e in entries
    ]}


@router.get("/api/admin/payments", dependencies=[Depends(require_admin)])
async def admin_list_payments(
    organization_id: str | None = Query(None, max_length=40),
    provider: Literal["stripe", "mercadopago"] | None = None,
    status: Status | None = None,
    kind: Literal["recharge", "subscription"] | None = None,
    limit: int = LIMIT, cursor: str | None = CURSOR,
    session: AsyncSession = Depends(db_session, scope="function"),
) -> dict[str, Any]:
    """Platform admin: payments across every organization, newest first, filtered."""
    query = select(Payment)
    for column, value in ((Payment.organization_id, organization_id), (Payment.provider, provider),
                          (Payment.status, status), (Payment.kind, kind)):
        if value is not None:
            query = query.where(column == value)
    return await _page(session, query, limit, cursor)
