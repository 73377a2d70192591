"""The bridges against their fake upstreams, with faults: Gemini Live (resampled audio, a tool
call, usage from the turn's last usageMetadata, goAway + session resumption), OpenAI Realtime
dropping mid-response (the client is told, the session billed for what was used) and slow
frames."""

from __future__ import annotations

import asyncio
import json

from aibroker.catalog.registry import load_packaged
from aibroker.kit.money import apply_margin
from aibroker.models import UsageRecord, Wallet
from tests.billing.conftest import run_cli
from tests.fakes.gemini_live import TRANSCRIPT as GEMINI_TRANSCRIPT
from tests.voice.client import Voice, init, wait_for

TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]
CATALOG = load_packaged()


def _session(broker, org, session_id):
    with broker.client(org["api_key"]) as http:
        return wait_for(lambda: (s := http.get(f"/api/voice/sessions/{session_id}").json())["status"] not in ("active", "pending") and s,
                        what="the session to end")


def _records(broker, session_id):
    broker.flush()
    return sorted(broker.rows(UsageRecord, UsageRecord.request_id == session_id), key=lambda r: r.id)


def test_gemini_live_bridge(broker, org, gemini):
    answer = init(broker, org["api_key"], "gem-1", model="gemini/gemini-live-2.5-flash-preview", voice="Puck",
                  instructions="Be terse.", tools=TOOLS, language="pt-PT")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        sent = await voice.speak(1.5)
        call = await voice.until("response.function_call_arguments.done")
        assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Lisbon"}
        await voice.until("response.done")
        await voice.send({"type": "conversation.item.create",
                          "item": {"type": "function_call_output", "call_id": call["call_id"], "output": '{"temp_c": 19}'}})
        await voice.send({"type": "response.create"})
        transcript = await voice.until("response.output_audio_transcript.done")
        done = await voice.until("response.done")
        await voice.close()
        return voice, sent, transcript, done

    voice, sent, transcript, done = asyncio.run(talk())
    assert transcript["transcript"] == GEMINI_TRANSCRIPT
    assert voice.audio_bytes() == 19_200  # 0.4 s at 24 kHz, passed through as the client's rate
    state = gemini.state
    setup = state.setups[0]
    assert setup["model"] == "models/gemini-live-2.5-flash-preview"
    assert setup["systemInstruction"] == {"parts": [{"text": "Be terse."}]}
    assert setup["generationConfig"]["speechConfig"] == {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Puck"}}, "languageCode": "pt-PT"}
    assert setup["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    # 24 kHz in from the client, 16 kHz to Gemini (resampled: two thirds of the bytes, give or
    # take the filter's delay), every chunk declared at 16 kHz.
    assert not state.bad_rates and abs(state.audio_bytes - sent * 2 / 3) < 2000, (state.audio_bytes, sent)
    responses = [m["toolResponse"] for m in state.received if "toolResponse" in m]
    assert responses == [{"functionResponses": [{"id": "fc-1", "name": "get_weather", "response": {"temp_c": 19}}]}]
    # Billed from the turnComplete usageMetadata (not the earlier snapshot): 200 text + 16 audio
    # in (the 0.5 s after the first turn's second), 13 audio out.
    usage = done["response"]["usage"]
    assert usage["input_token_details"] == {"text_tokens": 200, "audio_tokens": 16, "cached_tokens": 0}
    assert usage["output_token_details"] == {"text_tokens": 0, "audio_tokens": 13}
    model = CATALOG["gemini/gemini-live-2.5-flash-preview"]
    expected = apply_margin(200 * model.input_micros_per_m + 16 * model.audio_input_micros_per_m + 13 * model.audio_output_micros_per_m, 3000)
    session = _session(broker, org, "gem-1")
    rows = _records(broker, "gem-1")
    # One record: the tool call's response carries no usage (Gemini reports the turn's at turnComplete).
    assert len(rows) == 1 and rows[0].billed_cost_micros == expected and rows[0].provider == "gemini"
    assert session["cost_micros"] == sum(r.billed_cost_micros for r in rows) and session["status"] == "closed"
    assert {"role": "assistant", "text": GEMINI_TRANSCRIPT} in session["transcript"]


def test_gemini_go_away_is_survived_with_session_resumption(broker, org, gemini):
    gemini.faults.go_away_after_turns = 1
    answer = init(broker, org["api_key"], "gem-2", model="gemini/gemini-live-2.5-flash-preview")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        await voice.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                       "content": [{"type": "input_text", "text": "one"}]}})
        await voice.send({"type": "response.create"})
        await voice.until("response.done")
        wait_for(lambda: gemini.state.resumed, what="the bridge to resume")
        await voice.send({"type": "conversation.item.create", "item": {"type": "message", "role": "user",
                                                                       "content": [{"type": "input_text", "text": "two"}]}})
        await voice.send({"type": "response.create"})
        second = await voice.until("response.done")
        await voice.close()
        return voice, second

    voice, second = asyncio.run(talk())
    assert "error" not in voice.types()  # the client never saw the reconnection
    assert second["response"]["status"] == "completed"
    assert len(gemini.state.setups) >= 2 and gemini.state.resumed[0].startswith("handle-")
    turns = [m["clientContent"]["turns"] for m in gemini.state.received if "clientContent" in m]
    assert turns[0][0]["parts"][0]["text"] == "one" and turns[1][0]["parts"][0]["text"] == "two"
    assert _session(broker, org, "gem-2")["responses"] == 2


def test_an_upstream_drop_tells_the_client_and_bills_what_was_used(broker, org, realtime):
    realtime.faults.drop_after_events = 6  # session.created, session.updated, then mid-response
    answer = init(broker, org["api_key"], "drop-1", model="openai/gpt-realtime")

    async def talk():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        await voice.send({"type": "response.create"})
        error = await voice.until("error")
        closed = await voice.closed()
        return voice, error, closed

    voice, error, closed = asyncio.run(talk())
    assert error["error"]["code"] == "upstream_disconnected"
    assert closed == (1011, "upstream_disconnected")
    assert voice.audio_bytes() > 0  # audio had been spoken before the drop
    session = _session(broker, org, "drop-1")
    assert session["status"] == "failed" and session["close_code"] == 1011
    rows = _records(broker, "drop-1")
    assert len(rows) == 1 and rows[0].status == "partial" and rows[0].billed_cost_micros > 0  # what was heard and spoken
    assert session["cost_micros"] == rows[0].billed_cost_micros
    broker.flush()
    wallet = broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0]
    assert wallet.held_micros == 0 and wallet.balance_micros == 10_000_000 - session["cost_micros"]
    assert run_cli(broker.database_url, "verify-ledger").returncode == 0


def test_slow_frames_and_a_refused_upstream(broker, org, realtime):
    realtime.faults.slow_frames = 0.02
    answer = init(broker, org["api_key"], "slow-1", model="openai/gpt-realtime")

    async def talk(url):
        voice = await Voice.open(url)
        first = await voice.next()
        if first["type"] != "session.created":
            return voice, first, await voice.closed()
        await voice.send({"type": "response.create"})
        done = await voice.until("response.done")
        await voice.close()
        return voice, done, None

    voice, done, _ = asyncio.run(talk(answer["ws_url"]))
    assert done["response"]["status"] == "completed"
    deltas = [e["type"] for e in voice.seen]
    assert deltas.index("response.created") < deltas.index("response.output_audio.delta") < deltas.index("response.done")
    realtime.faults.refuse = True
    refused = init(broker, org["api_key"], "slow-2", model="openai/gpt-realtime")
    _, error, closed = asyncio.run(talk(refused["ws_url"]))
    assert error["type"] == "error" and error["error"]["code"] == "upstream_unavailable"
    assert closed == (1011, "upstream_unavailable")
    assert _session(broker, org, "slow-2")["status"] == "failed"
    broker.flush()
    assert broker.rows(Wallet, Wallet.organization_id == org["organization_id"])[0].held_micros == 0
