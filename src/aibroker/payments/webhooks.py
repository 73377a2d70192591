"""Signature checks of inbound payment webhooks, over the raw bytes, before any parsing."""

from __future__ import annotations

import re
from typing import Any

import orjson
import stripe
from mercadopago.webhook.validator import (
    InvalidWebhookSignatureError,
    WebhookSignatureValidator,
)

from aibroker.kit.clock import utcnow
from aibroker.ops.body import nesting_exceeds
from aibroker.payments.errors import BadSignature, PaymentsNotConfigured

STRIPE_TOLERANCE_SECONDS = 300  # the SDK's default, stated here on purpose
# A Mercado Pago resource id: digits (payments) or letters and digits (Orders API `ORD…`).
MP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_EVENT_ID, MAX_EVENT_TYPE = 200, 100  # payment_events.external_id / .type
MAX_DEPTH = 64  # Stripe objects nest ~6 deep; stored payloads must stay encodable


def verify_stripe(raw: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, if `Stripe-Signature` is valid (any v1 matches; t within 300 s)."""
    if not secret:
        raise PaymentsNotConfigured("Stripe webhooks are not configured (STRIPE_WEBHOOK_SECRET).")
    if not signature:
        raise BadSignature("Missing Stripe-Signature header.", code="missing_signature")
    try:
        payload = raw.decode("utf-8")
        stripe.WebhookSignature.verify_header(payload, signature, secret, STRIPE_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
        raise BadSignature(f"Invalid Stripe-Signature: {exc}", code="invalid_signature") from None
    event = _json(raw)
    data = event.get("data")
    if not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str) or not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise malformed("Signed, but not a Stripe event (id, type, data.object).")
    if not 0 < len(event["id"]) <= MAX_EVENT_ID or not 0 < len(event["type"]) <= MAX_EVENT_TYPE:
        raise malformed(f"Signed, but the event id or type is empty or too long ({MAX_EVENT_ID} / {MAX_EVENT_TYPE}).")
    return event


def malformed(message: str) -> BadSignature:
    return BadSignature(message, code="malformed_event", status_code=400)


def verify_mercadopago(signature: str | None, request_id: str | None, data_id: str | None, secret: str | None,
                       *, tolerance_seconds: int) -> str:
    """The manifest `id:{data.id};request-id:{x-request-id};ts:{ts};` HMAC-SHA256 (wire-format §6.3),
    with a `ts` at most `tolerance_seconds` away from now. Answers the signed id: the only one a
    notification may act on (the body's is not signed), so a notification without one is refused."""
    if not secret:
        raise PaymentsNotConfigured("Mercado Pago webhooks are not configured (MERCADOPAGO_WEBHOOK_SECRET).")
    if not data_id:
        raise BadSignature("No data.id in the notification URL: the signature covers no resource.", code="unsigned_id")
    if not MP_ID.match(data_id):
        raise BadSignature("data.id is not a Mercado Pago resource id.", code="malformed_event")
    signed_id = data_id if data_id.isdigit() else data_id.lower()  # alphanumeric ids are signed lowercased
    try:
        WebhookSignatureValidator.validate(signature, request_id, signed_id, secret)
    except InvalidWebhookSignatureError as exc:
        raise BadSignature(f"Invalid x-signature ({exc.reason.value}).", code="invalid_signature") from None
    _fresh(str(signature), tolerance_seconds)
    return data_id


def _fresh(signature: str, tolerance_seconds: int) -> None:
    """Replays of an old, validly signed notification are refused. `ts` is documented in
    milliseconds while the docs' example is seconds (wire-formats §7.2): both are read."""
    ts = next((p.split("=", 1)[1].strip() for p in signature.split(",") if p.strip().lower().startswith("ts=")), "")
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 16):
        raise BadSignature("x-signature ts is not a time.", code="invalid_signature")
    seconds = int(ts) / 1000 if len(ts) > 11 else int(ts)
    if abs(utcnow().timestamp() - seconds) > tolerance_seconds:
        raise BadSignature(f"x-signature ts is more than {tolerance_seconds} s away from now: a stale or replayed notification.",
                           code="signature_expired")


def mercadopago_body(raw: bytes, data_id: str) -> dict[str, Any]:
    """The notification body (may be empty). Its `data.id`, when present, must be the signed one."""
    body = parse_json(raw)
    data = body.get("data")
    if data is not None and not isinstance(data, dict):
        raise malformed("The notification's data is not an object.")
    for name in ("type", "topic", "action"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise malformed(f"The notification's {name} is not a string.")
    body_id = (data or {}).get("id")
    if body_id is not None:
        if isinstance(body_id, bool) or not isinstance(body_id, (str, int)):
            raise malformed("The notification's data.id is not an id.")
        if str(body_id).lower() != data_id.lower():
            raise BadSignature("The body's data.id is not the signed data.id of the URL.", code="unsigned_id")
    return body


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise malformed("The body is not JSON (or nested deeper than 1024 levels).") from None
    if not isinstance(data, dict):
        raise malformed("The body is not a JSON object.")
    if nesting_exceeds(data, MAX_DEPTH):
        raise malformed(f"The body nests deeper than {MAX_DEPTH} levels.")
    return data


def parse_json(raw: bytes) -> dict[str, Any]:
    return _json(raw) if raw else {}
