"""Channel connections: a tenant's account on each platform, with sealed tokens and secrets."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.config import MessagingSettings, get_settings
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit import crypto
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import ChannelConnection, Organization

CHANNELS = ("whatsapp", "instagram", "facebook", "tiktok")
META_CHANNELS = ("whatsapp", "instagram", "facebook")

# Non-secret account ids: stored in clear columns (they route webhooks). Everything else in
# `credentials` (tokens, client secret) is sealed.
ACCOUNT_FIELDS = {
    "whatsapp": {"phone_number_id": "phone_number_id", "business_account_id": "business_account_id"},
    "facebook": {"page_id": "page_id"},
    "instagram": {"instagram_account_id": "instagram_account_id", "page_id": "page_id"},
    "tiktok": {"client_key": "tiktok_client_key", "business_id": "tiktok_business_id"},
}
REQUIRED = {
    "whatsapp": ("phone_number_id", "access_token"),
    "facebook": ("page_id", "access_token"),
    "instagram": ("instagram_account_id", "access_token"),
    "tiktok": ("client_key", "business_id", "access_token"),  # client_secret: unless TIKTOK_CLIENT_SECRET is set
}
# The id each platform puts in its webhooks: it routes an event to its connection.
ROUTING_FIELD = {"whatsapp": "phone_number_id", "facebook": "page_id", "instagram": "instagram_account_id", "tiktok": "business_id"}
# Account ids that belong to one connection across all tenants (unique indexes, migrations
# 0008 and 0013). Not the WhatsApp business account (it has several numbers) nor the TikTok
# client key (it names the app, which a SaaS shares among its tenants).
UNIQUE_COLUMNS = ("account_key", "page_id")
ACCOUNT_ID_TAKEN = "account_id_taken"
MAX_ACCOUNT_ID = 100


@dataclass(frozen=True, slots=True)
class OpenConnection:
    """A connection with its secrets unsealed, for the duration of one send or check."""

    row: ChannelConnection
    credentials: dict[str, str]
    app_secret: str | None  # None: the channel verifies with the platform's secret


def hash_verify_token(token: str) -> str:
    return hashlib.sha256(("aibroker-verify:" + token).encode()).hexdigest()


def _context(connection_id: str, what: str) -> str:
    return f"channel_connections:{connection_id}:{what}"


def _secret_keys() -> list[str]:
    settings = get_settings()
    keys = [settings.server.secret_key]
    previous = getattr(getattr(settings, "accounts", None), "secret_key_previous", None)
    if previous:
        keys.append(previous)
    return keys


def _unseal(sealed: bytes, key_id: str, context: str) -> str:
    keys = _secret_keys()
    keys.sort(key=lambda k: crypto.key_id(k) != key_id)  # the key that sealed it first
    for key in keys:
        try:
            return crypto.unseal(sealed, key, context=context)
        except Exception:  # noqa: S112 - try the next key (rotation in progress)
            continue
    raise InvalidRequest("A stored channel secret cannot be opened with the configured AIBROKER_SECRET_KEY.")


def open_app_secret(row: ChannelConnection) -> str | None:
    """The connection's own webhook secret, or None when it has none (see `platform_secret`)."""
    if row.sealed_app_secret is None:
        return None
    return _unseal(row.sealed_app_secret, row.key_id, _context(row.id, "app_secret"))


def open_connection(row: ChannelConnection) -> OpenConnection:
    credentials = json.loads(_unseal(row.sealed_credentials, row.key_id, _context(row.id, "credentials")))
    return OpenConnection(row, credentials, open_app_secret(row))


def platform_secret(channel: str, messaging: MessagingSettings) -> str | None:
    """The platform-wide app secret of a channel (META_APP_SECRET, TIKTOK_CLIENT_SECRET): a SaaS
    runs one Meta / TikTok app for every tenant."""
    return (messaging.tiktok_client_secret if channel == "tiktok" else messaging.meta_app_secret) or None


def signing_secret(row: ChannelConnection, messaging: MessagingSettings) -> str | None:
    """The secret this connection's webhooks must be signed with: its own, else the platform's.
    None: nothing can sign for it, and its events are refused."""
    return open_app_secret(row) or platform_secret(row.channel, messaging)


def reseal(row: ChannelConnection, old_secret: str, new_secret: str) -> None:
    """Re-seal one row's secrets under a new key (for `aibroker secrets rotate`)."""
    for column, what in (("sealed_credentials", "credentials"), ("sealed_app_secret", "app_secret")):
        if getattr(row, column) is None:
            continue  # no own app secret: the platform's signs for it
        plain = crypto.unseal(getattr(row, column), old_secret, context=_context(row.id, what))
        setattr(row, column, crypto.seal(plain, new_secret, context=_context(row.id, what)))
    row.key_id = crypto.key_id(new_secret)


async def create_connection(
    session: AsyncSession,
    *,
    organization_id: str,
    channel: str,
    credentials: dict[str, Any],
    verify_token: str | None,
    app_secret: str | None,
    ai_enabled: bool,
    branch: str | None = None,
    options: dict[str, Any] | None = None,
    platform_secret: str | None = None,
) -> ChannelConnection:
    """A new connection. `platform_secret`: the platform's app secret of this channel; with it,
    the connection may have no secret of its own (its webhooks verify with the platform's)."""
    if channel not in CHANNELS:
        raise InvalidRequest(f"channel must be one of {', '.join(CHANNELS)}.", param="channel")
    creds = {k: str(v).strip() for k, v in (credentials or {}).items() if v is not None and str(v).strip()}
    missing = [f for f in REQUIRED[channel] if f not in creds]
    if missing:
        raise InvalidRequest(f"credentials for {channel} need: {', '.join(missing)}.", param="credentials")
    if channel == "tiktok":
        app_secret = app_secret or creds.get("client_secret")  # TikTok signs webhooks with the client secret
    if not app_secret and not platform_secret:
        name = "TIKTOK_CLIENT_SECRET" if channel == "tiktok" else "META_APP_SECRET"
        raise InvalidRequest(f"app_secret is required: webhook signatures are checked with it (or set the platform's {name}).",
                             param="app_secret")
    too_long = [f for f in ACCOUNT_FIELDS[channel] if len(creds.get(f, "")) > MAX_ACCOUNT_ID]
    if too_long:  # the id columns hold 100 characters; platform ids are far shorter
        raise InvalidRequest(f"credentials.{too_long[0]} is longer than {MAX_ACCOUNT_ID} characters.", param="credentials")
    account_key = creds[ROUTING_FIELD[channel]]
    row_id = new_id("chn")
    columns = {column: creds.pop(field) for field, column in ACCOUNT_FIELDS[channel].items() if field in creds}
    await _refuse_taken(session, channel, {"account_key": account_key, **columns})
    secret = get_settings().server.secret_key
    row = ChannelConnection(
        id=row_id, organization_id=organization_id, branch=branch, channel=channel, status="active",
        ai_enabled=ai_enabled, account_key=account_key, **columns,
        sealed_credentials=crypto.seal(json.dumps(creds), secret, context=_context(row_id, "credentials")),
        sealed_app_secret=crypto.seal(app_secret, secret, context=_context(row_id, "app_secret")) if app_secret else None,
        key_id=crypto.key_id(secret),
        verify_token_hash=hash_verify_token(verify_token) if verify_token else None,
        options=options or {}, updated_at=utcnow(),
    )
    try:
        async with session.begin_nested():  # a concurrent registration of the same account: 409, not 500
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise _taken(channel, account_key) from None
    return row


def _taken(channel: str, account_id: str) -> Conflict:
    return Conflict(f"This {channel} account ({account_id}) is already connected (to this or another organization).",
                    param="credentials", code=ACCOUNT_ID_TAKEN)


async def _refuse_taken(session: AsyncSession, channel: str, ids: dict[str, str]) -> None:
    """409 when one of the account ids is another connection's, in any organization."""
    wanted = [(getattr(ChannelConnection, c), ids[c]) for c in UNIQUE_COLUMNS if ids.get(c)]
    taken = await session.scalar(
        select(ChannelConnection.account_key)
        .where(ChannelConnection.channel == channel, or_(*(column == value for column, value in wanted))).limit(1)
    )
    if taken is not None:
        raise _taken(channel, ids["account_key"])


async def list_connections(session: AsyncSession, organization_id: str) -> list[ChannelConnection]:
    rows = await session.scalars(
        select(ChannelConnection).where(ChannelConnection.organization_id == organization_id).order_by(ChannelConnection.created_at)
    )
    return list(rows)


async def get_connection(session: AsyncSession, organization_id: str, connection_id: str) -> ChannelConnection:
    row = await session.scalar(
        select(ChannelConnection).where(ChannelConnection.id == connection_id, ChannelConnection.organization_id == organization_id)
    )
    if row is None:
        raise NotFound(f"No channel connection '{connection_id}'.", param="id")
    return row


async def tenant_connections(session: AsyncSession, slug: str, channel: str) -> list[ChannelConnection]:
    """The connections of the tenant named in a webhook URL, for one channel."""
    rows = await session.scalars(
        select(ChannelConnection)
        .join(Organization, Organization.id == ChannelConnection.organization_id)
        .where(Organization.slug == slug, ChannelConnection.channel == channel, ChannelConnection.status == "active")
    )
    return list(rows)


async def connections_by_account(session: AsyncSession, channel: str, keys: set[str], field: str = "account_key") -> list[ChannelConnection]:
    if not keys:
        return []
    column = getattr(ChannelConnection, field)
    rows = await session.scalars(
        select(ChannelConnection).where(ChannelConnection.channel == channel, column.in_(keys), ChannelConnection.status == "active")
    )
    return list(rows)


async def connections_by_verify_token(session: AsyncSession, channel: str, token: str, slug: str | None) -> bool:
    stmt = select(ChannelConnection.verify_token_hash).where(ChannelConnection.channel == channel)
    if slug is not None:
        stmt = stmt.join(Organization, Organization.id == ChannelConnection.organization_id).where(Organization.slug == slug)
    wanted = hash_verify_token(token)
    return any(h and hmac.compare_digest(h, wanted) for h in await session.scalars(stmt))


def webhook_path(channel: str, slug: str) -> str:
    """The tenant's callback path for a channel (GET verification, POST events)."""
    return f"/api/webhook/{channel}/{slug}"


def update_connection(row: ChannelConnection, *, ai_enabled: bool | None = None, options: dict[str, Any] | None = None) -> None:
    """Turn the AI on or off for a channel, or replace its options (None: unchanged)."""
    if ai_enabled is not None:
        row.ai_enabled = ai_enabled
    if options is not None:
        row.options = options
    row.updated_at = utcnow()


def connection_view(row: ChannelConnection) -> dict[str, Any]:
    """What the API shows of a connection: ids and flags, never tokens or secrets."""
    return {
        "id": row.id, "channel": row.channel, "branch": row.branch, "status": row.status, "ai_enabled": row.ai_enabled,
        "account_id": row.account_key, "phone_number_id": row.phone_number_id,
        "business_account_id": row.business_account_id, "page_id": row.page_id,
        "instagram_account_id": row.instagram_account_id, "tiktok_client_key": row.tiktok_client_key,
        "tiktok_business_id": row.tiktok_business_id, "has_verify_token": row.verify_token_hash is not None,
        "options": row.options or {}, "created_at": row.created_at,
    }
