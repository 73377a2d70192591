"""/v1/responses translated to Anthropic Messages and Gemini generateContent: checked against
the fake upstreams (real HTTP, their wire formats) with the openai SDK."""

from __future__ import annotations

import json

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini
from tests.support.usage import usage_rows

ANTHROPIC_KEY, GEMINI_KEY = "sk-ant-responses", "gemini-responses-key"
LOOKUP = {"type": "function", "name": "lookup", "description": "Look a thing up",
          "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}


@pytest.fixture(scope="module")
def anthropic_upstream():
    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def gemini_upstream():
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


@pytest.fixture
def broker_env(broker_env, anthropic_upstream, gemini_upstream):
    anthropic_upstream.reset()
    gemini_upstream.reset()
    return {**broker_env, "ANTHROPIC_API_KEY": ANTHROPIC_KEY, "ANTHROPIC_BASE_URL": anthropic_upstream.base_url,
            "GEMINI_API_KEY": GEMINI_KEY, "GEMINI_BASE_URL": gemini_upstream.base_url}


def test_anthropic_gets_system_and_tools_and_the_round_trip_ends_in_text(broker, org, client, anthropic_upstream):
    first = client.responses.create(model="anthropic/claude-haiku-4-5", instructions="You are terse.",
                                    input="weather in Lima", tools=[LOOKUP], max_output_tokens=200)
    sent = anthropic_upstream.requests[-1].body
    assert sent["system"] == "You are terse." and sent["max_tokens"] == 200
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "weather in Lima"}]}]
    assert sent["tools"] == [{"name": "lookup", "description": "Look a thing up", "input_schema": LOOKUP["parameters"]}]
    assert [item.type for item in first.output] == ["message", "function_call"]
    call = first.output[1]
    assert call.name == "lookup" and json.loads(call.arguments) == {"text": "weather in Lima"}
    second = client.responses.create(model="anthropic/claude-haiku-4-5", previous_response_id=first.id, tools=[LOOKUP],
                                     input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.output_text == "Echo: sunny"
    replayed = anthropic_upstream.requests[-1].body["messages"]
    assert [m["role"] for m in replayed] == ["user", "assistant", "user"]  # text + tool_use in one assistant turn
    assert [b["type"] for b in replayed[1]["content"]] == ["text", "tool_use"]
    assert replayed[2]["content"][0] == {"type": "tool_result", "tool_use_id": call.call_id, "content": "sunny"}
    rows = usage_rows(broker, org["organization_id"])
    assert [(r.provider, r.status, r.endpoint) for r in rows] == [("anthropic", "success", "responses")] * 2
    assert rows[0].input_tokens == first.usage.input_tokens and rows[0].output_tokens == first.usage.output_tokens


def test_anthropic_stream_is_rendered_as_typed_events(client, anthropic_upstream):
    with client.responses.stream(model="anthropic/claude-haiku-4-5", instructions="Be kind.", input="hello stream") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert anthropic_upstream.requests[-1].body["stream"] is True
    assert final.output_text == "Echo: hello stream" == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0 and final.model_extra["aibroker"]["cost_micros"] > 0


def test_gemini_gets_system_instruction_and_function_declarations(broker, org, client, gemini_upstream):
    first = client.responses.create(model="gemini/gemini-2.5-flash", instructions="You are terse.",
                                    input="weather in Quito", tools=[LOOKUP], tool_choice="auto", temperature=0.2)
    sent = gemini_upstream.requests[-1].body
    assert sent["systemInstruction"]["parts"][0]["text"] == "You are terse."
    assert sent["contents"][0] == {"role": "user", "parts": [{"text": "weather in Quito"}]}
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "lookup"
    assert sent["generationConfig"]["temperature"] == 0.2
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "lookup" and call.call_id
    second = client.responses.create(model="gemini/gemini-2.5-flash", previous_response_id=first.id, tools=[LOOKUP],
                                     input=[{"type": "function_call_output", "call_id": call.call_id, "output": "rainy"}])
    assert second.status == "completed" and second.output_text.startswith("Echo: ")
    response_part = gemini_upstream.requests[-1].body["contents"][-1]["parts"][0]
    assert response_part["functionResponse"]["name"] == "lookup"  # the call's name found from its call_id
    assert [r.provider for r in usage_rows(broker, org["organization_id"])] == ["gemini", "gemini"]


def test_gemini_json_schema_goes_upstream_as_response_schema(client, gemini_upstream):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    client.responses.create(model="gemini/gemini-2.5-flash", input="answer as json",
                            text={"format": {"type": "json_schema", "name": "answer", "schema": schema}})
    config = gemini_upstream.requests[-1].body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
