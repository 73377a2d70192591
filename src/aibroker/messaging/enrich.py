"""Lead enrichment (seed 004: "Obtiene información del perfil vía API cuando es posible"):
a new lead's name and profile picture from the platform's profile API, when the webhook
did not carry them.

    messaging.enrich_lead   a queued job, apart from the reply (which never waits for it)

Facebook Messenger: GET /{PSID}?fields=first_name,last_name,profile_pic (Page token).
Instagram: GET /{IGSID}?fields=name,username,profile_pic (the same token). WhatsApp sends the
profile name in the webhook (`contacts[].profile.name`) and has no picture API; TikTok's
webhook carries the sender's display name (`from`), and no profile lookup of a conversation's
user is documented for Business Messaging, so neither is asked.

Best effort: a lead is looked up once (`profile_fetched_at` is its cache); a refusal (expired
token, user gone, no permission) is final for that lead; network errors, 429 and 5xx are
retried a few times with the queue's backoff. A name the lead already has is never replaced.
"""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.jobs import JobContext, RetryLater, enqueue, register
from aibroker.kit.clock import utcnow
from aibroker.messaging.channels import open_connection
from aibroker.messaging.senders import client
from aibroker.models import ChannelConnection, Lead

ENRICH = "messaging.enrich_lead"
PROFILE_FIELDS = {"facebook": "first_name,last_name,profile_pic", "instagram": "name,username,profile_pic"}
MAX_ATTEMPTS = 3
PRIORITY = 1  # below the reply (5): enrichment never delays an answer
DELAY_SECONDS = 5.0  # and it runs after the reply has had its turn (the reply's own jobs come first)


async def enqueue_enrichment(session: AsyncSession, lead: Lead, connection: ChannelConnection, *, enabled: bool) -> bool:
    """Queue the lookup for a lead just created without a name or picture (same transaction)."""
    if not enabled or not lead.is_new or lead.channel not in PROFILE_FIELDS or (lead.name and lead.profile_picture_url):
        return False
    await enqueue(session, ENRICH, {"lead_id": lead.id, "connection_id": connection.id},
                  organization_id=lead.organization_id, priority=PRIORITY, max_attempts=MAX_ATTEMPTS, delay_seconds=DELAY_SECONDS)
    return True


def _profile(channel: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
    if channel == "facebook":
        name = " ".join(p for p in (body.get("first_name"), body.get("last_name")) if isinstance(p, str) and p.strip())
    else:
        name = body.get("name") if isinstance(body.get("name"), str) else None
        name = name or (body.get("username") if isinstance(body.get("username"), str) else None)
    picture = body.get("profile_pic") if isinstance(body.get("profile_pic"), str) else None
    return (name.strip()[:200] or None) if name else None, picture


async def _fetch(graph: str, user_id: str, channel: str, token: str, timeout: float) -> dict[str, Any] | str:
    """The profile body, or why it will never come (a str)."""
    try:
        response = await client(timeout).get(f"{graph}/{user_id}", params={"fields": PROFILE_FIELDS[channel], "access_token": token})
    except httpx.TransportError as exc:
        raise RetryLater(f"network error fetching a profile: {type(exc).__name__}") from exc
    if response.status_code == 429 or response.status_code >= 500:
        raise RetryLater(f"Graph API profile lookup: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: not JSON"
    if response.status_code >= 400 or not isinstance(body, dict):
        error = (body.get("error") or {}) if isinstance(body, dict) else {}
        return f"HTTP {response.status_code} code {error.get('code')}: {error.get('message') or ''}"[:300]
    return body


@register(ENRICH)
async def enrich_lead(job: JobContext) -> dict[str, Any]:
    settings = job.services.settings.messaging
    async with job.reads() as reads:  # the HTTP call happens before the job's write transaction
        lead = await reads.get(Lead, job.payload["lead_id"])
        row = await reads.get(ChannelConnection, job.payload["connection_id"])
        if lead is None or row is None or lead.profile_fetched_at is not None:
            return {"skipped": "already looked up" if lead is not None and row is not None else "gone"}
        channel, user_id = lead.channel, lead.external_user_id
        token = open_connection(row).credentials.get("access_token")
    if not token:
        found: dict[str, Any] | str = "the connection has no access token"
    else:
        found = await _fetch(settings.meta_graph_url, user_id, channel, token, settings.send_timeout_seconds)
    lead = await job.session.get(Lead, lead.id)
    if lead is None:
        return {"skipped": "gone"}
    lead.profile_fetched_at = utcnow()
    if isinstance(found, str):
        return {"enriched": False, "reason": found}
    name, picture = _profile(channel, found)
    if name and not lead.name:
        lead.name = name
    if picture:
        lead.profile_picture_url = picture[:2000]
    lead.updated_at = utcnow()
    return {"enriched": True, "name": lead.name, "picture": bool(picture)}
