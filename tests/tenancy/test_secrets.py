"""`aibroker secrets rotate`: every registered sealed column moves to the new key, all or nothing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from aibroker.billing.byok import seal_context
from aibroker.db import make_sync_engine
from aibroker.errors import InvalidRequest
from aibroker.kit import crypto
from aibroker.kit.clock import utcnow
from aibroker.models import Organization, ProviderCredential
from aibroker.tenancy.secrets import rotate, sealers

OLD, NEW = "old-secret-key-0001", "new-secret-key-0002"


@pytest.fixture
def engine(database_url):
    engine = make_sync_engine(database_url, pooled=False)
    yield engine
    engine.dispose()


def _seed(engine, *, secret: str, org: str = "org_a", provider: str = "openai") -> None:
    with engine.begin() as conn:
        if conn.execute(select(Organization.id).where(Organization.id == org)).first() is None:
            conn.execute(insert(Organization).values(id=org, name=org, slug=org, plan="free", status="active", timezone="UTC",
                                                     allow_code_auth=False, created_at=utcnow()))
        conn.execute(insert(ProviderCredential).values(
            id=f"pkey_{org}_{provider}", organization_id=org, provider=provider, display_hint="1234", created_at=utcnow(),
            sealed_key=crypto.seal(f"sk-{org}-{provider}", secret, context=seal_context(org, provider)), key_id=crypto.key_id(secret),
        ))


def _rows(engine):
    with engine.connect() as conn:
        return list(conn.execute(select(ProviderCredential).order_by(ProviderCredential.id)))


def test_registry_covers_provider_keys_and_channel_tokens():
    names = {s.name for s in sealers()}
    assert "provider_credentials" in names and "channel_connections" in names


def test_rotate_reseals_everything_and_is_rerunnable(engine):
    _seed(engine, secret=OLD, provider="openai")
    _seed(engine, secret=OLD, provider="anthropic")
    report = rotate(engine, old_secret=OLD, new_secret=NEW)
    assert report.resealed["provider_credentials"] == 2
    for row in _rows(engine):
        assert row.key_id == crypto.key_id(NEW)
        plain = crypto.unseal(row.sealed_key, NEW, context=seal_context(row.organization_id, row.provider))
        assert plain == f"sk-{row.organization_id}-{row.provider}"
    again = rotate(engine, old_secret=OLD, new_secret=NEW)
    assert again.resealed["provider_credentials"] == 0 and again.already_current["provider_credentials"] == 2


def test_rotation_is_all_or_nothing(engine):
    _seed(engine, secret=OLD, provider="openai")
    _seed(engine, secret="some-other-key-9", provider="anthropic")
    before = [(r.id, r.key_id, bytes(r.sealed_key)) for r in _rows(engine)]
    with pytest.raises(InvalidRequest, match="nothing was changed"):
        rotate(engine, old_secret=OLD, new_secret=NEW)
    assert [(r.id, r.key_id, bytes(r.sealed_key)) for r in _rows(engine)] == before
    with pytest.raises(InvalidRequest):
        rotate(engine, old_secret=NEW, new_secret=NEW)


def test_cli_rotate(engine, database_url, monkeypatch):
    from aibroker import cli
    from aibroker.config import get_settings

    _seed(engine, secret=OLD)
    monkeypatch.setenv("AIBROKER_DATABASE_URL", database_url)
    monkeypatch.setenv("AIBROKER_SECRET_KEY", NEW)
    get_settings.cache_clear()
    try:
        from aibroker.tenancy.cli import register

        app = cli.typer.Typer()
        app.command("noop")(lambda: None)
        register(app)
        result = CliRunner().invoke(app, ["secrets", "rotate", "--from", OLD, "--json"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["resealed"]["provider_credentials"] == 1
    assert _rows(engine)[0].key_id == crypto.key_id(NEW)


def test_rotate_reseals_event_links_and_skips_events_without_one(engine):
    from aibroker.models import Event
    from aibroker.tenancy.secrets import open_event_data, seal_event_data

    sealed, kid = seal_event_data("evt_inv1", {"link": "https://app.example/join?token=abi_x"}, OLD)
    with engine.begin() as conn:
        conn.execute(insert(Event).values(id="evt_inv1", organization_id="org_a", type="invitation.created", payload={},
                                          delivery_attempts=0, sealed_payload=sealed, key_id=kid, created_at=utcnow()))
        conn.execute(insert(Event).values(id="evt_low1", organization_id="org_a", type="wallet.low_balance", payload={},
                                          delivery_attempts=0, created_at=utcnow()))
    report = rotate(engine, old_secret=OLD, new_secret=NEW)
    assert report.resealed["events"] == 1
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(Event))}
    assert rows["evt_inv1"].key_id == crypto.key_id(NEW)
    assert open_event_data("evt_inv1", rows["evt_inv1"].sealed_payload, NEW) == {"link": "https://app.example/join?token=abi_x"}
    assert rows["evt_low1"].sealed_payload is None and rows["evt_low1"].key_id is None
