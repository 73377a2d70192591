"""Webhook security and intake: GET verification, forged and unsigned posts, TikTok's
timestamped signature, replays; channel secrets never returned; tenant isolation."""

from __future__ import annotations

import time

import pytest

from tests.messaging.support import channel_body, connect, inbound, post_webhook, run_jobs, signed

CHANNELS = ["whatsapp", "instagram", "facebook", "tiktok"]


@pytest.fixture
def acme(broker):
    return broker.create_org("Acme", credit="10", slug="acme")


@pytest.mark.parametrize("channel", CHANNELS)
def test_forged_or_unsigned_events_are_refused_and_nothing_is_stored(broker, acme, channel):
    connect(broker, acme["api_key"], channel)
    payload, _ = inbound(channel, "hola")
    raw, headers = signed(channel, payload, secret="not-the-secret")
    with broker.client() as client:
        forged = client.post(f"/api/webhook/{channel}/acme", content=raw, headers=headers)
        shared = client.post(f"/api/webhook/{channel}", content=raw, headers=headers)
        unsigned = client.post(f"/api/webhook/{channel}/acme", content=raw, headers={"content-type": "application/json"})
        good_raw, good_headers = signed(channel, payload)
        tampered = client.post(f"/api/webhook/{channel}/acme", content=good_raw.replace(b"hola", b"HOLA"), headers=good_headers)
    assert (forged.status_code, shared.status_code, unsigned.status_code, tampered.status_code) == (403, 403, 401, 403)
    assert forged.json()["error"]["code"] == "invalid_signature"
    assert broker.scalar("select count(*) from webhook_events") == 0
    assert broker.scalar("select count(*) from jobs") == 0


def test_tiktok_signature_too_old_is_refused(broker, acme):
    connect(broker, acme["api_key"], "tiktok")
    payload, _ = inbound("tiktok", "hola")
    with broker.client() as client:
        old = post_webhook(client, "tiktok", "acme", payload, at=int(time.time()) - 3600)
        fresh = post_webhook(client, "tiktok", "acme", payload)
    assert (old.status_code, fresh.status_code) == (403, 200)


@pytest.mark.parametrize("channel", CHANNELS)
def test_get_verification_answers_the_challenge(broker, acme, channel):
    connect(broker, acme["api_key"], channel)
    good = {"hub.mode": "subscribe", "hub.verify_token": f"verify-{channel}", "hub.challenge": "1158201444"}
    with broker.client() as client:
        tenant = client.get(f"/api/webhook/{channel}/acme", params=good)
        shared = client.get(f"/api/webhook/{channel}", params=good)
        wrong = client.get(f"/api/webhook/{channel}/acme", params={**good, "hub.verify_token": "nope"})
        other = client.get(f"/api/webhook/{channel}/globex", params=good)
    assert (tenant.status_code, tenant.text, tenant.headers["content-type"].split(";")[0]) == (200, "1158201444", "text/plain")
    assert (shared.status_code, shared.text) == (200, "1158201444")
    assert (wrong.status_code, other.status_code) == (403, 403)
    if channel == "tiktok":  # seed 004's form
        with broker.client() as client:
            seed_form = client.get("/api/webhook/tiktok/acme", params={"challenge": "XYZ", "verify_token": "verify-tiktok"})
        assert (seed_form.status_code, seed_form.text) == (200, "XYZ")


def test_unknown_tenant_or_channel(broker, acme):
    payload, _ = inbound("whatsapp", "hola")
    with broker.client() as client:
        assert post_webhook(client, "whatsapp", "nobody", payload).status_code == 404
        assert post_webhook(client, "telegram", None, payload).status_code == 404


def test_batched_events_are_each_stored_once(broker, acme):
    connect(broker, acme["api_key"], "whatsapp")
    first, _ = inbound("whatsapp", "uno")
    second, _ = inbound("whatsapp", "dos")
    first["entry"].extend(second["entry"])  # Meta batches several entries in one POST
    with broker.client() as client:
        assert post_webhook(client, "whatsapp", "acme", first).json() == {"received": 2, "duplicates": 0, "ignored": 0}
        assert post_webhook(client, "whatsapp", "acme", second).json() == {"received": 0, "duplicates": 1, "ignored": 0}


def test_channel_secrets_are_sealed_and_never_returned(broker, acme):
    created = connect(broker, acme["api_key"], "whatsapp")
    with broker.client(acme["api_key"]) as api:
        listed = api.get("/api/channels").json()["data"]
        duplicate = api.post("/api/channels", json=channel_body("whatsapp"))
        missing = api.post("/api/channels", json={"channel": "facebook", "credentials": {"page_id": "1"}, "app_secret": "x"})
    text = str(created) + str(listed)
    for secret in ("wa-token", "meta-app-secret", "verify-whatsapp"):
        assert secret not in text
    assert created["webhook_path"] == "/api/webhook/whatsapp/acme" and listed[0]["phone_number_id"] == "420000000000002"
    assert duplicate.status_code == 409 and missing.status_code == 400
    raw = broker.scalar("select sealed_credentials from channel_connections")
    assert b"wa-token" not in bytes(raw)


def test_no_endpoint_leaks_across_tenants(broker, acme, graph, tiktok):
    from tests.messaging.test_flow import allow_sends

    globex = broker.create_org("Globex", credit="10", slug="globex")
    allow_sends(graph, tiktok, "whatsapp")
    channel = connect(broker, acme["api_key"], "whatsapp")
    with broker.client() as client:
        post_webhook(client, "whatsapp", "acme", inbound("whatsapp", "hola")[0])
    run_jobs(broker)
    with broker.client(acme["api_key"]) as api:
        [lead] = api.get("/api/leads").json()["data"]
        [conversation] = api.get("/api/conversations").json()["data"]
    cid = conversation["id"]
    with broker.client(globex["api_key"]) as other:
        assert other.get("/api/leads").json()["data"] == [] and other.get("/api/conversations").json()["data"] == []
        assert other.get("/api/channels").json()["data"] == []
        assert other.get(f"/api/leads/{lead['id']}").status_code == 404
        assert other.get(f"/api/conversations/{cid}/messages").status_code == 404
        assert other.post(f"/api/conversations/{cid}/messages", json={"content": "hi"}).status_code == 404
        assert other.post(f"/api/conversations/{cid}/handoff", json={"to": "human"}).status_code == 404
        assert other.patch(f"/api/conversations/{cid}", json={"status": "closed"}).status_code == 404
        assert other.delete(f"/api/channels/{channel['id']}").status_code == 404
    with broker.client() as anonymous:
        assert anonymous.get("/api/leads").status_code == 401
