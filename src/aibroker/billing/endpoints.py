"""Wallet HTTP API: the platform admin's top-up / adjustment / refund / ledger routes,
the organization's own balance, ledger and settings, and per-organization margins.

Every movement of money goes through billing.service.post_entry (the process's group
commit writer), idempotent by key: a repeat returns the original outcome and moves
money once.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from aibroker.billing.batch import PostEntry
from aibroker.billing.service import post_entry
from aibroker.billing.wallet_repository import (
    Transaction,
    TransactionPage,
    WalletRepository,
    WalletView,
    csv_export,
    transaction,
    wallet_view,
)
from aibroker.deps import db_session, require, require_admin
from aibroker.errors import Conflict, InvalidRequest
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.kit.money import to_micros
from aibroker.models import Organization
from aibroker.tenancy.auth import Principal
from aibroker.tenancy.roles import Permission
from aibroker.tenancy.service import find_organization

router = APIRouter(tags=["Wallets"])
admin = APIRouter(prefix="/api/admin", tags=["Wallets (admin)"], dependencies=[Depends(require_admin)])

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_MARGIN_BPS = 100_000  # 1000%: anything above is a typo
# One entry moves at most a billion (10**15 micros): balances, sums of many entries, stay
# far inside BIGINT (9.2 * 10**18), and "1e13" is a 422, not an overflow.
MAX_AMOUNT_MICROS = 10**15
MAX_AMOUNT = Decimal(MAX_AMOUNT_MICROS) / 1_000_000


# -- schemas --------------------------------------------------------------------------


class Amount(BaseModel):
    amount_usd: Decimal | None = Field(
        default=None, ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="Amount in the wallet currency, e.g. \"25\" or \"12.50\"."
    )
    amount_micros: int | None = Field(
        default=None, ge=-MAX_AMOUNT_MICROS, le=MAX_AMOUNT_MICROS,
        description="The same in micro-units (1 USD = 1,000,000). Give one of the two.",
    )

    def micros(self) -> int:
        if (self.amount_usd is None) == (self.amount_micros is None):
            raise InvalidRequest("give exactly one of amount_usd or amount_micros", param="amount_usd")
        if self.amount_micros is not None:
            return self.amount_micros
        try:
            return to_micros(self.amount_usd)  # type: ignore[arg-type]
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="amount_usd") from exc


class EntryRequest(Amount):
    idempotency_key: str | None = Field(
        default=None, max_length=200,
        description="Repeat-safe: the same key moves money once and returns the first outcome. "
        "Also accepted as the Idempotency-Key header.",
    )
    payment_ref: str | None = Field(default=None, max_length=200, description="External payment reference.")
    description: str | None = Field(default=None, max_length=2000, description="Shown in the ledger.")


class AdjustmentRequest(EntryRequest):
    """A signed correction: positive credits, negative debits."""

    description: str | None = Field(default=None, min_length=1, max_length=2000, description="Why (required).")
    allow_negative: bool = Field(default=False, description="Allow the available balance to go below zero.")


class EntryResult(BaseModel):
    duplicate: bool = Field(description="True when this idempotency key had already been applied: nothing moved now.")
    transaction: Transaction
    wallet: WalletView


class WalletSettings(BaseModel):
    low_balance_threshold_usd: Decimal | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="Alert when the balance falls below this.")
    low_balance_threshold_micros: int | None = Field(default=None, ge=0, le=MAX_AMOUNT_MICROS, description="The same in micro-units.")


class MarginUpdate(BaseModel):
    margin_bps: int | None = Field(
        ge=0, le=MAX_MARGIN_BPS,
        description="Margin over provider cost in basis points (3000 = 30%); null to use the plan/platform default.",
    )


class MarginView(BaseModel):
    organization_id: str
    margin_bps: int | None = Field(description="The organization's own margin (null: none set).")
    effective_margin_bps: int = Field(description="What its requests are billed with when no plan margin applies.")


# -- helpers --------------------------------------------------------------------------


async def _post(
    request: Request, session: AsyncSession, org_id: str, kind: str, amount: int, body: EntryRequest, *, allow_negative: bool = False
) -> EntryResult:
    key = body.idempotency_key or request.headers.get(IDEMPOTENCY_HEADER) or new_id("auto")
    repo = WalletRepository(session)
    earlier = await repo.entry_by_key(key)
    if earlier is not None and (earlier.organization_id, earlier.kind, earlier.amount_micros) != (org_id, kind, amount):
        raise Conflict(
            "this idempotency key was already used for a different operation", param="idempotency_key", code="idempotency_key_reused"
        )
    op = PostEntry(
        org_id, kind, amount, idempotency_key=key, payment_ref=body.payment_ref,
        description=body.description, allow_negative=allow_negative,
    )
    posted = await post_entry(services(request).writer, op)
    await session.rollback()  # a fresh snapshot: the writer committed on its own connection
    entry = await repo.entry_by_key(key)
    assert entry is not None
    return EntryResult(duplicate=posted.duplicate, transaction=transaction(entry), wallet=wallet_view(await repo.wallet(org_id)))


async def _org_id(session: AsyncSession, ref: str) -> str:
    return (await find_organization(session, ref)).id


def _csv(request: Request, org_id: str, kind: str | None) -> Response:
    chunks = csv_export(services(request).db.sessions, org_id, kind=kind)
    headers = {"content-disposition": f'attachment; filename="ledger-{org_id}.csv"'}
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8", headers=headers)


async def _transactions(
    request: Request, session: AsyncSession, org_id: str, limit: int, cursor: str | None, kind: str | None, fmt: str
) -> Response | TransactionPage:
    if fmt == "csv":
        return _csv(request, org_id, kind)
    return await WalletRepository(session).page(org_id, limit=limit, cursor=cursor, kind=kind)


def _threshold(body: WalletSettings) -> int:
    if (body.low_balance_threshold_usd is None) == (body.low_balance_threshold_micros is None):
        raise InvalidRequest("give exactly one of low_balance_threshold_usd or low_balance_threshold_micros", param="low_balance_threshold_usd")
    if body.low_balance_threshold_micros is not None:
        return body.low_balance_threshold_micros
    try:
        return to_micros(body.low_balance_threshold_usd)  # type: ignore[arg-type]
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="low_balance_threshold_usd") from exc


KindFilter = Literal["recharge", "debit", "refund", "adjustment", "grant"]
LIMIT = Query(50, ge=1, le=500, description="Entries per page.")
CURSOR = Query(None, description="`next_cursor` of the previous page.")
KIND = Query(None, description="Only entries of this kind.")
FORMAT = Query("json", description="`csv` streams the whole ledger (newest first) as a CSV file.")
# ?format=csv answers text/csv: documented beside the JSON page
CSV_EXPORT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {"schema": {"type": "string"}}}}}


# -- admin ----------------------------------------------------------------------------


@admin.get("/wallets/{organization}", response_model=WalletView)
async def admin_wallet(organization: str, session: AsyncSession = Depends(db_session, scope="function")) -> WalletView:
    """An organization's wallet (organization: id or slug)."""
    return wallet_view(await WalletRepository(session).wallet(await _org_id(session, organization)))


@admin.post("/wallets/{organization}/topup", response_model=EntryResult)
async def admin_topup(organization: str, body: EntryRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> EntryResult:
    """Recharge a wallet (a positive `recharge` ledger entry). Idempotent by key."""
    org_id = await _org_id(session, organization)
    return await _post(request, session, org_id, "recharge", body.micros(), body)


@admin.post("/wallets/{organization}/refund", response_model=EntryResult)
async def admin_refund(organization: str, body: EntryRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> EntryResult:
    """Give money back to a wallet (a positive `refund` entry), e.g. for a failed service. Idempotent by key."""
    org_id = await _org_id(session, organization)
    return await _post(request, session, org_id, "refund", body.micros(), body)


@admin.post("/wallets/{organization}/adjustment", response_model=EntryResult)
async def admin_adjustment(
    organization: str, body: AdjustmentRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> EntryResult:
    """A signed correction (positive credits, negative debits), with a required description.
    A debit beyond the available balance is refused (409) unless `allow_negative`."""
    if not body.description:
        raise InvalidRequest("an adjustment needs a description (why)", param="description")
    org_id = await _org_id(session, organization)
    return await _post(request, session, org_id, "adjustment", body.micros(), body, allow_negative=body.allow_negative)


@admin.get("/wallets/{organization}/transactions", response_model=TransactionPage, responses=CSV_EXPORT)
async def admin_transactions(
    organization: str, request: Request, limit: int = LIMIT, cursor: str | None = CURSOR,
    kind: KindFilter | None = KIND, format: Literal["json", "csv"] = FORMAT, session: AsyncSession = Depends(db_session, scope="function"),
) -> Response | TransactionPage:
    """An organization's ledger, newest first, paginated by cursor (`?format=csv`: CSV export)."""
    return await _transactions(request, session, await _org_id(session, organization), limit, cursor, kind, format)


@admin.put("/wallets/{organization}/settings", response_model=WalletView)
async def admin_wallet_settings(organization: str, body: WalletSettings, session: AsyncSession = Depends(db_session, scope="function")) -> WalletView:
    """Set an organization's low-balance threshold."""
    org_id = await _org_id(session, organization)
    repo = WalletRepository(session)
    await repo.set_threshold(org_id, _threshold(body))
    await session.commit()
    return wallet_view(await repo.wallet(org_id))


@admin.put("/organizations/{organization}/margin", response_model=MarginView)
async def admin_set_margin(
    organization: str, body: MarginUpdate, request: Request, session: AsyncSession = Depends(db_session, scope="function")
) -> MarginView:
    """Set (or clear, with null) an organization's margin over provider cost. It applies at once
    in this process and within the auth cache time (AIBROKER_AUTH_CACHE_SECONDS) elsewhere."""
    org_id = await _org_id(session, organization)
    await session.execute(
        update(Organization).where(Organization.id == org_id).values(margin_bps=body.margin_bps, updated_at=utcnow())
    )
    await session.commit()
    svc = services(request)
    svc.auth.forget()
    default = svc.settings.billing.default_margin_bps
    effective = default if body.margin_bps is None else body.margin_bps
    return MarginView(organization_id=org_id, margin_bps=body.margin_bps, effective_margin_bps=effective)


# -- the organization's own -----------------------------------------------------------


@router.get("/api/wallet", response_model=WalletView)
async def my_wallet(who: Principal = Depends(require(Permission.VIEW_USAGE)), session: AsyncSession = Depends(db_session, scope="function")) -> WalletView:
    """The caller's wallet: balance, held (requests in flight), available, threshold."""
    return wallet_view(await WalletRepository(session).wallet(who.organization_id))


@router.get("/api/wallet/transactions", response_model=TransactionPage, responses=CSV_EXPORT)
async def my_transactions(
    request: Request, limit: int = LIMIT, cursor: str | None = CURSOR, kind: KindFilter | None = KIND,
    format: Literal["json", "csv"] = FORMAT, who: Principal = Depends(require(Permission.VIEW_USAGE)), session: AsyncSession = Depends(db_session, scope="function"),
) -> Response | TransactionPage:
    """The caller's ledger, newest first, paginated by cursor (`?format=csv`: CSV export)."""
    return await _transactions(request, session, who.organization_id, limit, cursor, kind, format)


@router.put("/api/wallet/settings", response_model=WalletView)
async def my_wallet_settings(
    body: WalletSettings, who: Principal = Depends(require(Permission.MANAGE_BILLING)), session: AsyncSession = Depends(db_session, scope="function")
) -> WalletView:
    """Set the caller's low-balance threshold (an alert event fires once when the balance crosses below it)."""
    repo = WalletRepository(session)
    await repo.set_threshold(who.organization_id, _threshold(body))
    await session.commit()
    return wallet_view(await repo.wallet(who.organization_id))
