"""Checkout Sessions through the official `stripe` SDK (async, httpx). STRIPE_API_BASE
points it at another host (a local fake in tests)."""

from __future__ import annotations

import uuid
from typing import Any

import stripe

from aibroker.config import PaymentSettings
from aibroker.payments.errors import PaymentProviderError, PaymentsNotConfigured


class StripeCheckout:
    def __init__(self, settings: PaymentSettings) -> None:
        self._settings = settings
        self._client: stripe.StripeClient | None = None

    def _stripe(self) -> stripe.StripeClient:
        if not self._settings.stripe_api_key:
            raise PaymentsNotConfigured("Stripe is not configured (STRIPE_API_KEY).")
        if self._client is None:
            base = {"api": self._settings.stripe_api_base} if self._settings.stripe_api_base else None
            self._client = stripe.StripeClient(
                self._settings.stripe_api_key, base_addresses=base, http_client=stripe.HTTPXClient(), max_network_retries=2
            )
        return self._client

    async def create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        """Create the session; one idempotency key per logical operation (the SDK retries with it)."""
        try:
            session = await self._stripe().v1.checkout.sessions.create_async(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": str(uuid.uuid4())},
            )
        except stripe.StripeError as exc:
            raise PaymentProviderError(f"Stripe refused the checkout session: {exc.user_message or exc}") from exc
        return {"id": session.id, "url": session.url}


def recharge_params(*, organization_id: str, amount_micros: int, currency: str, success_url: str, cancel_url: str) -> dict[str, Any]:
    cents = amount_micros // 10_000
    metadata = {"kind": "wallet_recharge", "amount_micros": str(amount_micros), "organization_id": organization_id}
    return {
        "mode": "payment",
        "line_items": [{
            "price_data": {"currency": currency.lower(), "unit_amount": cents,
                           "product_data": {"name": f"Wallet recharge {currency.upper()} {cents / 100:.2f}"}},
            "quantity": 1,
        }],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": organization_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
    }


def subscription_params(*, organization_id: str, plan: str, monthly_cents: int, currency: str, success_url: str, cancel_url: str) -> dict[str, Any]:
    # Renewal invoices do not carry the session's metadata: put it on the subscription too.
    metadata = {"kind": "subscription", "plan": plan, "organization_id": organization_id}
    return {
        "mode": "subscription",
        "line_items": [{
            "price_data": {"currency": currency.lower(), "unit_amount": monthly_cents, "recurring": {"interval": "month"},
                           "product_data": {"name": f"aibroker {plan.upper()} plan"}},
            "quantity": 1,
        }],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": organization_id,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
