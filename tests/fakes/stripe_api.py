"""Fake Stripe API over real HTTP (form-encoded requests, Stripe's JSON objects and error
envelope), plus `sign()`: the Stripe-Signature header exactly as Stripe computes it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes._server import FakeServer


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding (`line_items[0][price_data][currency]=usd`) back into objects."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node: Any = root
        for part, nxt in zip(parts, parts[1:] + [None]):
            if nxt is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def sign(payload: bytes, secret: str, *, timestamp: int | None = None, extra_v1: tuple[str, ...] = ()) -> str:
    """`t=<ts>,v1=<hex>`: HMAC-SHA256 of "<t>.<raw body>" keyed with the endpoint secret."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return ",".join([f"t={t}", *(f"v1={v}" for v in extra_v1), f"v1={digest}"])


def event(type_: str, obj: dict[str, Any], *, event_id: str, created: int | None = None) -> bytes:
    return json.dumps({
        "id": event_id, "object": "event", "api_version": "2025-01-27.acacia", "type": type_,
        "created": created if created is not None else int(time.time()), "livemode": False,
        "data": {"object": obj}, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
    }).encode()


class FakeStripe(FakeServer):
    thread_name = "fake-stripe"

    def __init__(self, api_key: str = "sk_test_fake") -> None:
        self.api_key = api_key
        self.sessions: dict[str, dict[str, Any]] = {}
        self.form_bodies: list[dict[str, Any]] = []
        super().__init__([Route("/v1/checkout/sessions", self._create_session, methods=["POST"])])

    def reset(self) -> None:
        super().reset()
        self.sessions.clear()
        self.form_bodies.clear()

    def _check_auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Invalid API Key provided.", "api_key_invalid")
        return None

    def _error(self, status: int, message: str | None = None, code: str | None = None, retry_after: float | None = None) -> Response:
        body = {"error": {"type": "invalid_request_error", "message": message or "error", "code": code}}
        return JSONResponse(body, status_code=status)

    async def _create_session(self, request: Request) -> Response:
        _, _, early = await self._admit(request)
        if early is not None:
            return early
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._error(400, "Stripe takes form-encoded bodies")
        params = unflatten(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.form_bodies.append(params)
        for required in ("mode", "success_url", "line_items"):
            if required not in params:
                return self._error(400, f"Missing required param: {required}.", "parameter_missing")
        session_id = self._new_id("cs_test")
        session = {
            "id": session_id, "object": "checkout.session", "mode": params["mode"],
            "url": f"https://checkout.stripe.test/c/pay/{session_id}",
            "client_reference_id": params.get("client_reference_id"), "metadata": params.get("metadata", {}),
            "success_url": params["success_url"], "cancel_url": params.get("cancel_url"),
            "payment_status": "unpaid", "status": "open", "currency": params["line_items"][0]["price_data"]["currency"],
            "amount_total": int(params["line_items"][0]["price_data"]["unit_amount"]) * int(params["line_items"][0].get("quantity", 1)),
            "customer": None, "subscription": None, "payment_intent": None,
            "_line_items": params["line_items"],
        }
        self.sessions[session_id] = session
        return JSONResponse({k: v for k, v in session.items() if not k.startswith("_")})

    # -- what Stripe would send after the payer pays ------------------------------------

    def completed(self, session_id: str) -> dict[str, Any]:
        """The session object of `checkout.session.completed` once paid."""
        session = {k: v for k, v in self.sessions[session_id].items() if not k.startswith("_")}
        session.update(status="complete", payment_status="paid")
        if session["mode"] == "subscription":
            # Stripe names the subscription's first invoice on the session (its `invoice.paid` follows).
            session.update(customer=f"cus_{session_id[-6:]}", subscription=f"sub_{session_id[-6:]}", invoice=f"in_{session_id[-6:]}")
        else:
            session.update(payment_intent=f"pi_{session_id[-6:]}")
        return session

    def charge(self, session_id: str, *, amount_refunded: int = 0) -> dict[str, Any]:
        """The Charge object of `charge.refunded` for a paid recharge session (cumulative `amount_refunded`)."""
        session = self.sessions[session_id]
        return {
            "id": f"ch_{session_id[-6:]}", "object": "charge", "amount": session["amount_total"], "amount_captured": session["amount_total"],
            "amount_refunded": amount_refunded, "currency": session["currency"], "paid": True, "status": "succeeded",
            "refunded": amount_refunded >= session["amount_total"], "payment_intent": f"pi_{session_id[-6:]}", "metadata": {},
        }

    def dispute(self, session_id: str, *, amount: int | None = None, status: str = "needs_response") -> dict[str, Any]:
        """The Dispute object of `charge.dispute.*` against a paid recharge session's charge."""
        session = self.sessions[session_id]
        return {
            "id": f"du_{session_id[-6:]}", "object": "dispute", "amount": session["amount_total"] if amount is None else amount,
            "currency": session["currency"], "charge": f"ch_{session_id[-6:]}", "payment_intent": f"pi_{session_id[-6:]}",
            "status": status, "reason": "fraudulent", "is_charge_refundable": False, "balance_transactions": [], "metadata": {},
        }
