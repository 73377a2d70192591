"""Bring your own key: the organization's key goes upstream, sealed at rest, never shown;
its requests are billed only the platform fee and recorded byok=True."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from aibroker.models import LedgerEntry, ProviderCredential, UsageRecord
from tests.billing.conftest import wallet_row
from tests.fakes.openai_upstream import FakeOpenAI

OWN_KEY = "sk-org-own-key-7781"
FEE = 7


@pytest.fixture
def open_upstream() -> Iterator[FakeOpenAI]:
    """A fake OpenAI that accepts any key (and records which one came)."""
    with FakeOpenAI(api_key=None) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, open_upstream):
    return {**broker_env, "OPENAI_BASE_URL": open_upstream.base_url, "AIBROKER_BYOK_FEE_MICROS": str(FEE)}


def _auth(fake: FakeOpenAI) -> str:
    return fake.requests[-1].headers["authorization"]


def test_byok_key_is_used_upstream_and_billed_only_the_fee(broker, org, open_upstream):
    chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "bring my own key"}]}
    with broker.client(org["api_key"]) as tenant:
        platform = tenant.post("/v1/chat/completions", json=chat)
        assert platform.status_code == 200 and _auth(open_upstream) == "Bearer sk-test"
        full_price = int(platform.headers["x-aibroker-cost-micros"])

        stored = tenant.post("/api/provider-keys", json={"provider": "OpenAI", "api_key": OWN_KEY})
        assert stored.status_code == 201
        assert stored.json()["provider"] == "openai" and stored.json()["hint"] == "7781"
        listed = tenant.get("/api/provider-keys")
        assert [k["provider"] for k in listed.json()] == ["openai"] and OWN_KEY not in listed.text

        own = tenant.post("/v1/chat/completions", json=chat)
        assert own.status_code == 200 and _auth(open_upstream) == f"Bearer {OWN_KEY}"
        assert own.headers["x-aibroker-cost-micros"] == str(FEE)
        streamed = tenant.post("/v1/chat/completions", json={**chat, "stream": True})
        assert streamed.status_code == 200 and _auth(open_upstream) == f"Bearer {OWN_KEY}"
        embed = tenant.post("/v1/embeddings", json={"model": "openai/text-embedding-3-small", "input": "hi"})
        assert embed.status_code == 200 and _auth(open_upstream) == f"Bearer {OWN_KEY}"
        mock = tenant.post("/v1/chat/completions", json={**chat, "model": "mock-chat"})  # another provider: full price
        assert int(mock.headers["x-aibroker-cost-micros"]) > FEE

        assert tenant.delete("/api/provider-keys/openai").status_code == 204
        assert tenant.delete("/api/provider-keys/openai").status_code == 404
        back = tenant.post("/v1/chat/completions", json=chat)
        assert _auth(open_upstream) == "Bearer sk-test" and int(back.headers["x-aibroker-cost-micros"]) == full_price

    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    byok = [r for r in rows if r.byok]
    assert len(byok) == 3 and {r.billed_cost_micros for r in byok} == {FEE}
    assert all(r.provider_cost_micros > 0 for r in byok)  # what the provider charged them, for their records
    assert {r.byok for r in rows if r.provider == "mock"} == {False}
    debits = {e.usage_record_id: e.amount_micros for e in broker.rows(LedgerEntry, LedgerEntry.kind == "debit")}
    assert all(debits[r.id] == -FEE for r in byok)
    spent = sum(r.billed_cost_micros for r in rows)
    assert wallet_row(broker, org["organization_id"]).balance_micros == 10_000_000 - spent


def test_byok_key_is_sealed_and_bound_to_its_organization(broker, org):
    with broker.client(org["api_key"]) as tenant:
        assert tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": OWN_KEY}).status_code == 201
        replaced = tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": "sk-second-key-0002"})
        assert replaced.json()["hint"] == "0002"
        assert tenant.post("/api/provider-keys", json={"provider": "mock", "api_key": "whatever-key"}).status_code == 400
        assert tenant.post("/api/provider-keys", json={"provider": "nope", "api_key": "whatever-key"}).status_code == 400
        assert tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": "has space in"}).status_code == 400
    [row] = broker.rows(ProviderCredential)
    assert b"sk-second" not in row.sealed_key and row.display_hint == "0002"
    other = broker.create_org("Other", credit="1")
    with broker.client(other["api_key"]) as them:
        assert them.get("/api/provider-keys").json() == []
        assert them.delete("/api/provider-keys/openai").status_code == 404


def test_byok_hold_is_the_fee(broker, open_upstream):
    """A wallet that cannot afford the provider price can still use its own key (it pays the fee)."""
    tiny = broker.create_org("Tiny", credit="0.00001")  # 10 micros
    chat = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}
    with broker.client(tiny["api_key"]) as tenant:
        assert tenant.post("/v1/chat/completions", json=chat).status_code == 402
        tenant.post("/api/provider-keys", json={"provider": "openai", "api_key": OWN_KEY})
        served = tenant.post("/v1/chat/completions", json=chat)
        assert served.status_code == 200 and served.headers["x-aibroker-balance-micros"] == str(10 - FEE)
        assert tenant.post("/v1/chat/completions", json=chat).status_code == 402  # 3 micros < the fee
