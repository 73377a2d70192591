"""Checkout (Stripe, Mercado Pago), their webhooks, and an organization's subscription."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from aibroker.deps import db_session
from aibroker.errors import InvalidRequest
from aibroker.gateway.http import services
from aibroker.kit.clock import utcnow
from aibroker.kit.money import to_micros
from aibroker.ops.body import read_body
from aibroker.payments import (
    mercadopago_checkout,
    records,
    reversals,
    service,
    stripe_checkout,
    stripe_events,
    suspended_billing,
    suspension,
    webhooks,
)
from aibroker.payments.mercadopago_checkout import MercadoPagoCheckout
from aibroker.payments.stripe_checkout import StripeCheckout
from aibroker.tenancy.plans import paid_plan
from aibroker.tenancy.roles import CODE_MANAGER_ROLES

router = APIRouter(prefix="/api/payments", tags=["Payments"])

MIN_RECHARGE_MICROS = 1_000_000
MAX_RECHARGE_MICROS = 10_000 * 1_000_000
MP_PLAN_PERIOD = dt.timedelta(days=30)  # Checkout Pro sells one month; MP subscriptions are out of scope
MP_REVERSED = ("refunded", "charged_back")  # money back to the payer: the recharge is taken back


class CheckoutRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    organization_id: str | None = Field(default=None, alias="organizationId", description="Defaults to the caller's organization.")
    provider: Literal["stripe", "mercadopago"] = Field(default="stripe", description="stripe | mercadopago")
    plan: str | None = Field(default=None, description="A plan subscription: STARTER, PROFESSIONAL or ENTERPRISE.")
    amount: Decimal | None = Field(default=None, description="A one-off wallet recharge, in the wallet currency (e.g. \"20.00\").")
    success_url: str = Field(alias="successUrl", max_length=2000, description="Where the payer returns after paying (http/https).")
    cancel_url: str = Field(alias="cancelUrl", max_length=2000, description="Where the payer returns after cancelling (http/https).")


def _clients(request: Request) -> tuple[StripeCheckout, MercadoPagoCheckout]:
    state = request.app.state
    if getattr(state, "payment_clients", None) is None:
        settings = services(request).settings.payments
        state.payment_clients = (StripeCheckout(settings), MercadoPagoCheckout(settings))
    return state.payment_clients


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidRequest(f"{name} must be an absolute http(s) URL", param=name, code="invalid_url")
    return value


def _recharge_micros(amount: Decimal) -> int:
    try:
        micros = to_micros(amount)
    except ValueError as exc:
        raise InvalidRequest(f"amount: {exc}", param="amount") from None
    if micros % 10_000:
        raise InvalidRequest("amount must be a whole number of cents", param="amount")
    if not MIN_RECHARGE_MICROS <= micros <= MAX_RECHARGE_MICROS:
        raise InvalidRequest("amount must be between 1.00 and 10000.00", param="amount")
    return micros


@router.post("/checkout", status_code=201)
async def checkout(body: CheckoutRequest, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Start a payment: a plan subscription (`plan`) or a wallet recharge (`amount`).
    Answers with the provider's `url` to redirect the payer to. Nothing changes until the
    provider's webhook confirms the payment."""
    who = await suspended_billing.billing_caller(request, body.organization_id)  # a suspended organization may pay
    return await start_checkout(request, session, who.organization_id, body)


async def start_checkout(request: Request, session: AsyncSession, org_id: str, body: CheckoutRequest) -> dict[str, Any]:
    """The checkout for `org_id` (its caller already holds MANAGE_BILLING): the API's route and the console's wallet page."""
    success_url, cancel_url = _url(body.success_url, "successUrl"), _url(body.cancel_url, "cancelUrl")
    if (body.plan is None) == (body.amount is None):
        raise InvalidRequest("send either plan (a subscription) or amount (a wallet recharge)", param="plan")
    currency = services(request).settings.billing.currency
    stripe_client, mp_client = _clients(request)
    if body.plan is not None:
        plan = await paid_plan(session, body.plan)
        if body.provider == "stripe":
            params = stripe_checkout.subscription_params(organization_id=org_id, plan=plan.name, monthly_cents=plan.monthly_price_cents,
                                                         currency=currency, success_url=success_url, cancel_url=cancel_url)
            created = await stripe_client.create_session(params)
            return {"provider": "stripe", "kind": "subscription", "plan": plan.name.upper(), "id": created["id"], "url": created["url"]}
        pref = mercadopago_checkout.preference_body(
            organization_id=org_id, kind="subscription", title=f"aibroker {plan.name.upper()} plan (1 month)",
            amount_micros=plan.monthly_price_cents * 10_000, currency=currency, plan=plan.name,
            success_url=success_url, cancel_url=cancel_url, notification_url=_mp_notification_url(request),
        )
        created = await mp_client.create_preference(pref)
        return {"provider": "mercadopago", "kind": "subscription", "plan": plan.name.upper(), "id": created.get("id"), "url": created.get("init_point")}
    micros = _recharge_micros(body.amount)  # type: ignore[arg-type]
    if body.provider == "stripe":
        params = stripe_checkout.recharge_params(organization_id=org_id, amount_micros=micros, currency=currency,
                                                 success_url=success_url, cancel_url=cancel_url)
        created = await stripe_client.create_session(params)
        return {"provider": "stripe", "kind": "wallet_recharge", "amount_micros": micros, "id": created["id"], "url": created["url"]}
    pref = mercadopago_checkout.preference_body(
        organization_id=org_id, kind="wallet_recharge", title="Wallet recharge", amount_micros=micros, currency=currency, plan=None,
        success_url=success_url, cancel_url=cancel_url, notification_url=_mp_notification_url(request),
    )
    created = await mp_client.create_preference(pref)
    return {"provider": "mercadopago", "kind": "wallet_recharge", "amount_micros": micros, "id": created.get("id"), "url": created.get("init_point")}


def _mp_notification_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/api/payments/mercadopago/webhook?source_news=webhooks"


@router.post("/webhook")
async def stripe_webhook(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Stripe's webhook. Verified (Stripe-Signature), stored once by event id, then applied:
    plans, subscription state, the organization code and wallet credits."""
    raw = await read_body(request, services(request).settings.server.max_body_bytes)  # 413 while reading
    event = webhooks.verify_stripe(raw, request.headers.get("stripe-signature"), services(request).settings.payments.stripe_webhook_secret)
    stripe_events.check_shape(event)
    if await service.already_seen(session, "stripe", event["id"]):
        return {"received": True, "duplicate": True}
    await session.rollback()  # end the read: the wallet credit commits in its own transaction first
    outcome = await stripe_events.handle(session, services(request).writer, event)
    return await _store(request, session, "stripe", event["id"], event["type"], outcome, event["data"]["object"])


async def _store(request: Request, session: AsyncSession, provider: str, external_id: str, type_: str, outcome: service.Outcome, payload: dict[str, Any]) -> dict[str, Any]:
    await records.record_event(session, provider=provider, event_type=type_, obj=payload, code=outcome.code)  # the payments table
    await suspension.enforce(session, services(request).settings.payments, outcome.organization_id, outcome)
    if not await service.record_event(session, provider=provider, external_id=external_id, type=type_, outcome=outcome, payload=payload):
        await session.rollback()  # a concurrent delivery applied it; credits were idempotent
        return {"received": True, "duplicate": True}
    await session.commit()
    services(request).auth.forget()  # plans and statuses may have changed
    return {"received": True, "actions": outcome.actions, "organization_code_issued": outcome.code is not None}


@router.post("/mercadopago/webhook")
async def mercadopago_webhook(request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """Mercado Pago's webhook. Verified (x-signature manifest), then the payment is read back
    from Mercado Pago and applied once per (payment, status, refunded total)."""
    raw = await read_body(request, services(request).settings.server.max_body_bytes)  # 413 while reading
    payments = services(request).settings.payments
    # Only the signed id (the URL's data.id) is ever acted on; a stale ts is a replay.
    payment_id = webhooks.verify_mercadopago(
        request.headers.get("x-signature"), request.headers.get("x-request-id"), request.query_params.get("data.id"),
        payments.mercadopago_webhook_secret, tolerance_seconds=payments.mercadopago_signature_tolerance_seconds)
    body = webhooks.mercadopago_body(raw, payment_id)
    topic = body.get("type") or request.query_params.get("type") or request.query_params.get("topic")
    if topic != "payment":
        return {"received": True, "actions": [f"topic {topic!r} not handled"]}
    payment = await _clients(request)[1].get_payment(payment_id)
    status = str(payment.get("status") or "unknown")[:60]
    refunded = _mp_refunded_micros(payment)
    # A partial refund leaves the payment `approved`: its refunded total makes it news.
    external_id = f"{payment_id}:{status}" + (f":refunded={refunded}" if refunded else "")
    if await service.already_seen(session, "mercadopago", external_id):
        return {"received": True, "duplicate": True}
    await session.rollback()
    outcome = await _apply_mp_payment(session, request, payment_id, payment)
    return await _store(request, session, "mercadopago", external_id, f"payment.{status}", outcome, payment)


async def _apply_mp_payment(session: AsyncSession, request: Request, payment_id: str, payment: dict[str, Any]) -> service.Outcome:
    outcome = service.Outcome()
    meta = payment.get("metadata") if isinstance(payment.get("metadata"), dict) else {}
    ref = str(payment.get("external_reference") or "").split(":")
    org_id = meta.get("organization_id") or (ref[0] if ref[0] else None)
    kind = meta.get("kind") or (ref[1] if len(ref) > 1 else None)
    outcome.organization_id = org_id
    if payment.get("status") in MP_REVERSED:
        await _reverse_mp_payment(session, request, outcome, payment_id, payment, kind)
        return outcome
    if payment.get("status") != "approved":
        outcome.actions.append(f"payment {payment.get('status')}: nothing to apply")
        return outcome
    amount = str(meta.get("amount_micros", ""))
    paid = payment.get("transaction_amount")
    if not amount.isdigit() or not isinstance(paid, (int, float, str)) or _micros_or_none(paid) != int(amount):
        outcome.actions.append("paid amount does not match the preference: nothing applied")
        return outcome
    if kind == "wallet_recharge":
        await service.credit_wallet(services(request).writer, outcome, organization_id=str(org_id), amount_micros=int(amount),
                                    idempotency_key=f"mercadopago:{payment_id}", payment_ref=f"mp:{payment_id}",
                                    description="Mercado Pago wallet recharge")
        if _mp_refunded_micros(payment):  # partially refunded: before this session writes (SQLite)
            await _reverse_mp_payment(session, request, outcome, payment_id, payment, kind)
    org = await service.organization(session, org_id)
    if org is None:
        outcome.actions.append("unknown organization")
        return outcome
    await service.mark_paid(session, outcome, org, payment_ref=f"mp:{payment_id}")
    if kind == "subscription":
        await service.apply_subscription(session, outcome, org, provider="mercadopago", plan=meta.get("plan"), status="active",
                                         event_time=int(utcnow().timestamp()), period_end=utcnow() + MP_PLAN_PERIOD)
    return outcome


async def _reverse_mp_payment(session: AsyncSession, request: Request, outcome: service.Outcome, payment_id: str,
                              payment: dict[str, Any], kind: str | None) -> None:
    """Refunds (the cumulative `transaction_amount_refunded`, all of it once `refunded`) and a
    chargeback take back the wallet recharge the payment credited, if it credited one."""
    status = payment.get("status")
    if kind != "wallet_recharge":
        outcome.actions.append(f"payment {status}: plan payments are not reversed")
        return
    recharge = await reversals.recharge_by_key(session, f"mercadopago:{payment_id}")
    if recharge is None:
        outcome.actions.append(f"payment {status} but never credited: nothing reversed")
        return
    writer = services(request).writer
    refunded = recharge.credited if status == "refunded" else _mp_refunded_micros(payment)
    if refunded:
        await reversals.reverse(session, writer, outcome, recharge, stream=f"mercadopago-refund:{payment_id}", target=refunded,
                                description=f"Mercado Pago refund of payment {payment_id}: wallet recharge reversed")
    if status == "charged_back":
        await reversals.reverse(session, writer, outcome, recharge, stream=f"mercadopago-chargeback:{payment_id}", target=recharge.credited,
                                description=f"Mercado Pago chargeback of payment {payment_id}: wallet recharge reversed")


def _mp_refunded_micros(payment: dict[str, Any]) -> int:
    """`transaction_amount_refunded` (major units) in micros; 0 when absent or unreadable."""
    value = payment.get("transaction_amount_refunded")
    micros = _micros_or_none(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else None
    return max(0, micros or 0)


def _micros_or_none(value: Any) -> int | None:
    try:
        return to_micros(Decimal(str(value)))
    except (ValueError, ArithmeticError):
        return None


@router.get("/subscription/{organization_id}")
async def get_subscription(organization_id: str, request: Request, session: AsyncSession = Depends(db_session, scope="function")) -> dict[str, Any]:
    """The organization's plan, status, limits, organization code (null unless the caller is an
    OWNER or ADMIN) and subscription."""
    who = await suspended_billing.billing_caller(request, organization_id)
    return await service.subscription_view(session, who.organization_id, show_code=who.role in CODE_MANAGER_ROLES)
