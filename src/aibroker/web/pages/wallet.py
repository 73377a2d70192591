"""/console/wallet: balance, the ledger (newest first, CSV), top-up through Stripe or Mercado
Pago checkout, and the low-balance alert threshold. The same services as /api/wallet and
/api/payments/checkout."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from aibroker.billing.endpoints import _csv
from aibroker.billing.wallet_repository import WalletRepository, wallet_view
from aibroker.errors import BrokerError
from aibroker.gateway.http import services
from aibroker.payments.endpoints import CheckoutRequest, start_checkout
from aibroker.tenancy.roles import Permission
from aibroker.web import forms
from aibroker.web.auth import ConsoleUser, action, page
from aibroker.web.flash import flash
from aibroker.web.nav import NavEntry
from aibroker.web.render import render

router = APIRouter()
NAV = [NavEntry("Wallet", "/console/wallet", Permission.VIEW_USAGE)]
KINDS = ("recharge", "debit", "refund", "adjustment", "grant")
PROVIDERS = {"stripe": "Stripe (card)", "mercadopago": "Mercado Pago"}
PAGE_SIZE = 25


def _back(request: Request, message: str, kind: str = "ok") -> Response:
    return flash(request, RedirectResponse("/console/wallet", status_code=303), message, kind)


@router.get("/console/wallet")
async def wallet_page(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
    """Balance, ledger and (MANAGE_BILLING) top-up and alert settings."""
    kind = request.query_params.get("kind") or None
    if kind not in (None, *KINDS):
        kind = None
    cursor = request.query_params.get("cursor") or None
    async with services(request).db.sessions() as session:
        repo = WalletRepository(session)
        wallet = wallet_view(await repo.wallet(user.organization_id))
        ledger = await repo.page(user.organization_id, limit=PAGE_SIZE, cursor=cursor, kind=kind)
    return render(request, "wallet.html", title="Wallet", wallet=wallet, ledger=ledger, kind=kind, kinds=KINDS, providers=PROVIDERS,
                  can_pay=user.can(Permission.MANAGE_BILLING), paid=request.query_params.get("paid") == "1")


@router.get("/console/wallet/transactions.csv")
async def wallet_csv(request: Request, user: ConsoleUser = Depends(page(Permission.VIEW_USAGE))) -> Response:
    """The whole ledger as CSV (as /api/wallet/transactions?format=csv)."""
    kind = request.query_params.get("kind") or None
    return _csv(request, user.organization_id, kind if kind in KINDS else None)


@router.post("/console/wallet/topup")
async def top_up(request: Request, user: ConsoleUser = Depends(action(Permission.MANAGE_BILLING))) -> Response:
    """Start a checkout for a recharge and send the browser to the provider's payment page.
    The wallet is credited when the provider's webhook confirms the payment, not before."""
    form = await request.form()
    try:
        value, _ = forms.amount(form, "amount", label="Amount")  # type: ignore[misc]
        provider = forms.text(form, "provider", max_length=20) or "stripe"
        if provider not in PROVIDERS:
            raise forms.FormError("Choose Stripe or Mercado Pago.")
    except forms.FormError as bad:
        return _back(request, str(bad), "error")
    base = str(request.base_url).rstrip("/")
    body = CheckoutRequest(provider=provider, amount=value, success_url=f"{base}/console/wallet?paid=1", cancel_url=f"{base}/console/wallet")
    try:
        async with services(request).db.sessions() as session:
            created = await start_checkout(request, session, user.organization_id, body)
    except BrokerError as refused:
        return _back(request, refused.message, "error")
    return RedirectResponse(created["url"], status_code=303)


@router.post("/console/wallet/settings")
async def wallet_settings(request: Request, user: ConsoleUser = Depends(action(Permission.MANAGE_BILLING))) -> Response:
    """Set the low-balance alert threshold (0 turns the alert off)."""
    form = await request.form()
    try:
        _, micros = forms.amount(form, "threshold", label="Alert threshold")  # type: ignore[misc]
    except forms.FormError as bad:
        return _back(request, str(bad), "error")
    async with services(request).db.sessions() as session:
        await WalletRepository(session).set_threshold(user.organization_id, micros)
        await session.commit()
    return _back(request, "Low-balance alert saved.")
