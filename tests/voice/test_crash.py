"""A broker process SIGKILLed mid-session: the session's wallet hold (in the process's lease)
is back within the lease TTL plus a sweep, the responses billed before the kill stay billed,
the session reads as interrupted, and verify-ledger is clean."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from aibroker.billing.batch import sweep_expired_holds
from aibroker.db import make_sync_engine
from aibroker.models import UsageRecord, VoiceSession
from aibroker.voice.service import status_of
from tests.billing.conftest import run_cli
from tests.billing.stall import wallet_money
from tests.conftest import _truncate_pg
from tests.support.fleet import ADMIN, Fleet
from tests.voice.client import Voice

LEASE_TTL = 2.0


def test_a_killed_broker_gives_the_sessions_hold_back(database_url, tmp_path):
    if not database_url.startswith("sqlite"):
        _truncate_pg(database_url)
    env = {"AIBROKER_LEASE_TTL_SECONDS": str(LEASE_TTL), "AIBROKER_VOICE_HEARTBEAT_SECONDS": "0.5"}
    db = make_sync_engine(database_url)
    fleet = Fleet(database_url, tmp_path, 1, env)
    with fleet.running():
        node = fleet.nodes[0]
        with httpx.Client(base_url=node.url, timeout=30) as http:
            org = http.post("/api/admin/organizations", json={"name": "Crash", "credit": "10"},
                            headers={"authorization": f"Bearer {ADMIN}"}).json()
            answer = http.post("/api/voice/init/crash-1", json={"model": "mock-realtime"},
                               headers={"authorization": f"Bearer {org['api_key']}"}).json()

        async def talk_then_kill() -> None:
            voice = await Voice.open(answer["ws_url"])
            assert (await voice.next())["type"] == "session.created"
            await voice.send({"type": "response.create"})
            await voice.until("response.done")
            await voice.speak(0.4)  # heard, not yet answered: the hold covers it
            balance, held, holds = wallet_money(db, org["organization_id"])
            assert held > 0 and held == holds
            fleet.kill(node)

        asyncio.run(talk_then_kill())
        killed = time.monotonic()
        while True:  # what the sweeper of any live process does, every half a TTL
            with db.begin() as conn:
                sweep_expired_holds(conn)
            if wallet_money(db, org["organization_id"])[1] == 0:
                break
            assert time.monotonic() - killed < LEASE_TTL * 1.5 + 10, "the killed process's hold was never released"
            time.sleep(0.1)
        back_after = time.monotonic() - killed
    assert back_after >= LEASE_TTL * 0.5  # released by expiry, not by a shutdown that never ran
    with Session(db) as orm:
        rows = list(orm.scalars(select(UsageRecord).where(UsageRecord.request_id == "crash-1")))
        session = orm.scalars(select(VoiceSession).where(VoiceSession.id == "crash-1")).one()
    assert len(rows) == 1 and rows[0].billed_cost_micros > 0
    balance, held, holds = wallet_money(db, org["organization_id"])
    assert held == holds == 0 and balance == 10_000_000 - rows[0].billed_cost_micros
    now = dt.datetime.now(dt.UTC)
    assert session.status == "active" and status_of(session, now - dt.timedelta(seconds=LEASE_TTL), now) == "interrupted"
    assert run_cli(database_url, "verify-ledger").returncode == 0
    db.dispose()
