"""Provider keys' lifecycle through the HTTP API: organizations' own keys (expiry, monthly
limit, usage, last used) and the platform's keys stored in the database (managed by the
platform, rotated without restart)."""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from aibroker.billing.audit import verify
from aibroker.billing.estimate import chat_input_bound
from aibroker.billing.pricing import bound_cost
from aibroker.gateway.validation import capped_output
from aibroker.models import ApiKey, PlatformProviderKey, ProviderActivity, ProviderCredential, UsageRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.support.accounts import bearer, signup
from tests.support.broker import serving

OWN = "sk-org-own-key-0001"
CHAT = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 20}


@pytest.fixture
def open_upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=None) as fake:  # any key; records which came
        yield fake


@pytest.fixture
def broker_env(broker_env, open_upstream):
    return {**broker_env, "OPENAI_BASE_URL": open_upstream.base_url, "AIBROKER_BYOK_FEE_MICROS": "1",
            "AIBROKER_LAST_USED_FLUSH_SECONDS": "0.1", "AIBROKER_PLATFORM_KEYS_CACHE_SECONDS": "0.2",
            "AIBROKER_CACHE_ENABLED": "false", "AIBROKER_BYOK_CACHE_SECONDS": "0"}


@pytest.fixture
def org(broker):
    return broker.create_org("Acme", credit="10", plan="enterprise")


def _auth(fake: FakeOpenAI) -> str:
    return fake.requests[-1].headers["authorization"]


def _until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def _bound(broker) -> int:
    model = broker.services.catalog.resolve(CHAT["model"])
    cap = broker.settings.gateway.default_max_tokens
    return bound_cost(model, chat_input_bound(CHAT, model.context_length), capped_output(model, CHAT, cap), 0)


def test_own_key_expiry_is_honoured(broker, org, open_upstream):
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    with broker.client(org["api_key"]) as tenant:
        stored = tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": OWN, "expires_at": soon})
        assert stored.status_code == 201 and stored.json()["expired"] is False
        assert tenant.post("/v1/chat/completions", json=CHAT).headers["x-aibroker-cost-micros"] == "1"
        assert _auth(open_upstream) == f"Bearer {OWN}"
        past = tenant.patch("/api/provider-keys/openai", json={"expires_at": "2020-01-01T00:00:00Z"})
        assert past.status_code == 400
        with broker.db.begin() as conn:  # time passes: the key is now past its expiry
            conn.execute(text("UPDATE provider_credentials SET expires_at = :t"), {"t": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)})
        expired = tenant.post("/v1/chat/completions", json=CHAT)
        assert expired.status_code == 200 and _auth(open_upstream) == "Bearer sk-test"
        assert int(expired.headers["x-aibroker-cost-micros"]) > 1
        assert tenant.get("/api/provider-keys").json()[0]["expired"] is True
        assert tenant.patch("/api/provider-keys/openai", json={"expires_at": None}).json()["expires_at"] is None
        assert tenant.post("/v1/chat/completions", json=CHAT).headers["x-aibroker-cost-micros"] == "1"
        assert tenant.patch("/api/provider-keys/anthropic", json={"expires_at": None}).status_code == 404
        assert tenant.patch("/api/provider-keys/openai", json={"monthly_limit_micros": 0}).status_code == 422


def test_monthly_limit_is_exact_and_falls_back_to_the_platform_key(broker, org, open_upstream):
    bound = _bound(broker)
    limit = 3 * bound  # room for three requests at their bound
    with broker.client(org["api_key"]) as tenant:
        assert tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": OWN, "monthly_limit_micros": limit}).status_code == 201

        def one(_: int) -> int:
            with broker.client(org["api_key"]) as c:
                answer = c.post("/v1/chat/completions", json=CHAT)
                assert answer.status_code == 200, answer.text
                return int(answer.headers["x-aibroker-cost-micros"])

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            costs = list(pool.map(one, range(12)))
    broker.flush()
    rows = [r for r in broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"]) if r.status == "success"]
    own = [r for r in rows if r.byok]
    assert len(rows) == 12 and 1 <= len(own) and len(rows) - len(own) >= 1  # some on the own key, the rest on the platform's
    assert sorted(c for c in costs if c == 1) == [1] * len(own)
    spent = sum(r.provider_cost_micros for r in own)

    def settled():
        [row] = broker.rows(ProviderCredential, ProviderCredential.organization_id == org["organization_id"])
        return row if row.usage_micros == spent else None

    row = _until(settled)
    assert row is not None and row.usage_micros <= limit and row.usage_month == dt.datetime.now(dt.UTC).strftime("%Y-%m")
    with broker.client(org["api_key"]) as tenant:
        [info] = tenant.get("/api/provider-keys").json()
        assert info["usage_micros"] == spent and info["monthly_limit_micros"] == limit
        # Raising the limit lets the key serve again; a limit below what is used stops it.
        assert tenant.patch("/api/provider-keys/openai", json={"monthly_limit_micros": spent + bound}).status_code == 200
        assert tenant.post("/v1/chat/completions", json=CHAT).headers["x-aibroker-cost-micros"] == "1"
        assert tenant.patch("/api/provider-keys/openai", json={"monthly_limit_micros": 1}).status_code == 200
        assert int(tenant.post("/v1/chat/completions", json=CHAT).headers["x-aibroker-cost-micros"]) > 1
        assert _auth(open_upstream) == "Bearer sk-test"
    broker.flush()
    assert verify(broker.db).problems == []


def test_last_used_is_written_coalesced(broker, org, open_upstream):
    with broker.client(org["api_key"]) as tenant:
        assert tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": OWN}).status_code == 201
        for _ in range(5):
            assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert tenant.post("/v1/chat/completions", json={**CHAT, "model": "mock-chat"}).status_code == 200
    org_id = org["organization_id"]
    assert _until(lambda: broker.rows(ApiKey, ApiKey.organization_id == org_id)[0].last_used_at)
    assert _until(lambda: {r.provider for r in broker.rows(ProviderActivity)} >= {"openai", "mock"})
    broker.flush()
    spent = sum(r.provider_cost_micros for r in broker.rows(UsageRecord, UsageRecord.organization_id == org_id) if r.byok)
    cred = _until(lambda: (r := broker.rows(ProviderCredential)[0]).last_used_at and r.usage_micros == spent and r)
    assert cred and spent > 0  # an unlimited key's usage is summed by the same coalesced writer
    with broker.client(org["api_key"]) as tenant:
        assert tenant.get("/api/keys").json()[0]["last_used_at"] is not None
        assert tenant.get("/api/provider-keys").json()[0]["last_used_at"] is not None


def test_platform_keys_managed_by_the_platform_and_rotated_without_restart(broker, org, open_upstream, database_url, broker_env, monkeypatch):
    with broker.client(org["api_key"]) as tenant:
        assert tenant.get("/api/admin/provider-keys").status_code in (401, 403)
    owner = signup(broker, "owner@example.com", organization_name="Mine")
    with broker.client() as http:
        denied = http.get("/api/admin/provider-keys", headers=bearer(owner["access_token"]))
        assert denied.status_code == 403
    with broker.admin() as admin, broker.client(org["api_key"]) as tenant:
        assert admin.post("/api/admin/provider-keys", json={"provider": "mock", "api_key": "whatever-123"}).status_code == 400
        assert admin.post("/api/admin/provider-keys", json={"provider": "nope", "api_key": "whatever-123"}).status_code == 400
        assert admin.post("/api/admin/provider-keys", json={"provider": "openai", "api_key": "two words here"}).status_code == 400
        made = admin.post("/api/admin/provider-keys", json={"provider": "OpenAI", "api_key": "sk-db-first-1111"})
        assert made.status_code == 201 and made.json()["hint"] == "1111"
        assert admin.post("/api/admin/provider-keys", json={"provider": "openai", "api_key": "sk-db-again-2"}).status_code == 409
        tenant.post("/v1/chat/completions", json=CHAT)
        assert _auth(open_upstream) == "Bearer sk-db-first-1111"  # the stored key beats OPENAI_API_KEY
        [stored] = broker.rows(PlatformProviderKey)
        assert b"sk-db-first" not in bytes(stored.sealed_key)
        with serving(database_url, broker_env, monkeypatch) as second:  # another process on the same database
            with second.client(org["api_key"]) as other:
                other.post("/v1/chat/completions", json=CHAT)
                assert _auth(open_upstream) == "Bearer sk-db-first-1111"
                rotated = admin.post("/api/admin/provider-keys/openai/rotate", json={"api_key": "sk-db-second-2222"})
                assert rotated.status_code == 200 and rotated.json()["rotated_at"] is not None
                tenant.post("/v1/chat/completions", json=CHAT)
                assert _auth(open_upstream) == "Bearer sk-db-second-2222"  # this process: at once

                def second_sees_it():
                    other.post("/v1/chat/completions", json=CHAT)
                    return _auth(open_upstream) == "Bearer sk-db-second-2222"

                assert _until(second_sees_it)  # the other: within its cache window, no restart
        listed = admin.get("/api/admin/provider-keys")
        assert listed.status_code == 200 and "sk-db" not in listed.text and listed.json()[0]["hint"] == "2222"
        assert _until(lambda: admin.get("/api/admin/provider-keys").json()[0]["last_used_at"])
        assert admin.post("/api/admin/provider-keys/anthropic/rotate", json={"api_key": "sk-ant-xxxx"}).status_code == 404
        assert admin.delete("/api/admin/provider-keys/openai").status_code == 204
        assert admin.delete("/api/admin/provider-keys/openai").status_code == 404
        tenant.post("/v1/chat/completions", json=CHAT)
        assert _auth(open_upstream) == "Bearer sk-test"  # back to the environment's key


def test_a_stored_platform_key_enables_a_provider_without_environment_key(broker, org, monkeypatch):
    with FakeOpenAI(api_key="gsk-db-key-9999", models=["llama-3.1-8b-instant"]) as groq:
        monkeypatch.setenv("GROQ_BASE_URL", groq.base_url)
        body = {**CHAT, "model": "groq/llama-3.1-8b-instant"}
        with broker.admin() as admin, broker.client(org["api_key"]) as tenant:
            assert tenant.post("/v1/chat/completions", json=body).status_code in (400, 404)
            assert admin.post("/api/admin/provider-keys", json={"provider": "groq", "api_key": "gsk-db-key-9999"}).status_code == 201
            served = tenant.post("/v1/chat/completions", json=body)
            assert served.status_code == 200, served.text
            assert groq.requests[-1].headers["authorization"] == "Bearer gsk-db-key-9999"
            assert admin.delete("/api/admin/provider-keys/groq").status_code == 204
            gone = tenant.post("/v1/chat/completions", json=body)  # no key left anywhere: the provider is gone again
            assert gone.status_code in (400, 404) and len(groq.requests) == 1
