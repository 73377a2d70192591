"""Holds ahead of use: audio streaming with no response to settle it (an echoing upstream)
makes the session hold more increments as it goes; when the wallet cannot hold the next one
the session closes 4402 and what it used is billed, never more than the wallet had."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from aibroker.catalog.registry import load_packaged
from aibroker.models import UsageRecord, Wallet
from aibroker.voice.pricing import increment_micros
from tests.billing.conftest import run_cli
from tests.voice.client import Voice, init, wait_for


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_VOICE_INCREMENT_SECONDS": "1"}


def test_streaming_past_the_wallet_closes_4402_and_bills_what_was_used(broker, realtime):
    realtime.faults.echo = True  # every frame spoken back; no response.done ever settles it
    increment = increment_micros(load_packaged()["openai/gpt-realtime"], 1.0, 3000)
    credit = 3 * increment
    org = broker.create_org("Streamer", credit=str(Decimal(credit) / 1_000_000))
    answer = init(broker, org["api_key"], "stream-1", model="openai/gpt-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        await voice.speak(6.0)  # 6 s heard and 6 s spoken: more than three increments
        warning = await voice.until("error")
        return warning, await voice.closed()

    warning, closed = asyncio.run(talk())
    assert warning["error"]["code"] == "insufficient_balance"
    assert closed == (4402, "insufficient_balance")
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/stream-1").json())["status"] == "closed" and s)
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.request_id == "stream-1")
    assert len(rows) == 1 and rows[0].status == "partial" and rows[0].billed_cost_micros > increment
    wallet = broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0]
    assert wallet.held_micros == 0 and 0 <= wallet.balance_micros == credit - session["cost_micros"]
    assert run_cli(broker.database_url, "verify-ledger").returncode == 0
