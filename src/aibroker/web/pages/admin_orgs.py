"""Platform pages: organizations (list and search, plan, status, margin) and wallet
adjustments, through the same services as /api/admin/organizations and /api/admin/wallets."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.billing.batch import PostEntry
from aibroker.billing.endpoints import MAX_AMOUNT_MICROS, MAX_MARGIN_BPS
from aibroker.billing.service import post_entry
from aibroker.billing.wallet_repository import WalletRepository, transaction, wallet_view
from aibroker.errors import BrokerError, Conflict, InvalidRequest, NotFound
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.limits import plan_service
from aibroker.models import Organization, Wallet
from aibroker.tenancy import org_admin
from aibroker.web.formatting import money
from aibroker.web.pages import admin_common as common

router = APIRouter(prefix="/console/admin", include_in_schema=False, dependencies=[Depends(common.super_admin)])
NAV = common.nav("Organizations", "/console/admin/organizations")
RECENT_ENTRIES = 20
PAGE_SIZE = 200


@router.get("")
async def admin_home() -> Response:
    """The platform section starts at the organizations."""
    return RedirectResponse("/console/admin/organizations", status_code=303)


@router.get("/organizations")
async def organizations(request: Request, q: str = "", session: AsyncSession = common.SESSION) -> Response:
    """Every organization (searched by name, slug or id) with plan, status and balance; the plans."""
    query = select(Organization, Wallet.balance_micros).outerjoin(Wallet, Wallet.organization_id == Organization.id)
    term = q.strip()[:200]
    if term:
        like = f"%{term.lower()}%"
        query = query.where(or_(Organization.name.ilike(like), Organization.slug.ilike(like), Organization.id.ilike(like)))
    rows = (await session.execute(query.order_by(Organization.created_at).limit(PAGE_SIZE))).all()
    orgs = [{**org_admin.org_view(org), "balance_micros": balance or 0} for org, balance in rows]
    plans = await plan_service.list_plans(session)  # as GET /api/admin/plans: with how many organizations are on each
    return common.page(request, "admin/organizations.html", title="Organizations", organizations=orgs, q=term, limit=PAGE_SIZE,
                       plans=plans)


async def _details(request: Request, session: AsyncSession, org: Organization) -> dict[str, Any]:
    details = await org_admin.organization_details(session, org)
    repo = WalletRepository(session)
    wallet = await session.scalar(select(Wallet).where(Wallet.organization_id == org.id))
    entries = [transaction(e) for e in await repo.entries(org.id, limit=RECENT_ENTRIES)] if wallet else []
    return {
        "org": details,
        "wallet": wallet_view(wallet) if wallet else None,
        "entries": entries,
        "plans": [p["slug"] for p in await plan_service.list_plans(session)],
        "statuses": org_admin.STATUSES,
        "margin_bps": org.margin_bps,
        "effective_margin_bps": common.effective_margin(services(request), org),
        "idempotency_key": new_id("con"),  # one per rendered form: a double submit moves money once
    }


async def _org(session: AsyncSession, org_id: str) -> Organization:
    org = await session.get(Organization, org_id)
    if org is None:
        raise NotFound(f"no organization '{org_id}'")
    return org


async def _detail_page(request: Request, session: AsyncSession, org: Organization, *, error: BrokerError | None = None,
                       form: dict[str, str] | None = None) -> Response:
    context = await _details(request, session, org)
    return common.page(request, "admin/organization.html", title=org.name, error=error, form=form or {},
                       status_code=error.status_code if error else 200, **context)


@router.get("/organizations/{org_id}")
async def organization(request: Request, org_id: str, session: AsyncSession = common.SESSION) -> Response:
    """One organization: its plan, status, margin, wallet and latest ledger entries."""
    return await _detail_page(request, session, await _org(session, org_id))


@router.post("/organizations/{org_id}/settings", dependencies=[Depends(common.csrf)])
async def change_settings(request: Request, org_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Change the plan and status (suspend, reactivate) as PATCH /api/admin/organizations does."""
    org = await _org(session, org_id)
    form = await common.form(request)
    try:
        await org_admin.change_organization(session, org, plan=form.get("plan") or None, status=form.get("status") or None)
        await session.commit()
    except BrokerError as error:
        await session.rollback()
        return await _detail_page(request, session, await _org(session, org_id), error=error, form=form)
    services(request).auth.forget()  # as the JSON route: this process applies it at once
    return common.redirect(request, f"/console/admin/organizations/{org_id}", f"Saved: plan {org.plan}, status {org.status}.")


def _margin(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        value = int(text.strip())
    except ValueError as exc:
        raise InvalidRequest("the margin is a whole number of basis points (3000 = 30%)", param="margin_bps") from exc
    if not 0 <= value <= MAX_MARGIN_BPS:
        raise InvalidRequest(f"the margin must be between 0 and {MAX_MARGIN_BPS} basis points", param="margin_bps")
    return value


@router.post("/organizations/{org_id}/margin", dependencies=[Depends(common.csrf)])
async def change_margin(request: Request, org_id: str, session: AsyncSession = common.SESSION) -> Response:
    """Set or clear (empty) the organization's margin, as PUT /api/admin/organizations/{id}/margin."""
    org = await _org(session, org_id)
    form = await common.form(request)
    try:
        margin = _margin(form.get("margin_bps", ""))
    except BrokerError as error:
        return await _detail_page(request, session, org, error=error, form=form)
    await session.execute(update(Organization).where(Organization.id == org.id).values(margin_bps=margin, updated_at=utcnow()))
    await session.commit()
    services(request).auth.forget()
    said = "cleared (the plan or platform default applies)" if margin is None else f"set to {margin} bps"
    return common.redirect(request, f"/console/admin/organizations/{org_id}", f"Margin {said}.")


def _adjustment(org_id: str, form: dict[str, str]) -> PostEntry:
    amount = common.parse_micros(form.get("amount", ""), param="amount", bound=MAX_AMOUNT_MICROS)
    reason = form.get("reason", "").strip()
    if not reason:
        raise InvalidRequest("an adjustment needs a reason", param="reason")
    key = form.get("idempotency_key", "").strip()[:200] or new_id("con")
    return PostEntry(org_id, "adjustment", amount, idempotency_key=key, description=reason[:2000],
                     allow_negative=form.get("allow_negative") == "on")


@router.post("/organizations/{org_id}/adjustment", dependencies=[Depends(common.csrf)])
async def adjust_wallet(request: Request, org_id: str, session: AsyncSession = common.SESSION) -> Response:
    """A signed wallet correction with a reason, posted through the ledger service (the money
    writer, idempotent by the form's key) exactly as POST /api/admin/wallets/{org}/adjustment."""
    org = await _org(session, org_id)
    form = await common.form(request)
    try:
        op = _adjustment(org.id, form)
        earlier = await WalletRepository(session).entry_by_key(op.idempotency_key or "")
        if earlier is not None and (earlier.organization_id, earlier.kind, earlier.amount_micros) != (org.id, op.kind, op.amount):
            raise Conflict("this form was already used for another adjustment: reload the page", param="idempotency_key")
        posted = await post_entry(services(request).writer, op)
    except BrokerError as error:
        return await _detail_page(request, session, org, error=error, form=form)
    said = "already applied (nothing moved again)" if posted.duplicate else f"applied: balance {money(posted.balance_after)}"
    return common.redirect(request, f"/console/admin/organizations/{org_id}", f"Adjustment {said}.")
