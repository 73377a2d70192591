"""Cache keys: a hash of the organization, provider, model and the normalised request."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# Fields that do not change the answer (transport, attribution, broker flags).
IGNORED_FIELDS = frozenset({"stream", "stream_options", "user", "user_name", "feature", "cache", "aibroker", "model"})


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in IGNORED_FIELDS}


def cache_key(organization_id: str, provider: str, model_id: str, kind: str, body: dict[str, Any]) -> str:
    """Never shared between organizations: the organization id is part of what is hashed."""
    payload = orjson.dumps([organization_id, provider, model_id, kind, normalised(body)], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()


def no_store(cache_control: str | None) -> bool:
    """`Cache-Control: no-store` (or no-cache: the caller wants a fresh answer)."""
    if not cache_control:
        return False
    directives = {d.strip().split("=")[0].lower() for d in cache_control.split(",")}
    return bool(directives & {"no-store", "no-cache"})
