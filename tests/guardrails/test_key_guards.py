"""IP allowlists and request signing per API key, through the HTTP API."""

from __future__ import annotations

import time

import orjson
import pytest

from aibroker.models import ApiKey
from aibroker.tenancy.key_guard import sign

CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_MOCK_LATENCY_MS": "0", "AIBROKER_TRUSTED_PROXIES": "127.0.0.1"}


def _new_key(broker, org_key: str, **body) -> dict:
    with broker.client(org_key) as tenant:
        made = tenant.post("/api/keys", json={"name": "guarded", **body})
    assert made.status_code == 201, made.text
    return made.json()


def test_ip_allowlist_v4_v6_and_forwarded_for_from_trusted_proxy(broker):
    org = broker.create_org("Acme")
    key = _new_key(broker, org["api_key"], allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    with broker.client(key["key"]) as c:
        # The peer (127.0.0.1) is a trusted proxy: the client is the last untrusted hop.
        assert c.post("/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": "203.0.113.9"}).status_code == 200
        assert c.post("/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": "2001:db8::7"}).status_code == 200
        # A client cannot prepend its way in: the proxy appended the real address last.
        refused = c.post("/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": "203.0.113.9, 198.51.100.4"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ip_not_allowed"
        assert refused.json()["error"]["client_ip"] == "198.51.100.4"
        direct = c.post("/v1/chat/completions", json=CHAT)  # no header: the proxy itself, not allowed
        assert direct.status_code == 403
        # Management routes are guarded by the same key too.
        assert c.get("/api/keys").status_code == 403
    with broker.client(org["api_key"]) as owner:
        listed = {k["id"]: k for k in owner.get("/api/keys").json()}
        assert listed[key["id"]]["allowed_ips"] == ["2001:db8::/32", "203.0.113.0/24"]
        bad = owner.patch(f"/api/keys/{key['id']}", json={"allowed_ips": ["300.1.2.3/8"]})
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cidr"
        assert owner.patch(f"/api/keys/{key['id']}", json={"allowed_ips": ["127.0.0.1"]}).status_code == 200
    with broker.client(key["key"]) as c:
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(broker, monkeypatch):
    org = broker.create_org("Acme")
    broker.services.key_guards.trusted = ()
    key = _new_key(broker, org["api_key"], allowed_ips=["203.0.113.0/24"])
    with broker.client(key["key"]) as c:
        spoofed = c.post("/v1/chat/completions", json=CHAT, headers={"x-forwarded-for": "203.0.113.9"})
        assert spoofed.status_code == 403 and spoofed.json()["error"]["client_ip"] == "127.0.0.1"


def test_signed_requests_window_and_replay(broker):
    org = broker.create_org("Acme")
    key = _new_key(broker, org["api_key"], signing=True, signing_window_seconds=60)
    secret = key["signing_secret"]
    assert secret.startswith("abs_")
    row = broker.rows(ApiKey, ApiKey.id == key["id"])[0]
    assert secret.encode() not in bytes(row.sealed_signing_secret)  # stored sealed
    body = orjson.dumps(CHAT)
    headers = {"content-type": "application/json"}
    with broker.client(key["key"]) as c:
        def post(signature: str | None, content: bytes = body):
            extra = {"x-aibroker-signature": signature} if signature else {}
            return c.post("/v1/chat/completions", content=content, headers={**headers, **extra})

        missing = post(None)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "signature_required"
        now = int(time.time())
        good = sign(secret, now, body)
        assert post(good).status_code == 200
        replay = post(good)
        assert replay.status_code == 401 and replay.json()["error"]["code"] == "signature_replayed"
        old = post(sign(secret, now - 120, body))
        assert old.status_code == 401 and old.json()["error"]["code"] == "signature_expired"
        future = post(sign(secret, now + 120, body))
        assert future.status_code == 401 and future.json()["error"]["code"] == "signature_expired"
        tampered = post(sign(secret, now, body), content=body.replace(b"hello", b"HELLO"))
        assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "invalid_signature"
        wrong_secret = post(sign("abs_other", now, body))
        assert wrong_secret.status_code == 401 and wrong_secret.json()["error"]["code"] == "invalid_signature"
        for garbage in ("t=abc,v1=00", "v1=00", "t=1", "nonsense", "t=99999999999999999999,v1=1"):
            answer = post(garbage)
            assert answer.status_code == 401, garbage
        # Streaming and GET routes are signed the same way (a GET signs the empty body).
        streamed = c.post("/v1/chat/completions", content=orjson.dumps({**CHAT, "stream": True}),
                          headers={**headers, "x-aibroker-signature": sign(secret, int(time.time()), orjson.dumps({**CHAT, "stream": True}))})
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
        assert c.get("/api/keys", headers={"x-aibroker-signature": sign(secret, int(time.time()), b"")}).status_code == 200
    with broker.client(org["api_key"]) as owner:
        info = owner.patch(f"/api/keys/{key['id']}", json={"signing": True})
        assert info.status_code == 200 and info.json()["signing"] and info.json()["signing_secret"] not in (None, secret)
        rotated = info.json()["signing_secret"]
        listed = owner.get("/api/keys").text
        assert rotated not in listed and secret not in listed
    with broker.client(key["key"]) as c:
        stale = c.post("/v1/chat/completions", content=body, headers={**headers, "x-aibroker-signature": sign(secret, int(time.time()), body)})
        assert stale.status_code == 401
        fresh = c.post("/v1/chat/completions", content=body, headers={**headers, "x-aibroker-signature": sign(rotated, int(time.time()), body)})
        assert fresh.status_code == 200
    with broker.client(org["api_key"]) as owner:
        assert owner.patch(f"/api/keys/{key['id']}", json={"signing": False}).json()["signing"] is False
    with broker.client(key["key"]) as c:
        assert c.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_bad_guard_fields_are_400_or_422(broker):
    org = broker.create_org("Acme")
    with broker.client(org["api_key"]) as owner:
        assert owner.post("/api/keys", json={"allowed_ips": ["nope"]}).status_code == 400
        assert owner.post("/api/keys", json={"signing_window_seconds": 5}).status_code == 422
        assert owner.post("/api/keys", json={"allowed_ips": ["10.0.0.1"] * 101}).status_code == 422
        other = broker.create_org("Other")
        theirs = _new_key(broker, other["api_key"])
        assert owner.patch(f"/api/keys/{theirs['id']}", json={"allowed_ips": ["10.0.0.0/8"]}).status_code == 404
