"""Low-balance alerts: one event per downward crossing, delivered once to the platform
webhook with a valid HMAC signature; a recharge re-arms it; failures retry with backoff;
two deliverers never send the same event twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from aibroker.config import BillingSettings
from aibroker.db import Database
from aibroker.models import Event
from aibroker.notifications.deliverer import EventDeliverer
from tests.billing.conftest import wallet_row
from tests.billing.webhook_receiver import WebhookReceiver

SECRET = "whsec-test-123"
CHAT = {"model": "mock-chat", "messages": [{"role": "user", "content": "hello there broker"}]}  # 24 micros


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver(SECRET).start()
    yield hook
    hook.stop()


@pytest.fixture
def broker_env(broker_env, receiver):
    return {
        **broker_env,
        "AIBROKER_ALERT_WEBHOOK_URL": receiver.url,
        "AIBROKER_ALERT_WEBHOOK_SECRET": SECRET,
        "AIBROKER_ALERT_POLL_SECONDS": "0.05",
    }


def test_crossing_emits_one_signed_delivery_and_a_recharge_rearms(broker, receiver):
    org = broker.create_org("Alerted", credit="1.00003")  # threshold 1.00: two requests cross it
    with broker.client(org["api_key"]) as tenant, broker.admin() as admin:
        for _ in range(4):
            assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200
        [first] = receiver.wait_for(1)
        assert first.signature_ok and first.status == 200
        assert first.body["type"] == "wallet.low_balance" and first.body["organization_id"] == org["organization_id"]
        assert first.body["data"]["balance_micros"] == 1_000_030 - 2 * 24
        assert first.body["data"]["threshold_micros"] == 1_000_000
        assert first.headers["x-aibroker-event-id"] == first.body["id"]

        admin.post(f"/api/admin/wallets/{org['slug']}/topup", json={"amount_usd": "1"})  # back above: re-armed
        assert wallet_row(broker, org["organization_id"]).low_balance_alerted is False
        admin.post(f"/api/admin/wallets/{org['slug']}/adjustment", json={"amount_usd": "-1.5", "description": "test"})
        assert tenant.post("/v1/chat/completions", json=CHAT).status_code == 200  # still below: no new alert
        deliveries = receiver.wait_for(2)

        events = tenant.get("/api/events").json()
        assert [e["type"] for e in events["data"]] == ["wallet.low_balance"] * 2
    assert len(deliveries) == 2 and all(d.signature_ok for d in deliveries)
    assert len({d.body["id"] for d in deliveries}) == 2
    # The deliverer marks an event delivered after the receiver has answered: wait for that.
    deadline = time.monotonic() + 10
    rows = broker.rows(Event)
    while any(r.delivered_at is None for r in rows) and time.monotonic() < deadline:
        time.sleep(0.02)
        rows = broker.rows(Event)
    assert len(rows) == 2 and all(r.delivered_at is not None and r.delivery_attempts == 1 for r in rows)
    with broker.client(broker.create_org("Quiet", credit="5")["api_key"]) as other:
        assert other.get("/api/events").json()["data"] == []  # each organization sees its own


def _event(org_id: str, n: int) -> dict:
    return {
        "id": f"evt_test{n:04d}", "organization_id": org_id, "type": "wallet.low_balance",
        "payload": {"n": n}, "delivery_attempts": 0, "created_at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n),
    }


async def test_failed_delivery_retries_with_backoff_then_succeeds(database_url, receiver):
    db = Database(database_url)
    settings = BillingSettings(alert_webhook_url=receiver.url, alert_webhook_secret=SECRET, alert_retry_base_seconds=5)
    deliverer = EventDeliverer(db.sessions, settings, secret="unused")
    try:
        async with db.sessions() as session, session.begin():
            await session.execute(insert(Event), [_event("org_x", 1)])
        receiver.statuses.extend([500])
        t0 = dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
        assert await deliverer.deliver_due(t0) == 1
        async with db.sessions() as session:
            row = await session.get(Event, "evt_test0001")
            assert row.delivered_at is None and row.delivery_attempts == 1 and "HTTP 500" in row.last_error
        assert await deliverer.deliver_due(t0 + dt.timedelta(seconds=4)) == 0  # backing off
        assert await deliverer.deliver_due(t0 + dt.timedelta(seconds=6)) == 1
        async with db.sessions() as session:
            row = await session.get(Event, "evt_test0001")
            assert row.delivered_at is not None and row.delivery_attempts == 2 and row.last_error is None
        assert await deliverer.deliver_due(t0 + dt.timedelta(days=1)) == 0  # delivered: never again
        assert [d.status for d in receiver.deliveries] == [500, 200]
        assert all(d.signature_ok for d in receiver.deliveries)
        assert [d.body["attempt"] for d in receiver.deliveries] == [1, 2]
    finally:
        await deliverer.aclose()
        await db.dispose()


async def test_concurrent_deliverers_send_each_event_once(database_url, receiver):
    dbs = [Database(database_url) for _ in range(3)]
    settings = BillingSettings(alert_webhook_url=receiver.url, alert_webhook_secret=SECRET)
    deliverers = [EventDeliverer(db.sessions, settings, secret="unused") for db in dbs]
    try:
        async with dbs[0].sessions() as session, session.begin():
            await session.execute(insert(Event), [_event("org_x", n) for n in range(120)])
        now = dt.datetime(2030, 1, 2, tzinfo=dt.UTC)
        while sum(await asyncio.gather(*(d.deliver_due(now) for d in deliverers))):
            pass
        ids = [d.body["id"] for d in receiver.deliveries]
        assert len(ids) == 120 and len(set(ids)) == 120
    finally:
        for deliverer, db in zip(deliverers, dbs, strict=True):
            await deliverer.aclose()
            await db.dispose()
