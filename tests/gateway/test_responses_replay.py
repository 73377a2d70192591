"""GET /v1/responses/{id}?stream=true: a stored response replayed as its typed SSE events, with the
official openai SDK's `responses.retrieve(id, stream=True)` (and `starting_after`)."""

from __future__ import annotations

import httpx
import openai
import pytest

from aibroker.gateway.formats.responses_replay import replay

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def _types(events) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.type for e in events]


def test_retrieve_stream_replays_a_streamed_response_event_for_event(client):
    with client.responses.stream(model="mock-chat", input="tell me a story") as stream:
        live = list(stream)
    created = live[-1].response
    replayed = list(client.responses.retrieve(created.id, stream=True))
    kinds = _types(live)
    one_delta = [k for i, k in enumerate(kinds) if not (k == kinds[i - 1] == "response.output_text.delta")]
    assert len(one_delta) < len(kinds)  # the live stream had several deltas
    assert _types(replayed) == one_delta  # the text in one delta, every other event as live, in order
    assert [e.sequence_number for e in replayed] == list(range(len(replayed)))
    assert replayed[0].response.status == "in_progress" and replayed[0].response.output == []
    text = "".join(e.delta for e in replayed if e.type == "response.output_text.delta")
    assert text == created.output_text == "Mock reply to: tell me a story"
    final = replayed[-1].response
    assert final.id == created.id and final.output_text == created.output_text
    assert final.usage.total_tokens == created.usage.total_tokens and final.status == "completed"


def test_retrieve_stream_starting_after_and_function_calls(client):
    created = client.responses.create(model="mock-chat", input="weather in Lima?", tools=[WEATHER], tool_choice="required")
    [call] = created.output
    assert call.type == "function_call"
    replayed = list(client.responses.retrieve(created.id, stream=True))
    assert _types(replayed) == ["response.created", "response.in_progress", "response.output_item.added",
                                "response.function_call_arguments.delta", "response.function_call_arguments.done",
                                "response.output_item.done", "response.completed"]
    assert replayed[2].item.arguments == "" and replayed[3].delta == call.arguments == replayed[4].arguments
    assert replayed[5].item.call_id == call.call_id and replayed[4].name == "get_weather"
    tail = list(client.responses.retrieve(created.id, stream=True, starting_after=4))
    assert [e.sequence_number for e in tail] == [5, 6] and tail[-1].type == "response.completed"
    assert list(client.responses.retrieve(created.id, stream=True, starting_after=6)) == []
    # the SDK resumes a stream from a sequence number through the same route
    with client.responses.stream(response_id=created.id, starting_after=2, tools=[WEATHER]) as resumed:
        assert [e.sequence_number for e in resumed] == [3, 4, 5, 6]


def test_retrieve_stream_refusals(broker, org, client):
    created = client.responses.create(model="mock-chat", input="mine")
    other = broker.create_org("Other", credit="1")
    stranger = openai.OpenAI(base_url=broker.url + "/v1", api_key=other["api_key"], max_retries=0)
    with pytest.raises(openai.NotFoundError):
        list(stranger.responses.retrieve(created.id, stream=True))  # another organization's id
    with pytest.raises(openai.NotFoundError):
        list(client.responses.retrieve("resp_nope", stream=True))
    with httpx.Client(base_url=broker.url, headers={"authorization": f"Bearer {org['api_key']}"}) as http:
        for bad in ("-1", "x", str(2**40)):
            answer = http.get(f"/v1/responses/{created.id}", params={"stream": "true", "starting_after": bad})
            assert answer.status_code == 400 and "starting_after" in answer.text, (bad, answer.text)
        plain = http.get(f"/v1/responses/{created.id}", params={"stream": "false"})
        assert plain.status_code == 200 and plain.json()["id"] == created.id
        sse = http.get(f"/v1/responses/{created.id}", params={"stream": "true"})
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert sse.text.startswith("event: response.created\ndata: ")


def test_replay_of_a_refusal_and_an_incomplete_response():
    stored = {"id": "resp_x", "status": "incomplete", "aibroker": {"cost_micros": 5}, "output": [
        {"type": "message", "id": "msg_x_0", "role": "assistant", "status": "completed",
         "content": [{"type": "refusal", "refusal": "no"}]}]}
    events = replay(stored)
    assert [k for k, _ in events] == ["response.created", "response.in_progress", "response.output_item.added",
                                      "response.content_part.added", "response.refusal.delta", "response.refusal.done",
                                      "response.content_part.done", "response.output_item.done", "response.incomplete"]
    assert "aibroker" not in events[0][1]["response"] and events[-1][1]["response"]["aibroker"] == {"cost_micros": 5}
    assert events[2][1]["item"]["content"] == [] and events[4][1]["delta"] == "no"
