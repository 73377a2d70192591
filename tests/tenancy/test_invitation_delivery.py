"""The invitee still gets the accept link: the platform webhook's delivery of
`invitation.created` carries it (signed), though no listing does; once delivered, the
sealed copy is dropped. And migration 0012 scrubs the links stored before it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url

from aibroker.db import make_sync_engine
from aibroker.kit.clock import utcnow
from aibroker.migrations.runner import alembic_config
from aibroker.models import Event, Organization
from tests.billing.webhook_receiver import WebhookReceiver
from tests.conftest import DATABASES, PG_URL
from tests.support.accounts import bearer, signup

SECRET = "whsec-invitations-1"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET).start()
    yield hook
    hook.stop()


@pytest.fixture
def broker_env(broker_env, receiver):
    return {**broker_env, "AIBROKER_ALERT_WEBHOOK_URL": receiver.url, "AIBROKER_ALERT_WEBHOOK_SECRET": SECRET,
            "AIBROKER_ALERT_POLL_SECONDS": "0.05"}


def test_the_webhook_delivers_the_link_that_no_listing_shows(broker, receiver):
    owner = signup(broker, "host@example.com", organization_name="Hosts")
    org_id = owner["organization"]["id"]
    with broker.db.begin() as conn:
        conn.execute(update(Organization).where(Organization.id == org_id).values(plan="starter"))
    with broker.client() as http:
        key = http.post("/api/keys", json={"name": "k"}, headers=bearer(owner["access_token"])).json()["key"]
        made = http.post(f"/api/organizations/{org_id}/invitations", headers=bearer(owner["access_token"]),
                         json={"email": "guest@example.com", "role": "ADMIN", "accept_url": "https://app.example/join"}).json()
        [delivery] = receiver.wait_for(1)
        listed = http.get("/api/events", headers=bearer(key))
        deadline = time.monotonic() + 10
        while broker.rows(Event)[0].delivered_at is None and time.monotonic() < deadline:
            time.sleep(0.02)
        accepted = http.post("/api/invitations/accept", json={"token": delivery.body["data"]["link"].split("token=")[1],
                                                              "password": "invited-pass-2024"})
    assert delivery.signature_ok and delivery.body["type"] == "invitation.created"
    assert delivery.body["data"]["link"] == f"https://app.example/join?token={made['token']}"
    assert made["token"] not in listed.text
    [event] = broker.rows(Event)
    assert event.delivered_at is not None and event.sealed_payload is None and event.key_id is None
    assert accepted.status_code == 200, accepted.text


def _fresh_database(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    url = make_url(PG_URL).set(database=f"{make_url(PG_URL).database}_m0012")
    admin = make_sync_engine(url.set(database="postgres").render_as_string(hide_password=False), pooled=False)
    with admin.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("kind", DATABASES)
def test_migration_0012_scrubs_stored_invitation_links(kind: str, tmp_path: Path):
    url = _fresh_database(kind, tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0011")
    engine = make_sync_engine(url, pooled=False)
    leaked = "https://app.example/join?token=abi_leakedtoken123"
    events = sa.table("events", sa.column("id"), sa.column("organization_id"), sa.column("type"), sa.column("payload", sa.JSON),
                      sa.column("delivery_attempts"), sa.column("created_at"))
    try:
        with engine.begin() as conn:
            conn.execute(insert(events).values(
                id="evt_old1", organization_id="org_x", type="invitation.created", delivery_attempts=0, created_at=utcnow(),
                payload={"invitation_id": "inv_1", "email": "a@example.com", "role": "ADMIN", "link": leaked}))
            conn.execute(insert(events).values(
                id="evt_old2", organization_id="org_x", type="wallet.low_balance", delivery_attempts=0, created_at=utcnow(),
                payload={"balance_micros": 5}))
        command.upgrade(config, "0012")
        with engine.connect() as conn:
            rows = dict(conn.execute(select(events.c.id, events.c.payload)).all())
    finally:
        engine.dispose()
    assert "abi_leakedtoken123" not in str(rows)
    assert rows["evt_old1"] == {"invitation_id": "inv_1", "email": "a@example.com", "role": "ADMIN", "link_scrubbed": True}
    assert rows["evt_old2"] == {"balance_micros": 5}
