"""Fake Mercado Pago API over real HTTP (Checkout Pro preferences, payments), plus
`sign()`: the x-signature header over the documented manifest."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes._server import FakeServer


def sign(*, data_id: str | None, request_id: str | None, secret: str, ts: int | None = None) -> str:
    """`ts=<ts>,v1=<hex>` over `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` (absent parts dropped)."""
    ts = int(time.time()) if ts is None else ts
    manifest = ""
    if data_id:
        manifest += f"id:{data_id.lower() if not data_id.isdigit() else data_id};"
    if request_id:
        manifest += f"request-id:{request_id};"
    manifest += f"ts:{ts};"
    return f"ts={ts},v1={hmac.new(secret.encode(), manifest.encode(), hashlib.sha256).hexdigest()}"


class FakeMercadoPago(FakeServer):
    thread_name = "fake-mercadopago"

    def __init__(self, access_token: str = "TEST-fake-token") -> None:
        self.access_token = access_token
        self.preferences: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self._payment_ids = iter(range(90000000001, 99999999999))
        super().__init__([
            Route("/checkout/preferences", self._create_preference, methods=["POST"]),
            Route("/v1/payments/{payment_id}", self._get_payment, methods=["GET"]),
        ])

    def reset(self) -> None:
        super().reset()
        self.preferences.clear()
        self.payments.clear()

    def _check_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return self._error(401, "invalid access token", "unauthorized")
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None, retry_after: float | None = None) -> Response:
        return JSONResponse({"message": message or "error", "error": code or "bad_request", "status": status, "cause": []}, status_code=status)

    async def _create_preference(self, request: Request) -> Response:
        body, _, early = await self._admit(request)
        if early is not None:
            return early
        if not isinstance(body, dict) or not body.get("items"):
            return self._error(400, "items needed", "invalid_items")
        pref_id = f"{self._new_id('pref')}-{int(time.time())}"
        pref = {**body, "id": pref_id, "collector_id": 44444444,
                "init_point": f"https://www.mercadopago.test/checkout/v1/redirect?pref_id={pref_id}",
                "sandbox_init_point": f"https://sandbox.mercadopago.test/checkout/v1/redirect?pref_id={pref_id}"}
        self.preferences[pref_id] = pref
        return JSONResponse(pref, status_code=201)

    async def _get_payment(self, request: Request) -> Response:
        _, _, early = await self._admit(request)
        if early is not None:
            return early
        payment = self.payments.get(request.path_params["payment_id"])
        if payment is None:
            return self._error(404, "Payment not found", "not_found")
        return JSONResponse(payment)

    # -- what happens when the payer pays -------------------------------------------------

    def pay(self, preference_id: str, *, status: str = "approved", amount: float | None = None) -> str:
        """A payment for the preference (as MP records it); returns its id."""
        pref = self.preferences[preference_id]
        payment_id = str(next(self._payment_ids))
        item = pref["items"][0]
        self.payments[payment_id] = {
            "id": int(payment_id), "status": status, "status_detail": "accredited" if status == "approved" else status,
            "transaction_amount": item["unit_price"] if amount is None else amount, "currency_id": item["currency_id"],
            "external_reference": pref.get("external_reference"), "metadata": pref.get("metadata", {}),
            "preference_id": preference_id,
        }
        return payment_id

    def set_status(self, payment_id: str, status: str) -> None:
        self.payments[payment_id]["status"] = status
