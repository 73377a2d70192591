"""Checkout Pro preferences and payment look-ups through the official `mercadopago` SDK.

The SDK has no base-URL option; its supported extension point is a custom `HttpClient`,
so MERCADOPAGO_API_BASE is applied by a client that rewrites the API host. The SDK is
synchronous (requests): calls run in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any

import mercadopago
from mercadopago.config.config import Config
from mercadopago.http.http_client import HttpClient

from aibroker.config import PaymentSettings
from aibroker.payments.errors import PaymentProviderError, PaymentsNotConfigured

MP_API = Config().api_base_url  # https://api.mercadopago.com


class _RebasedHttpClient(HttpClient):
    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")

    def request(self, method, url, maxretries=None, retry_on=None, backoff_factor=None, **kwargs):  # type: ignore[no-untyped-def]
        if url.startswith(MP_API):
            url = self._base + url[len(MP_API):]
        return super().request(method, url, maxretries=maxretries, retry_on=retry_on, backoff_factor=backoff_factor, **kwargs)


class MercadoPagoCheckout:
    def __init__(self, settings: PaymentSettings) -> None:
        self._settings = settings
        self._sdk: mercadopago.SDK | None = None

    def _mp(self) -> mercadopago.SDK:
        if not self._settings.mercadopago_access_token:
            raise PaymentsNotConfigured("Mercado Pago is not configured (MERCADOPAGO_ACCESS_TOKEN).")
        if self._sdk is None:
            client = _RebasedHttpClient(self._settings.mercadopago_api_base) if self._settings.mercadopago_api_base else None
            self._sdk = mercadopago.SDK(self._settings.mercadopago_access_token, http_client=client)
        return self._sdk

    async def create_preference(self, body: dict[str, Any]) -> dict[str, Any]:
        sdk = self._mp()
        result = await asyncio.to_thread(sdk.preference().create, body)
        return _ok(result, "create the preference")

    async def get_payment(self, payment_id: str) -> dict[str, Any]:
        sdk = self._mp()
        result = await asyncio.to_thread(sdk.payment().get, payment_id)
        return _ok(result, f"read payment {payment_id}")


def _ok(result: dict[str, Any], what: str) -> dict[str, Any]:
    status = int(result.get("status") or 0)
    if status >= 400 or not isinstance(result.get("response"), dict):
        detail = result.get("response") or {}
        message = detail.get("message") if isinstance(detail, dict) else None
        raise PaymentProviderError(f"Mercado Pago could not {what} (HTTP {status}{': ' + message if message else ''}).")
    return result["response"]


def preference_body(
    *, organization_id: str, kind: str, title: str, amount_micros: int, currency: str, plan: str | None,
    success_url: str, cancel_url: str, notification_url: str | None,
) -> dict[str, Any]:
    metadata = {"kind": kind, "organization_id": organization_id, "amount_micros": str(amount_micros)}
    if plan:
        metadata["plan"] = plan
    body: dict[str, Any] = {
        "items": [{"id": f"{kind}-{plan or amount_micros}", "title": title, "quantity": 1, "currency_id": currency.upper(),
                   # major units, a decimal: Mercado Pago's format (our micros are exact to the cent here)
                   "unit_price": float(f"{amount_micros / 1_000_000:.2f}")}],
        "back_urls": {"success": success_url, "pending": success_url, "failure": cancel_url},
        "auto_return": "approved",
        "external_reference": f"{organization_id}:{kind}:{plan or amount_micros}",
        "metadata": metadata,
    }
    if notification_url:
        body["notification_url"] = notification_url
    return body
