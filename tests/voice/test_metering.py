"""Voice sessions and the wallet: init refuses what the wallet or the plan cannot cover, each
upstream response is billed from its usage event at the catalog's audio and text prices plus
the margin, and a wallet that runs out mid-session gets a warning, then close 4402."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from aibroker.catalog.registry import load_packaged
from aibroker.kit.money import apply_margin
from aibroker.models import UsageRecord, Wallet
from aibroker.voice.pricing import increment_micros
from tests.billing.conftest import run_cli
from tests.voice.client import Voice, init, wait_for

MARGIN = 3000  # the default 30%
CATALOG = load_packaged()


def _wallet(broker, org) -> Wallet:
    broker.flush()
    return broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0]


def test_init_needs_the_first_increment(broker):
    poor = broker.create_org("Poor", credit="0.01")
    with broker.client(poor["api_key"]) as http:
        refused = http.post("/api/voice/init/p-1", json={"model": "openai/gpt-realtime"})
        assert refused.status_code == 402 and refused.json()["error"]["code"] == "insufficient_balance", refused.text
        assert http.get("/api/voice/sessions").json()["data"] == []
    assert _wallet(broker, poor).held_micros == 0


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_VOICE_PLAN_LIMITS": '{"starter": {"concurrent": 0}, "free": {"concurrent": 2}}'}


def test_plan_access_and_the_concurrent_session_limit(broker):
    org = broker.create_org("Plans", credit="10")
    with broker.client(org["api_key"]) as http:
        assert http.post("/api/voice/init/c-1", json={"model": "mock-realtime"}).status_code == 201
        assert http.post("/api/voice/init/c-2", json={"model": "mock-realtime"}).status_code == 201
        third = http.post("/api/voice/init/c-3", json={"model": "mock-realtime"})
        assert third.status_code == 403 and third.json()["error"]["code"] == "concurrent_session_limit", third.text
    with broker.admin() as admin:
        assert admin.patch(f"/api/admin/organizations/{org['organization_id']}", json={"plan": "starter"}).status_code == 200
    broker.services.auth.forget()
    with broker.client(org["api_key"]) as http:
        refused = http.post("/api/voice/init/c-4", json={"model": "mock-realtime"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "voice_not_in_plan", refused.text


def test_inits_racing_each_other_do_not_pass_the_concurrent_session_limit(broker):
    org = broker.create_org("Racing", credit="10")

    def init_one(i: int):
        with broker.client(org["api_key"]) as http:
            return http.post(f"/api/voice/init/race-{i}", json={"model": "mock-realtime"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(init_one, range(8)))
    assert sorted(a.status_code for a in answers) == [201, 201] + [403] * 6, [a.text for a in answers]
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 403} == {"concurrent_session_limit"}


def test_each_response_is_billed_from_its_usage_event(broker, org, realtime):
    answer = init(broker, org["api_key"], "bill-1", model="openai/gpt-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        await voice.speak(1.0)  # the fake's VAD: one turn a second
        first = await voice.until("response.done")
        await voice.send({"type": "response.create"})
        second = await voice.until("response.done")
        await voice.close()
        return first, second

    first, second = asyncio.run(talk())
    model = CATALOG["openai/gpt-realtime"]

    def expected(usage) -> int:
        d_in, d_out = usage["input_token_details"], usage["output_token_details"]
        exact = ((d_in["text_tokens"] - 64) * model.input_micros_per_m + 64 * model.cached_input_micros_per_m
                 + d_in["audio_tokens"] * model.audio_input_micros_per_m
                 + d_out["text_tokens"] * model.output_micros_per_m + d_out["audio_tokens"] * model.audio_output_micros_per_m)
        return apply_margin(exact, MARGIN)

    assert first["response"]["usage"]["input_token_details"]["audio_tokens"] == 10
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/bill-1").json())["status"] == "closed" and s)
    broker.flush()
    rows = sorted(broker.rows(UsageRecord, UsageRecord.request_id == "bill-1"), key=lambda r: r.id)
    assert [r.billed_cost_micros for r in rows] == [expected(first["response"]["usage"]), expected(second["response"]["usage"])]
    assert rows[0].cached_tokens == 64 and rows[0].provider == "openai" and rows[0].model == "openai/gpt-realtime"
    assert session["cost_micros"] == sum(r.billed_cost_micros for r in rows)
    assert session["transcript"][0] == {"role": "user", "text": "what's the weather in lisbon"}
    wallet = _wallet(broker, org)
    assert wallet.held_micros == 0 and wallet.balance_micros == 10_000_000 - session["cost_micros"]
    # The upstream got the broker's config and the catalog's upstream model name.
    assert realtime.connections[0].model == "gpt-realtime"
    assert realtime.connections[0].received[0]["type"] == "session.update"
    assert realtime.connections[0].received[0]["session"]["type"] == "realtime"


def test_the_wallet_running_out_mid_session_warns_then_closes_4402(broker):
    model = CATALOG["mock/mock-realtime"]
    increment = increment_micros(model, 60.0, MARGIN)
    # Room for the first increment and a little more: after the first response is billed,
    # the next increment no longer fits.
    credit = increment + 300
    org = broker.create_org("Tight", credit=str(Decimal(credit) / 1_000_000))
    answer = init(broker, org["api_key"], "tight-1", model="mock-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        await voice.send({"type": "response.create"})
        await voice.until("response.done")
        warning = await voice.until("error")
        closed = await voice.closed()
        return warning, closed

    warning, closed = asyncio.run(talk())
    assert warning["error"]["code"] == "insufficient_balance"
    assert closed == (4402, "insufficient_balance")
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/tight-1").json())["status"] == "closed" and s)
    assert session["close_code"] == 4402 and session["responses"] == 1 and session["cost_micros"] > 300
    wallet = _wallet(broker, org)
    assert wallet.held_micros == 0 and wallet.balance_micros == credit - session["cost_micros"] >= 0
    assert run_cli(broker.database_url, "verify-ledger").returncode == 0
