"""Signature checks of inbound payment webhooks, over the raw bytes, before any parsing."""

from __future__ import annotations

from typing import Any

import orjson
import stripe
from mercadopago.webhook.validator import (
    InvalidWebhookSignatureError,
    WebhookSignatureValidator,
)

from aibroker.payments.errors import BadSignature, PaymentsNotConfigured

STRIPE_TOLERANCE_SECONDS = 300  # the SDK's default, stated here on purpose


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
        raise BadSignature("Signed, but not a Stripe event (id, type, data.object).", code="malformed_event", status_code=400)
    return event


def verify_mercadopago(signature: str | None, request_id: str | None, data_id: str | None, secret: str | None) -> None:
    """The manifest `id:{data.id};request-id:{x-request-id};ts:{ts};` HMAC-SHA256 (wire-format §6.3)."""
    if not secret:
        raise PaymentsNotConfigured("Mercado Pago webhooks are not configured (MERCADOPAGO_WEBHOOK_SECRET).")
    if data_id and not data_id.isdigit():
        data_id = data_id.lower()  # alphanumeric ids are signed lowercased
    try:
        WebhookSignatureValidator.validate(signature, request_id, data_id, secret)
    except InvalidWebhookSignatureError as exc:
        raise BadSignature(f"Invalid x-signature ({exc.reason.value}).", code="invalid_signature") from None


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadSignature("The body is not JSON.", code="malformed_event") from None
    if not isinstance(data, dict):
        raise BadSignature("The body is not a JSON object.", code="malformed_event")
    return data


def parse_json(raw: bytes) -> dict[str, Any]:
    return _json(raw) if raw else {}
