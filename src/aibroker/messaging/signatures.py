"""Webhook signatures, always over the raw request bytes, compared in constant time.

Meta (WhatsApp, Messenger, Instagram): `X-Hub-Signature-256: sha256=<hex>`,
    HMAC-SHA256(app secret, raw body).
TikTok: `Tiktok-Signature: t=<unix seconds>,s=<hex>`, HMAC-SHA256(client secret, t + "." + raw body);
    a timestamp older than the tolerance is refused (replays beyond it).
"""

from __future__ import annotations

import hashlib
import hmac

from aibroker.kit.clock import utcnow

META_HEADER = "x-hub-signature-256"
TIKTOK_HEADER = "tiktok-signature"


def meta_signature(raw_body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def _same(expected: str, given: str) -> bool:
    # Bytes, not str: compare_digest raises on non-ASCII str, and headers may carry any latin-1.
    return hmac.compare_digest(expected.encode(), given.encode("latin-1", "replace"))


def meta_signature_ok(raw_body: bytes, header: str | None, app_secret: str) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return _same(expected, header[len("sha256="):].strip().lower())


def tiktok_signature(raw_body: bytes, client_secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + raw_body
    return f"t={timestamp},s=" + hmac.new(client_secret.encode(), signed, hashlib.sha256).hexdigest()


def tiktok_signature_ok(raw_body: bytes, header: str | None, client_secret: str, tolerance_seconds: int) -> bool:
    if not header:
        return False
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "s":
            signatures.append(value.lower())
    # ASCII digits of a plausible length: int() refuses other digits and very long strings.
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12) or not signatures:
        return False
    if abs(utcnow().timestamp() - int(timestamp)) > tolerance_seconds:
        return False
    expected = hmac.new(client_secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return any(_same(expected, s) for s in signatures)


def header_for(channel: str) -> str:
    return TIKTOK_HEADER if channel == "tiktok" else META_HEADER


def signature_ok(channel: str, raw_body: bytes, header: str | None, secret: str, tolerance_seconds: int) -> bool:
    if channel == "tiktok":
        return tiktok_signature_ok(raw_body, header, secret, tolerance_seconds)
    return meta_signature_ok(raw_body, header, secret)
