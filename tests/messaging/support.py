"""Signed webhook payloads in each platform's exact format, and helpers to drive the broker."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import httpx

from aibroker.messaging.signatures import meta_signature, tiktok_signature
from tests.messaging.conftest import CRON_SECRET

_ids = itertools.count(1)
META_SECRET = "meta-app-secret"
TIKTOK_SECRET = "tiktok-client-secret"
WABA, PHONE_ID, PAGE_ID, IG_ID, TT_BUSINESS, TT_KEY = "310000000000001", "420000000000002", "100000000000010", "17840000000000001", "business-id-of-our-tenant", "aw_example_client_key"
TOKENS = {"whatsapp": "wa-token", "facebook": "page-token", "instagram": "ig-page-token", "tiktok": "tt-token"}


def uid(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


def channel_body(channel: str, *, suffix: str = "", template: dict | None = None) -> dict[str, Any]:
    creds = {
        "whatsapp": {"phone_number_id": PHONE_ID + suffix, "business_account_id": WABA, "access_token": TOKENS["whatsapp"]},
        "facebook": {"page_id": PAGE_ID + suffix, "access_token": TOKENS["facebook"]},
        "instagram": {"instagram_account_id": IG_ID + suffix, "page_id": "ig-page" + suffix, "access_token": TOKENS["instagram"]},
        "tiktok": {"client_key": TT_KEY + suffix, "client_secret": TIKTOK_SECRET, "business_id": TT_BUSINESS + suffix, "access_token": TOKENS["tiktok"]},
    }[channel]
    body: dict[str, Any] = {"channel": channel, "credentials": creds, "verify_token": f"verify-{channel}", "ai_enabled": True}
    if channel != "tiktok":
        body["app_secret"] = META_SECRET
    if template:
        body["options"] = {"reengagement_template": template}
    return body


def fake_node(channel: str, suffix: str = "") -> str:
    """The Graph node the sender posts to for this connection (the fake checks its token)."""
    return {"whatsapp": PHONE_ID + suffix, "facebook": PAGE_ID + suffix, "instagram": "ig-page" + suffix}[channel]


# -- inbound payloads (wire-formats.md) ----------------------------------------------------

def inbound(channel: str, text: str, *, user: str | None = None, at: float | None = None, suffix: str = "", name: str = "Ana Pérez") -> tuple[dict[str, Any], str]:
    """(payload, external message id) of one customer message."""
    at = at if at is not None else time.time()
    if channel == "whatsapp":
        wamid, user = uid("wamid.IN"), user or "5491155550000"
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5491100000000", "phone_number_id": PHONE_ID + suffix},
            "contacts": [{"profile": {"name": name}, "wa_id": user}],
            "messages": [{"from": user, "id": wamid, "timestamp": str(int(at)), "type": "text", "text": {"body": text}}],
        }}]}]}, wamid
    if channel in ("facebook", "instagram"):
        account = (PAGE_ID if channel == "facebook" else IG_ID) + suffix
        mid = uid("m_IN")
        return {"object": "page" if channel == "facebook" else "instagram", "entry": [{"id": account, "time": int(at * 1000), "messaging": [{
            "sender": {"id": user or "7000000000000001"}, "recipient": {"id": account}, "timestamp": int(at * 1000),
            "message": {"mid": mid, "text": text},
        }]}]}, mid
    msg_id, business = uid("msg_"), TT_BUSINESS + suffix
    content = {"conversation_id": "conv_123" + suffix, "message_id": msg_id, "timestamp": int(at * 1000), "type": "text",
               "text": {"body": text}, "from": "ana.perez", "from_user": {"id": user or "user-openid-of-ana"},
               "to": "ourshop", "to_user": {"id": business}}
    return {"client_key": TT_KEY + suffix, "event": "im_receive_msg", "create_time": int(at), "user_openid": business,
            "content": json.dumps(content)}, msg_id


def receipt(channel: str, external_id: str, status: str, *, user: str | None = None, suffix: str = "") -> dict[str, Any]:
    now = time.time()
    if channel == "whatsapp":
        return {"object": "whatsapp_business_account", "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "5491100000000", "phone_number_id": PHONE_ID + suffix},
            "statuses": [{"id": external_id, "status": status, "timestamp": str(int(now)), "recipient_id": user or "5491155550000",
                          "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"}}],
        }}]}]}
    if channel == "facebook":
        account = PAGE_ID + suffix
        kind = {"delivered": {"delivery": {"mids": [external_id], "watermark": int(now * 1000)}},
                "read": {"read": {"watermark": int(now * 1000)}}}[status]
        return {"object": "page", "entry": [{"id": account, "time": int(now * 1000), "messaging": [{
            "sender": {"id": user or "7000000000000001"}, "recipient": {"id": account}, "timestamp": int(now * 1000), **kind}]}]}
    if channel == "instagram":  # Instagram has read receipts only (messaging_seen)
        account = IG_ID + suffix
        return {"object": "instagram", "entry": [{"id": account, "time": int(now * 1000), "messaging": [{
            "sender": {"id": user or "7000000000000001"}, "recipient": {"id": account}, "timestamp": int(now * 1000),
            "read": {"mid": external_id}}]}]}
    business = TT_BUSINESS + suffix
    content = {"conversation_id": "conv_123" + suffix, "timestamp": int(now * 1000), "from_user": {"id": user or "user-openid-of-ana"}}
    return {"client_key": TT_KEY + suffix, "event": "im_mark_read_msg", "create_time": int(now), "user_openid": business,
            "content": json.dumps(content)}


def signed(channel: str, payload: dict[str, Any], *, secret: str | None = None, at: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(payload, ensure_ascii=True).encode()  # Meta signs the escaped-unicode form
    if channel == "tiktok":
        header = tiktok_signature(raw, secret or TIKTOK_SECRET, at or int(time.time()))
        return raw, {"tiktok-signature": header, "content-type": "application/json"}
    return raw, {"x-hub-signature-256": meta_signature(raw, secret or META_SECRET), "content-type": "application/json"}


def post_webhook(client: httpx.Client, channel: str, slug: str | None, payload: dict[str, Any], **kw: Any) -> httpx.Response:
    raw, headers = signed(channel, payload, **kw)
    path = f"/api/webhook/{channel}" + (f"/{slug}" if slug else "")
    return client.post(path, content=raw, headers=headers)


def run_jobs(broker: Any, rounds: int = 20) -> dict[str, int]:
    """Drain due jobs through the cron endpoint; totals of what happened."""
    totals: dict[str, int] = {}
    with broker.client(CRON_SECRET) as cron:
        for _ in range(rounds):
            response = cron.post("/api/jobs/process", json={"max_jobs": 50})
            assert response.status_code == 200, response.text
            data = response.json()
            for key in ("completed", "retried", "failed"):
                totals[key] = totals.get(key, 0) + data[key]
            if data["processed"] == 0:
                return totals
    raise AssertionError("jobs kept coming")


def connect(broker: Any, key: str, channel: str, **kw: Any) -> dict[str, Any]:
    with broker.client(key) as client:
        response = client.post("/api/channels", json=channel_body(channel, **kw))
    assert response.status_code == 201, response.text
    return response.json()
