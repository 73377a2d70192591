"""Password hashing (argon2id) and the strength rules a new password must pass."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from aibroker.errors import InvalidRequest

MIN_LENGTH = 10
MAX_LENGTH = 256
_hasher = PasswordHasher()
# Verified against when the e-mail is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-0")


class WeakPassword(InvalidRequest):
    """A password that breaks a rule; `code` names the rule."""


def check_strength(password: str, *, email: str = "", name: str = "") -> None:
    """Raise WeakPassword naming the first rule the password breaks."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"The password must be at least {MIN_LENGTH} characters long.", param="password", code="password_too_short")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"The password must be at most {MAX_LENGTH} characters long.", param="password", code="password_too_long")
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise WeakPassword("The password must contain both letters and digits.", param="password", code="password_needs_letters_and_digits")
    lowered = password.lower()
    local = email.split("@", 1)[0].lower()
    if email and (lowered == email.lower() or (len(local) >= 4 and local in lowered)):
        raise WeakPassword("The password must not contain your e-mail address.", param="password", code="password_contains_email")
    if name and len(name.strip()) >= 4 and name.strip().lower() in lowered:
        raise WeakPassword("The password must not contain your name.", param="password", code="password_contains_name")
    if len(set(password)) < 4:
        raise WeakPassword("The password must not repeat so few characters.", param="password", code="password_too_repetitive")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
