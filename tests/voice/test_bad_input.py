"""What a careless or hostile client sends: unknown and expired tokens (refused with 4401), a
second connection to a live session (4409), malformed events (an `error` event each, and the
session goes on), wrong audio formats and oversized frames; bad init bodies (clear 4xx)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

from sqlalchemy import update

from aibroker.models import VoiceSession
from tests.voice.client import Voice, init, wait_for


def _refused(url: str, **kw) -> tuple[int | None, str | None]:
    async def go():
        voice = await Voice.open(url, **kw)
        return await voice.closed()

    return asyncio.run(go())


def test_unknown_and_expired_tokens_are_refused_with_4401(broker, org):
    answer = init(broker, org["api_key"], "tok-1", model="mock-realtime")
    base = answer["ws_url"].split("?")[0]
    assert _refused(base) == (4401, "invalid_token")
    assert _refused(base + "?token=vst_not-a-real-token") == (4401, "invalid_token")
    assert _refused(base + "?token=" + answer["token"][:-2] + "xx") == (4401, "invalid_token")
    # A real token for another session id does not open it.
    other = init(broker, org["api_key"], "tok-2", model="mock-realtime")
    assert _refused(base + "?token=" + other["token"]) == (4401, "invalid_token")
    with broker.db.begin() as conn:
        conn.execute(update(VoiceSession).where(VoiceSession.id == "tok-1")
                     .values(token_expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert _refused(answer["ws_url"]) == (4401, "token_expired")
    with broker.client(org["api_key"]) as http:
        assert http.get("/api/voice/sessions/tok-1").json()["status"] == "expired"


def test_a_second_connection_to_a_live_session_is_refused(broker, org):
    answer = init(broker, org["api_key"], "live-1", model="mock-realtime")

    async def go():
        first = await Voice.open(answer["ws_url"])
        assert (await first.next())["type"] == "session.created"
        second = await Voice.open(answer["ws_url"])
        refused = await second.closed()
        # The first is untouched by the attempt.
        await first.send({"type": "response.create"})
        await first.until("response.done")
        await first.close()
        return refused

    assert asyncio.run(go()) == (4409, "session_in_use")
    with broker.client(org["api_key"]) as http:
        wait_for(lambda: http.get("/api/voice/sessions/live-1").json()["status"] == "closed")
    assert _refused(answer["ws_url"]) == (4409, "session_ended")  # a used token never reopens it


def test_malformed_events_get_an_error_and_the_session_survives(broker, org):
    answer = init(broker, org["api_key"], "bad-1", model="mock-realtime")
    odd = base64.b64encode(b"\x00\x01\x02").decode()
    huge = base64.b64encode(b"\x00" * (600 * 1024)).decode()
    cases = [
        ("not json at all", "invalid_event"),
        (b"\x00\x01binary", "binary_frame"),
        ('["an", "array"]', "invalid_event"),
        ({"no": "type"}, "invalid_event"),
        ({"type": "made.up"}, "unknown_event"),
        ({"type": "input_audio_buffer.append", "audio": "%%%not-base64%%%"}, "invalid_event"),
        ({"type": "input_audio_buffer.append", "audio": odd}, "unsupported_audio_format"),
        ({"type": "input_audio_buffer.append", "audio": huge}, "frame_too_large"),
        ({"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}}, "unsupported_audio_format"),
        ({"type": "session.update", "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}, "unsupported_audio_format"),
        ({"type": "session.update", "session": "nope"}, "invalid_event"),
        ({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": 5}}, "invalid_event"),
        ({"type": "conversation.item.create"}, "invalid_event"),
    ]

    async def go():
        voice = await Voice.open(answer["ws_url"])
        assert (await voice.next())["type"] == "session.created"
        codes = []
        for event, _ in cases:
            await voice.send(event)
            error = await voice.until("error")
            codes.append(error["error"]["code"])
        await voice.send({"type": "session.update", "session": {"event_id": "x", "voice": "verse"}})
        updated = await voice.until("session.updated")
        await voice.send({"type": "response.create"})
        done = await voice.until("response.done")
        await voice.close()
        return codes, updated, done

    codes, updated, done = asyncio.run(go())
    assert codes == [code for _, code in cases]
    assert updated["session"]["audio"]["output"]["voice"] == "verse"
    assert done["response"]["status"] == "completed"


def test_bad_init_requests(broker, org):
    with broker.client(org["api_key"]) as http:
        def post(path, **kw):
            return http.post(path, **kw)

        assert post("/api/voice/init/" + "x" * 41, json={}).status_code == 400
        assert post("/api/voice/init/bad%20id", json={}).status_code == 400
        assert post("/api/voice/init/ok-1", content=b"{not json").status_code == 400
        assert post("/api/voice/init/ok-1", content=b"[1, 2]").status_code == 400
        for body, param in [({"input_audio_format": "g711_ulaw"}, "input_audio_format"),
                            ({"output_audio_format": {"type": "audio/pcm", "rate": 8000}}, "output_audio_format"),
                            ({"model": "gpt-4o-mini"}, "model"), ({"tools": [{"type": "function"}]}, "tools"),
                            ({"unknown_field": 1}, "unknown_field"), ({"model": 5}, "model")]:
            response = post("/api/voice/init/ok-1", json=body)
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["param"].startswith(param), response.json()
        assert post("/api/voice/init/ok-1", json={"model": "no-such-model"}).status_code in (400, 404)
        assert post("/api/voice/init/ok-1", json={"instructions": "x" * 30_000}).status_code == 400
        assert post("/api/voice/init/ok-1", content=b"{" + b'"a":' * 10 + b"}").status_code == 400
        # An empty body is fine: every field is optional (OpenAI is configured: its realtime model).
        empty = post("/api/voice/init/ok-1")
        assert empty.status_code == 201 and empty.json()["model"] == "openai/gpt-realtime", empty.text
        assert http.get("/api/voice/sessions/" + "y" * 500).status_code == 404
        assert http.get("/api/voice/sessions?limit=0").status_code in (400, 422)


def test_a_realtime_model_on_the_chat_route_says_where_it_belongs(broker, org):
    with broker.client(org["api_key"]) as http:
        response = http.post("/v1/chat/completions", json={"model": "mock-realtime", "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400 and "/v1/realtime" in response.json()["error"]["message"]
