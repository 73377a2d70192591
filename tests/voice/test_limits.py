"""The plan's session length (close 4408), the organization's AI context as the default
instructions, and barge-in (response.cancel) reaching an OpenAI upstream."""

from __future__ import annotations

import asyncio

import pytest

from tests.voice.client import Voice, init, wait_for


@pytest.fixture
def broker_env(broker_env):
    return {**broker_env, "AIBROKER_VOICE_PLAN_LIMITS": '{"free": {"concurrent": 5, "max_seconds": 1}}'}


def test_a_session_ends_at_its_length_limit(broker, org):
    answer = init(broker, org["api_key"], "long-1", model="mock-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        error = await voice.until("error", timeout=10)
        return error, await voice.closed()

    error, closed = asyncio.run(talk())
    assert error["error"]["code"] == "session_length_limit"
    assert closed == (4408, "session_length_limit")
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/long-1").json())["status"] == "closed" and s)
    assert session["close_code"] == 4408 and 900 <= session["duration_ms"] < 10_000


def test_the_ai_context_is_the_default_instructions_and_cancel_reaches_the_upstream(broker, org, realtime):
    with broker.client(org["api_key"]) as http:
        assert http.put("/api/ai/context", json={"system_prompt": "You answer for Acme Plumbing."}).status_code == 200
    answer = init(broker, org["api_key"], "ctx-1", model="openai/gpt-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        created = await voice.next()
        await voice.send({"type": "response.cancel"})
        await voice.until("error")  # the fake does not know response.cancel: its error is relayed
        await voice.close()
        return created

    created = asyncio.run(talk())
    assert created["session"]["instructions"] == "You answer for Acme Plumbing."
    wait_for(lambda: realtime.connections and any(e["type"] == "response.cancel" for e in realtime.connections[0].received))
    assert realtime.connections[0].received[0]["session"]["instructions"] == "You answer for Acme Plumbing."
