"""Who may sign for whom, and how much a webhook may send: an event is signed with the secret
of the connection it is routed to; the platform's app secret signs for channels without their
own; an account id belongs to one connection across all tenants; bodies stop at the limit."""

from __future__ import annotations

import concurrent.futures
import json

import pytest

from aibroker.config import Settings
from tests.messaging.malformed_bodies import post_without_end
from tests.messaging.support import PHONE_ID, channel_body, connect, inbound, post_webhook, signed
from tests.support.broker import serving

CHANNELS = ["whatsapp", "instagram", "facebook", "tiktok"]
PLATFORM_META, PLATFORM_TIKTOK = "platform-meta-app-secret", "platform-tiktok-client-secret"


def _connect_with_secret(broker, key: str, channel: str, suffix: str, secret: str | None) -> dict:
    body = channel_body(channel, suffix=suffix)
    body.pop("app_secret", None)
    body["credentials"].pop("client_secret", None)
    if secret is not None:
        body["app_secret"] = secret
    with broker.client(key) as client:
        response = client.post("/api/channels", json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("channel", CHANNELS)
def test_one_connections_secret_does_not_sign_for_another_of_the_same_tenant(broker, channel):
    acme = broker.create_org("Acme", credit="10", slug="acme")
    _connect_with_secret(broker, acme["api_key"], channel, "1", "secret-one")
    _connect_with_secret(broker, acme["api_key"], channel, "2", "secret-two")
    for_two, _ = inbound(channel, "hola", suffix="2")
    with broker.client() as client:
        tenant = post_webhook(client, channel, "acme", for_two, secret="secret-one")
        shared = post_webhook(client, channel, None, for_two, secret="secret-one")
        assert (tenant.status_code, shared.status_code) == (403, 403), tenant.text
        assert broker.scalar("select count(*) from webhook_events") == 0
        if channel != "tiktok":  # a batch naming both, signed by one of them, is refused whole
            for_one, _ = inbound(channel, "uno", suffix="1")
            batch = {**for_one, "entry": for_one["entry"] + for_two["entry"]}
            assert post_webhook(client, channel, "acme", batch, secret="secret-one").status_code == 403
            assert post_webhook(client, channel, None, batch, secret="secret-one").status_code == 403
            assert broker.scalar("select count(*) from webhook_events") == 0
        own = post_webhook(client, channel, "acme", for_two, secret="secret-two")
    assert own.status_code == 200 and own.json()["received"] == 1, own.text
    [connection_id] = [broker.scalar("select connection_id from webhook_events")]
    assert broker.scalar("select account_key from channel_connections where id = :i", i=connection_id).endswith("2")


@pytest.fixture
def platform_env(broker_env):
    return {**broker_env, "META_APP_SECRET": PLATFORM_META, "TIKTOK_CLIENT_SECRET": PLATFORM_TIKTOK}


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_platform_secret_signs_for_channels_without_their_own(database_url, platform_env, monkeypatch, channel):
    platform = PLATFORM_TIKTOK if channel == "tiktok" else PLATFORM_META
    with serving(database_url, platform_env, monkeypatch) as broker:
        acme = broker.create_org("Acme", credit="10", slug="acme")
        shared_app = _connect_with_secret(broker, acme["api_key"], channel, "1", None)  # registration without a secret
        own_app = _connect_with_secret(broker, acme["api_key"], channel, "2", "own-secret")
        assert "secret" not in json.dumps(shared_app).replace("has_verify_token", "")
        with broker.client() as client:
            results = {
                "platform signs, tenant route": post_webhook(client, channel, "acme", inbound(channel, "a", suffix="1")[0], secret=platform),
                "platform signs, shared route": post_webhook(client, channel, None, inbound(channel, "b", suffix="1")[0], secret=platform),
                "another secret": post_webhook(client, channel, "acme", inbound(channel, "c", suffix="1")[0], secret="own-secret"),
                "platform for a channel with its own": post_webhook(client, channel, None, inbound(channel, "d", suffix="2")[0], secret=platform),
                "its own": post_webhook(client, channel, None, inbound(channel, "e", suffix="2")[0], secret="own-secret"),
            }
        assert {k: r.status_code for k, r in results.items()} == {
            "platform signs, tenant route": 200, "platform signs, shared route": 200, "another secret": 403,
            "platform for a channel with its own": 403, "its own": 200,
        }
        assert broker.scalar("select count(*) from webhook_events") == 3
        assert own_app["id"] != shared_app["id"]


def test_a_channel_with_no_secret_at_all_refuses_everything(database_url, platform_env, broker_env, monkeypatch):
    """Registered under a platform secret that is later removed: nothing can sign for it."""
    with serving(database_url, platform_env, monkeypatch) as broker:
        acme = broker.create_org("Acme", credit="10", slug="acme")
        _connect_with_secret(broker, acme["api_key"], "whatsapp", "", None)
    monkeypatch.delenv("META_APP_SECRET")
    assert Settings().messaging.meta_app_secret is None
    with serving(database_url, broker_env, monkeypatch) as broker:
        payload, _ = inbound("whatsapp", "hola")
        raw = json.dumps(payload).encode()
        with broker.client() as client:
            refused = [post_webhook(client, "whatsapp", route, payload, secret=s).status_code
                       for route in ("acme", None) for s in (PLATFORM_META, "", "anything")]
            unsigned = client.post("/api/webhook/whatsapp/acme", content=raw, headers={"content-type": "application/json"})
            without = client.post("/api/channels", json={**channel_body("whatsapp", suffix="9"), "app_secret": None},
                                  headers={"authorization": f"Bearer {acme['api_key']}"})
        assert refused == [403] * 6 and unsigned.status_code == 401
        assert without.status_code == 400 and "META_APP_SECRET" in without.json()["error"]["message"]
        assert broker.scalar("select count(*) from webhook_events") == 0


@pytest.mark.parametrize("channel", CHANNELS)
def test_an_account_id_belongs_to_one_connection_across_tenants(broker, channel):
    acme = broker.create_org("Acme", credit="10", slug="acme")
    globex = broker.create_org("Globex", credit="10", slug="globex")
    connect(broker, acme["api_key"], channel)
    with broker.client(globex["api_key"]) as other, broker.client(acme["api_key"]) as same:
        again = other.post("/api/channels", json=channel_body(channel))
        padded = channel_body(channel)
        padded["credentials"] = {k: f" {v} " for k, v in padded["credentials"].items()}
        spaced = other.post("/api/channels", json=padded)
        twice = same.post("/api/channels", json=channel_body(channel))
        if channel == "instagram":  # the linked page too: another IG account on the same page
            same_page = channel_body(channel, suffix="x")
            same_page["credentials"]["page_id"] = channel_body(channel)["credentials"]["page_id"]
            page = other.post("/api/channels", json=same_page)
            assert (page.status_code, page.json()["error"]["code"]) == (409, "account_id_taken")
        too_long = channel_body(channel, suffix="9" * 120)
        long_id = other.post("/api/channels", json=too_long)
    assert long_id.status_code == 400, long_id.text
    for response in (again, spaced, twice):
        assert (response.status_code, response.json()["error"]["code"]) == (409, "account_id_taken"), response.text
    assert broker.scalar("select count(*) from channel_connections") == 1


def test_concurrent_registrations_of_one_account_give_one_201_and_409s(broker):
    tenants = [broker.create_org(f"T{i}", credit="1", slug=f"t{i}")["api_key"] for i in range(6)]

    def register(key: str) -> int:
        with broker.client(key) as client:
            return client.post("/api/channels", json=channel_body("whatsapp")).status_code

    with concurrent.futures.ThreadPoolExecutor(len(tenants)) as pool:
        statuses = sorted(pool.map(register, tenants))
    assert statuses == [201] + [409] * (len(tenants) - 1)
    assert broker.scalar("select count(*) from channel_connections where account_key = :k", k=PHONE_ID) == 1


@pytest.mark.parametrize("route", ["/api/webhook/whatsapp/acme", "/api/webhook/whatsapp", "/api/webhook/tiktok"])
def test_bodies_past_the_limit_are_413_while_reading(broker, route):
    acme = broker.create_org("Acme", credit="10", slug="acme")
    connect(broker, acme["api_key"], "whatsapp")
    limit = broker.settings.server.max_body_bytes
    payload, _ = inbound("whatsapp", "x" * (limit + 1024))
    raw, headers = signed("whatsapp", payload)
    with broker.client() as client:  # declared by Content-Length: refused before reading
        declared = client.post(route, content=raw, headers={**headers, "tiktok-signature": "t=1,s=00"})
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "body_too_large")
    # Chunked, never finished: only a server that stops at the limit can answer at all.
    answer = post_without_end(broker.port, route, {"x-hub-signature-256": "sha256=00", "tiktok-signature": "t=1,s=00"},
                              send=limit + 1024 * 1024)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body_too_large" in answer
    assert broker.scalar("select count(*) from webhook_events") == 0


def test_secret_rotation_keeps_a_channel_without_its_own_secret(database_url, platform_env, monkeypatch):
    from aibroker.kit import crypto
    from aibroker.tenancy.secrets import rotate

    with serving(database_url, platform_env, monkeypatch) as broker:
        acme = broker.create_org("Acme", credit="10", slug="acme")
        _connect_with_secret(broker, acme["api_key"], "whatsapp", "", None)
        old = broker.settings.server.secret_key
        report = rotate(broker.db, old_secret=old, new_secret="new-secret-key-0002")
        assert report.resealed["channel_connections"] == 1
        assert broker.scalar("select sealed_app_secret from channel_connections") is None
        assert broker.scalar("select key_id from channel_connections") == crypto.key_id("new-secret-key-0002")
