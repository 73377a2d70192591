"""Sealed columns (AES-256-GCM under AIBROKER_SECRET_KEY, with the sealing key's id) and
their rotation: `aibroker secrets rotate` re-seals every registered table from the old key
to the current one, in one transaction (all or nothing).

Each domain that stores sealed secrets registers a `Sealer`: the model (with a `key_id`
column), a function re-sealing one row in place and, where only some rows hold a secret,
the filter that picks them. Built-in: BYOK provider keys, messaging channel tokens and the
sealed part of events (invitation links); `register()` adds more."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from aibroker.errors import InvalidRequest
from aibroker.kit import crypto


@dataclass(frozen=True)
class Sealer:
    name: str
    model: type[Any]
    reseal: Callable[[Any, str, str], None]  # (row, old_secret, new_secret) -> None, in place
    only: Any = None  # a WHERE clause: the rows that hold a sealed secret (None: every row)


_registered: dict[str, Sealer] = {}


def register(sealer: Sealer) -> None:
    _registered[sealer.name] = sealer


def _reseal_provider_credential(row: Any, old: str, new: str) -> None:
    from aibroker.billing.byok import seal_context

    context = seal_context(row.organization_id, row.provider)
    row.sealed_key = crypto.seal(crypto.unseal(bytes(row.sealed_key), old, context=context), new, context=context)
    row.key_id = crypto.key_id(new)


# -- events: what only the webhook receiver may read (an invitation's accept link) -----------


def _event_context(event_id: str) -> str:
    return f"event:{event_id}"  # AAD: a sealed payload copied to another event won't open


def seal_event_data(event_id: str, data: dict[str, Any], secret: str) -> tuple[bytes, str]:
    """(sealed_payload, key_id) for an event's webhook-only fields."""
    return crypto.seal(json.dumps(data), secret, context=_event_context(event_id)), crypto.key_id(secret)


def open_event_data(event_id: str, sealed: bytes, secret: str) -> dict[str, Any]:
    return json.loads(crypto.unseal(bytes(sealed), secret, context=_event_context(event_id)))  # type: ignore[no-any-return]


def _reseal_event(row: Any, old: str, new: str) -> None:
    row.sealed_payload, row.key_id = seal_event_data(row.id, open_event_data(row.id, row.sealed_payload, old), new)


def _reseal_signing_secret(row: Any, old: str, new: str) -> None:
    context = f"signing:{row.id}"
    row.sealed_signing_secret = crypto.seal(crypto.unseal(bytes(row.sealed_signing_secret), old, context=context), new, context=context)
    row.signing_key_id = crypto.key_id(new)


def _reseal_platform_key(row: Any, old: str, new: str) -> None:
    from aibroker.billing.platform_keys import seal_context

    context = seal_context(row.provider)
    row.sealed_key = crypto.seal(crypto.unseal(bytes(row.sealed_key), old, context=context), new, context=context)
    row.key_id = crypto.key_id(new)


def _builtin() -> None:
    from aibroker.models import ApiKey, Event, PlatformProviderKey, ProviderCredential

    register(Sealer("provider_credentials", ProviderCredential, _reseal_provider_credential))
    register(Sealer("api_key_signing_secrets", ApiKey, _reseal_signing_secret, only=ApiKey.sealed_signing_secret.is_not(None)))
    register(Sealer("platform_provider_keys", PlatformProviderKey, _reseal_platform_key))
    register(Sealer("events", Event, _reseal_event, only=Event.sealed_payload.is_not(None)))
    try:  # the messaging domain's channel tokens (its own reseal keeps its AAD rules)
        channels = importlib.import_module("aibroker.messaging.channels")
        model = importlib.import_module("aibroker.models").ChannelConnection
    except (ImportError, AttributeError):
        return
    register(Sealer("channel_connections", model, channels.reseal))


def sealers() -> list[Sealer]:
    if not _registered:
        _builtin()
    return list(_registered.values())


@dataclass(frozen=True)
class RotationReport:
    resealed: dict[str, int]  # table -> rows re-sealed
    already_current: dict[str, int]  # table -> rows already under the new key


def rotate(engine: Engine, *, old_secret: str, new_secret: str) -> RotationReport:
    """Re-seal every row sealed under `old_secret` with `new_secret`. Rows already under the
    new key are left alone (a rerun is harmless). Any row that does not open aborts everything."""
    if not old_secret or old_secret == new_secret:
        raise InvalidRequest("give the previous secret key (AIBROKER_SECRET_KEY_PREVIOUS or --from), different from the current one")
    old_id, new_id = crypto.key_id(old_secret), crypto.key_id(new_secret)
    resealed: dict[str, int] = {}
    current: dict[str, int] = {}
    with Session(engine) as session, session.begin():
        for sealer in sealers():
            query = select(sealer.model) if sealer.only is None else select(sealer.model).where(sealer.only)
            rows = session.scalars(query.with_for_update()).all()
            resealed[sealer.name] = current[sealer.name] = 0
            for row in rows:
                if row.key_id == new_id:
                    current[sealer.name] += 1
                    continue
                if row.key_id != old_id:
                    raise InvalidRequest(f"{sealer.name} row {row.id} was sealed with an unknown key ({row.key_id}); nothing was changed")
                try:
                    sealer.reseal(row, old_secret, new_secret)
                except Exception as exc:  # InvalidTag: the data does not open with the old key
                    raise InvalidRequest(f"{sealer.name} row {row.id} does not open with the previous key; nothing was changed") from exc
                resealed[sealer.name] += 1
    return RotationReport(resealed, current)
