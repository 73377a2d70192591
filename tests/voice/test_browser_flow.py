"""The browser's flow on the mock realtime model: init, connect with the session token, stream
20 ms audio frames, get audio and transcripts, a tool call round trip, close; then the
session's record, its usage records (grouped by its id) and a clean ledger."""

from __future__ import annotations

import asyncio
import json

from aibroker.models import UsageRecord, Wallet
from aibroker.voice.bridges.mock import TRANSCRIPT, USER_TRANSCRIPT
from tests.billing.conftest import run_cli
from tests.voice.client import Voice, init, wait_for

TOOLS = [{"type": "function", "name": "lookup_order", "description": "An order's status",
          "parameters": {"type": "object", "properties": {"order": {"type": "string"}}}}]


def test_browser_session_with_a_tool_round_trip(broker, org):
    answer = init(broker, org["api_key"], "call-1", model="mock-realtime", voice="alloy", tools=TOOLS,
                  instructions="Be brief.", input_audio_format="pcm16")
    assert answer["session_id"] == "call-1" and answer["model"] == "mock/mock-realtime"
    assert answer["ws_url"].startswith("ws://127.0.0.1:") and answer["token"] in answer["ws_url"]

    async def talk() -> Voice:
        voice = await Voice.open(answer["ws_url"])
        created = await voice.next()
        assert created["type"] == "session.created"  # the first server event
        assert created["session"]["id"] == "call-1" and created["session"]["audio"]["output"]["voice"] == "alloy"
        assert [t["name"] for t in created["session"]["tools"]] == ["lookup_order"]
        await voice.speak(1.2)  # server VAD (mock: every second of audio) -> a turn
        heard = await voice.until("conversation.item.input_audio_transcription.completed")
        assert heard["transcript"] == USER_TRANSCRIPT
        call = await voice.until("response.function_call_arguments.done")
        assert call["name"] == "lookup_order" and json.loads(call["arguments"]) == {"query": "mock"}
        await voice.until("response.done")
        await voice.send({"type": "conversation.item.create",
                          "item": {"type": "function_call_output", "call_id": call["call_id"], "output": '{"status": "shipped"}'}})
        await voice.send({"type": "response.create"})
        spoken = await voice.until("response.output_audio_transcript.done")
        assert spoken["transcript"] == 'The tool answered: {"status": "shipped"}'
        done = await voice.until("response.done")
        assert done["response"]["usage"]["output_token_details"]["audio_tokens"] == 10
        assert voice.audio_bytes() == 24_000  # half a second of tone, pcm16 24 kHz
        await voice.close()
        return voice

    voice = asyncio.run(talk())
    assert "response.output_audio.delta" in voice.types()
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/call-1").json())["status"] == "closed" and s,
                           what="the session to close")
        listed = http.get("/api/voice/sessions").json()
    assert listed["data"][0]["id"] == "call-1" and not listed["has_more"]
    assert session["responses"] == 2 and session["close_code"] == 1000
    assert session["transcript"] == [{"role": "user", "text": USER_TRANSCRIPT},
                                     {"role": "assistant", "text": 'The tool answered: {"status": "shipped"}'}]
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.request_id == "call-1")
    assert len(rows) == 2 and {r.endpoint for r in rows} == {"voice"} and {r.status for r in rows} == {"success"}, [(r.status, r.endpoint, r.error_type, r.error_message, r.billed_cost_micros) for r in rows]
    assert all(r.billed_cost_micros > 0 for r in rows)
    assert session["cost_micros"] == sum(r.billed_cost_micros for r in rows)
    assert session["input_tokens"] == sum(r.input_tokens for r in rows)
    assert session["output_tokens"] == sum(r.output_tokens for r in rows)
    assert session["input_audio_tokens"] == 10  # the turn's 1 s at 1 token / 100 ms (0.2 s stayed in the buffer)
    wallet = broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0]
    assert wallet.held_micros == 0 and wallet.balance_micros == 10_000_000 - session["cost_micros"]
    assert run_cli(broker.database_url, "verify-ledger").returncode == 0


def test_token_in_the_header_and_the_beta_dialect(broker, org):
    answer = init(broker, org["api_key"], "beta-1", model="mock/mock-realtime")
    url = answer["ws_url"].split("?")[0]

    async def talk() -> Voice:
        voice = await Voice.open(url, additional_headers={"Authorization": f"Bearer {answer['token']}", "OpenAI-Beta": "realtime=v1"})
        assert (await voice.next())["type"] == "session.created"
        await voice.send({"type": "conversation.item.create",
                          "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}})
        await voice.send({"type": "response.create"})
        transcript = await voice.until("response.audio_transcript.done")  # beta names
        assert transcript["transcript"] == TRANSCRIPT
        await voice.until("response.done")
        await voice.close()
        return voice

    voice = asyncio.run(talk())
    assert "response.audio.delta" in voice.types() and "response.output_audio.delta" not in voice.types()
    assert "conversation.item.created" in voice.types()
    with broker.client(org["api_key"]) as http:
        session = wait_for(lambda: (s := http.get("/api/voice/sessions/beta-1").json())["status"] == "closed" and s)
    assert session["transcript"][0] == {"role": "user", "text": "Hi"}


def test_sessions_are_the_organizations_own(broker, org):
    init(broker, org["api_key"], "mine", model="mock-realtime")
    other = broker.create_org("Other", credit="1")
    with broker.client(other["api_key"]) as http:
        assert http.get("/api/voice/sessions/mine").status_code == 404
        assert http.get("/api/voice/sessions").json()["data"] == []
        # The same id is free in another organization (ids are per organization).
        assert http.post("/api/voice/init/mine", json={"model": "mock-realtime"}).status_code == 201
    with broker.client(org["api_key"]) as http:
        again = http.post("/api/voice/init/mine", json={"model": "mock-realtime"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "session_exists"
        assert http.get("/api/voice/sessions/mine").json()["status"] == "pending"
    with broker.client() as anonymous:
        assert anonymous.post("/api/voice/init/x", json={}).status_code == 401
        assert anonymous.get("/api/voice/sessions").status_code == 401
