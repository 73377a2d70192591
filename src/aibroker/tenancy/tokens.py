"""Session tokens: short-lived JWT access tokens (HS256) and opaque, rotating refresh tokens.

The JWT key is derived from AIBROKER_SECRET_KEY with its own label, so the sealing key
and the signing key are never the same bytes. Refresh tokens are random strings stored
as SHA-256 only; each use replaces the token, and reusing a replaced one revokes the
whole family (a stolen token then stops working for the thief and the owner alike)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
from dataclasses import dataclass

import jwt

from aibroker.errors import AuthenticationError
from aibroker.kit.clock import utcnow

ALGORITHM = "HS256"
ISSUER = "aibroker"
REFRESH_PREFIX = "abr_"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    super_admin: bool


def signing_key(secret: str) -> bytes:
    return hashlib.sha256(("aibroker-jwt:" + secret).encode()).digest()


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and not token.startswith("abk_")


def issue_access_token(secret: str, *, user_id: str, super_admin: bool, minutes: int) -> str:
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "sub": user_id,
        "typ": "access",
        "sa": super_admin,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=minutes)).timestamp()),
    }
    return jwt.encode(claims, signing_key(secret), algorithm=ALGORITHM)


def verify_access_token(secret: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            signing_key(secret),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("The access token has expired; refresh it.", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("Invalid access token.", code="invalid_token") from None
    if claims.get("typ") != "access":
        raise AuthenticationError("Invalid access token.", code="invalid_token")
    return AccessClaims(user_id=str(claims["sub"]), super_admin=bool(claims.get("sa")))


def new_refresh_token() -> str:
    return REFRESH_PREFIX + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


def hash_token(token: str) -> str:
    # Refresh and invitation tokens carry 256 bits of randomness: a fast hash is enough.
    return hashlib.sha256(token.encode()).hexdigest()
