"""The official openai-python realtime client pointed at the broker's /v1/realtime: it works
unchanged, through the same engine (billed, recorded), on the mock and on an OpenAI upstream."""

from __future__ import annotations

import asyncio

import openai
import pytest
import websockets

from aibroker.models import UsageRecord, VoiceSession
from tests.fakes.openai_realtime import TRANSCRIPT as FAKE_TRANSCRIPT
from tests.voice.client import wait_for


async def _turn(base_url: str, key: str, model: str) -> tuple[list[str], str, dict]:
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)
    types: list[str] = []
    async with client.realtime.connect(model=model) as conn:
        await conn.session.update(session={"type": "realtime", "instructions": "Be brief.", "output_modalities": ["audio"]})
        await conn.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]})
        await conn.response.create()
        transcript, usage = "", {}
        async for event in conn:
            types.append(event.type)
            if event.type == "response.output_audio_transcript.done":
                transcript = event.transcript
            if event.type == "response.done":
                usage = event.response.usage.model_dump() if event.response.usage else {}
                break
    return types, transcript, usage


@pytest.mark.parametrize("model,expected", [("mock-realtime", "Hello from the aibroker mock realtime model."),
                                            ("gpt-realtime", FAKE_TRANSCRIPT)])
def test_the_openai_sdk_realtime_client_works_unchanged(broker, org, realtime, model, expected):
    types, transcript, usage = asyncio.run(_turn(broker.url, org["api_key"], model))
    assert types[0] == "session.created" and "session.updated" in types
    assert "response.output_audio.delta" in types
    assert transcript == expected and usage["output_tokens"] > 0
    wait_for(lambda: broker.rows(VoiceSession, VoiceSession.organization_id == org["organization_id"],
                                 VoiceSession.status == "closed"), what="the session to close")
    session = broker.rows(VoiceSession, VoiceSession.organization_id == org["organization_id"])[0]
    assert session.id.startswith("rt_") and session.responses == 1
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.request_id == session.id)
    assert len(rows) == 1 and rows[0].billed_cost_micros == session.cost_micros > 0
    if model == "gpt-realtime":
        upstream = realtime.connections[0]
        assert upstream.headers["authorization"] == "Bearer sk-test"  # the platform's key, never the tenant's
        kinds = [e["type"] for e in upstream.received]
        assert kinds[:2] == ["session.update", "session.update"] and "response.create" in kinds


def test_a_bad_api_key_or_model_is_refused_with_a_close_code(broker, org):
    async def go(key: str, model: str) -> tuple[int | None, str | None]:
        client = openai.AsyncOpenAI(base_url=broker.url + "/v1", api_key=key, max_retries=0)
        async with client.realtime.connect(model=model) as conn:
            try:
                async for _ in conn:
                    pass
            except websockets.exceptions.ConnectionClosed as closed:
                assert closed.rcvd is not None
                return closed.rcvd.code, closed.rcvd.reason
            raise AssertionError("the broker did not refuse the connection")

    assert asyncio.run(go("abk_wrong", "mock-realtime")) == (4401, "invalid_api_key")
    assert asyncio.run(go(org["api_key"], "gpt-4o-mini"))[0] == 4400  # not a realtime model
    poor = broker.create_org("Poor", credit="0")
    assert asyncio.run(go(poor["api_key"], "mock-realtime")) == (4402, "insufficient_balance")
