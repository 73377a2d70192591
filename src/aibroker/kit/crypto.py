"""AES-256-GCM sealing of stored secrets, and hashing of API keys."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE_BYTES = 12


def derive_key(secret: str) -> bytes:
    """A 256-bit key from the configured secret (any length)."""
    return hashlib.sha256(("aibroker-seal:" + secret).encode()).digest()


def key_id(secret: str) -> str:
    """A short public fingerprint of a secret key, stored beside what it sealed."""
    return hashlib.sha256(("aibroker-kid:" + secret).encode()).hexdigest()[:12]


def seal(plaintext: str, secret: str, *, context: str = "") -> bytes:
    """nonce || ciphertext+tag. `context` binds the ciphertext to its owner (AAD)."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(derive_key(secret)).encrypt(nonce, plaintext.encode(), context.encode())


def unseal(sealed: bytes, secret: str, *, context: str = "") -> str:
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    return AESGCM(derive_key(secret)).decrypt(nonce, body, context.encode()).decode()


def hash_api_key(key: str) -> str:
    # API keys carry 192 bits of randomness, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "abk_" + base64.urlsafe_b64encode(os.urandom(24)).decode().rstrip("=")
