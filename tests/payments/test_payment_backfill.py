"""Migration 0015 backfills the payments table from the provider events stored before it
(SQLite and PostgreSQL), with the same reading of the events as the live webhooks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from aibroker.db import make_sync_engine
from aibroker.migrations.runner import alembic_config
from tests.conftest import DATABASES
from tests.test_migrations import _fresh_database

ORGS = sa.table("organizations", *(sa.column(c) for c in ("id", "name", "slug", "plan", "status", "timezone", "cache_enabled",
                                                         "allow_code_auth")), sa.column("created_at", sa.DateTime(timezone=True)))
EVENTS = sa.table("payment_events", sa.column("id"), sa.column("provider"), sa.column("external_id"), sa.column("type"),
                  sa.column("organization_id"), sa.column("payload", sa.JSON), sa.column("created_at", sa.DateTime(timezone=True)))
CODES = sa.table("organization_codes", sa.column("id"), sa.column("organization_id"), sa.column("code"), sa.column("payment_ref"),
                 sa.column("created_at", sa.DateTime(timezone=True)))
T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def _event(n: int, provider: str, type_: str, obj: dict, org: str | None = "org_a") -> dict:
    return {"id": f"pev_{n:03d}", "provider": provider, "external_id": f"x{n}", "type": type_, "organization_id": org,
            "payload": {"outcome": [], "credited_micros": 0, "reversed_micros": 0, "object": obj},
            "created_at": T0 + dt.timedelta(minutes=n)}


@pytest.mark.parametrize("kind", DATABASES)
def test_upgrade_backfills_payments_from_stored_events(kind: str, tmp_path: Path) -> None:
    url = _fresh_database(kind, tmp_path)
    command.upgrade(alembic_config(url), "0013")
    recharge = {"id": "cs_old", "object": "checkout.session", "mode": "payment", "payment_status": "paid", "currency": "usd",
                "amount_total": 2000, "client_reference_id": "org_a", "payment_intent": "pi_old",
                "metadata": {"kind": "wallet_recharge", "amount_micros": "20000000", "organization_id": "org_a"}}
    mp = {"id": 991, "status": "approved", "transaction_amount": 15.0, "currency_id": "USD", "external_reference": "org_a:wallet_recharge",
          "metadata": {"organization_id": "org_a", "kind": "wallet_recharge", "amount_micros": "15000000"}}
    events = [
        _event(1, "stripe", "checkout.session.completed", recharge),
        _event(2, "mercadopago", "payment.approved", mp),
        _event(3, "stripe", "charge.refunded", {"id": "ch_old", "payment_intent": "pi_old", "amount_refunded": 500}),
        # Delivered later but older news: the refunded total never goes down.
        _event(4, "stripe", "charge.refunded", {"id": "ch_old", "payment_intent": "pi_old", "amount_refunded": 100}),
        _event(5, "mercadopago", "payment.refunded", {**mp, "status": "refunded", "transaction_amount_refunded": 15.0}),
        _event(6, "stripe", "checkout.session.completed", {**recharge, "id": "cs_gone", "client_reference_id": "org_gone",
                                                           "metadata": {**recharge["metadata"], "organization_id": "org_gone"}}, org="org_gone"),
        _event(7, "stripe", "event.we.ignore", {"id": "whatever"}),
    ]
    engine = make_sync_engine(url, pooled=False)
    try:
        with engine.begin() as conn:
            conn.execute(ORGS.insert().values(id="org_a", name="A", slug="a", plan="free", status="active", timezone="UTC",
                                              cache_enabled=True, allow_code_auth=False, created_at=T0))
            conn.execute(CODES.insert().values(id="orgc_1", organization_id="org_a", code="ABCDEFGHJK", payment_ref="cs_old", created_at=T0))
            conn.execute(EVENTS.insert(), events)
        command.upgrade(alembic_config(url), "0015")
        with engine.connect() as conn:
            names = ("provider", "external_id", "kind", "amount_micros", "currency", "status", "refunded_micros", "ledger_key",
                     "organization_code_id")
            payments = sa.table("payments", sa.column("id"), *(sa.column(n) for n in names), sa.column("created_at", sa.DateTime(timezone=True)))
            rows = conn.execute(sa.select(*(payments.c[n] for n in names), payments.c.created_at).order_by(payments.c.id)).all()
    finally:
        engine.dispose()
    assert [tuple(r[:9]) for r in rows] == [
        ("stripe", "cs_old", "recharge", 20_000_000, "USD", "partially_refunded", 5_000_000, "stripe:cs_old", "orgc_1"),
        ("mercadopago", "991", "recharge", 15_000_000, "USD", "refunded", 15_000_000, "mercadopago:991", None),
    ]  # the event of an organization that no longer exists makes no row
    first = rows[0][9] if rows[0][9].tzinfo else rows[0][9].replace(tzinfo=dt.UTC)
    assert first == T0 + dt.timedelta(minutes=1)  # when the provider's event came, not when the migration ran
