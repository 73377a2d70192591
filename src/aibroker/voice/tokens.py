"""Short-lived session tokens: random, single-session, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "vst_"


def mint() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str | None) -> bool:
    return bool(token) and token.startswith(PREFIX) and len(token) < 100  # type: ignore[union-attr]
