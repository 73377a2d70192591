"""What clients need from the mock provider, through the official openai SDK against a
running broker: base64 embeddings (the SDK's default), a tool loop that ends, json_schema
answered with a valid instance, consistent token counts, and `model` echoing the request."""

from __future__ import annotations

import base64
import json
import struct
from enum import StrEnum

import httpx
import pytest
from pydantic import BaseModel

from aibroker.models import UsageRecord

try:
    import jsonschema
except ImportError:  # validated by hand below when the library is absent
    jsonschema = None


def test_sdk_default_embeddings_are_the_real_vectors(broker, org, client):
    floats = client.embeddings.create(model="mock-embed", input=["alpha", "beta"], encoding_format="float")
    default = client.embeddings.create(model="mock-embed", input=["alpha", "beta"])  # the SDK asks for base64
    for plain, decoded in zip(floats.data, default.data, strict=True):
        assert any(v != 0 for v in decoded.embedding)
        assert decoded.embedding == pytest.approx(plain.embedding, abs=1e-6)
    raw = httpx.post(broker.url + "/v1/embeddings", headers={"authorization": f"Bearer {org['api_key']}"},
                     json={"model": "mock-embed", "input": "alpha", "encoding_format": "base64"}).json()
    packed = base64.b64decode(raw["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(packed) // 4}f", packed)) == pytest.approx(floats.data[0].embedding, abs=1e-6)


WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "required": ["city", "unit", "days"],
    "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer", "minimum": 1}}}}}


def test_tool_loop_ends_in_text(broker, org, client):
    messages = [{"role": "user", "content": "weather in Lima"}]
    first = client.chat.completions.create(model="mock-chat", messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls"
    assert json.loads(call.function.arguments) == {"city": "mock", "unit": "celsius", "days": 1}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny 24C"}]
    second = client.chat.completions.create(model="mock-chat", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].message.content == "Mock answer from the tool result: sunny 24C"
    # Tokens: words + 3 per message; the assistant's call counts its name and argument words.
    args_words = len(call.function.arguments.split())
    assert second.usage.prompt_tokens == (3 + 3) + (1 + args_words + 3) + (2 + 3)
    assert second.usage.completion_tokens == 8


class Colour(StrEnum):
    red = "red"
    green = "green"


class Item(BaseModel):
    name: str
    qty: int
    price: float


class Order(BaseModel):
    colour: Colour
    paid: bool
    items: list[Item]
    shipping: Item | None


def _check_by_hand(schema, value, root):
    if "$ref" in schema:
        return _check_by_hand(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], value, root)
    if "anyOf" in schema:
        assert any(_valid(s, value, root) for s in schema["anyOf"])
        return
    if "enum" in schema:
        assert value in schema["enum"]
    kinds = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool}
    types = schema.get("type") if isinstance(schema.get("type"), list) else [schema.get("type")]
    if value is not None or "null" not in types:
        assert any(isinstance(value, kinds[t]) for t in types if t in kinds) or not any(t in kinds for t in types)
    if isinstance(value, (int, float)) and "minimum" in schema:
        assert value >= schema["minimum"]
    if schema.get("type") == "object":
        assert set(schema.get("required", [])) <= set(value)
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                _check_by_hand(sub, value[name], root)
    if schema.get("type") == "array":
        for item in value:
            _check_by_hand(schema["items"], item, root)


def _valid(schema, value, root):
    try:
        _check_by_hand(schema, value, root)
    except AssertionError:
        return False
    return True


def test_json_schema_gets_a_valid_instance(broker, org, client):
    parsed = client.chat.completions.parse(model="mock-chat", messages=[{"role": "user", "content": "order"}], response_format=Order)
    order = parsed.choices[0].message.parsed
    assert isinstance(order, Order) and order.colour is Colour.red and len(order.items) == 1
    schema = {"type": "object", "required": ["tags", "meta", "score"], "additionalProperties": False, "properties": {
        "tags": {"type": "array", "minItems": 2, "items": {"type": "string", "enum": ["a", "b"]}},
        "meta": {"type": "object", "required": ["when", "n"], "properties": {"when": {"type": "string", "format": "date"},
                                                                            "n": {"type": ["integer", "null"], "minimum": 5}}},
        "score": {"type": "number", "minimum": 0.5, "maximum": 1}}}
    raw = client.chat.completions.create(model="mock/mock-chat", messages=[{"role": "user", "content": "x"}],
                                         response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}})
    value = json.loads(raw.choices[0].message.content)
    assert value == {"tags": ["a", "a"], "meta": {"when": "2025-01-01", "n": 5}, "score": 0.5}
    for checked_schema, checked in ((schema, value), (Order.model_json_schema(), order.model_dump(mode="json"))):
        if jsonschema is not None:
            jsonschema.validate(checked, checked_schema)
        _check_by_hand(checked_schema, checked, checked_schema)


def test_plain_and_streamed_usage_agree(broker, org, client):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "count these words please"}]
    plain = client.chat.completions.create(model="mock-chat", messages=messages)
    chunks = list(client.chat.completions.create(model="mock-chat", messages=messages, stream=True,
                                                 stream_options={"include_usage": True}))
    assert plain.usage.prompt_tokens == (2 + 3) + (4 + 3)
    assert plain.usage.completion_tokens == len(plain.choices[0].message.content.split())
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens)


@pytest.mark.parametrize("asked", ["mock/mock-chat", "mock-chat"])
def test_model_echoes_what_was_asked(broker, org, client, asked):
    messages = [{"role": "user", "content": "hi"}]
    assert client.chat.completions.create(model=asked, messages=messages).model == asked
    chunks = list(client.chat.completions.create(model=asked, messages=messages, stream=True, stream_options={"include_usage": True}))
    assert {c.model for c in chunks} == {asked}
    assert client.embeddings.create(model=asked.replace("chat", "embed"), input="x").model == asked.replace("chat", "embed")


def test_model_echo_for_an_upstream_provider(broker, org, client, upstream):
    for asked in ("openai/gpt-4o-mini", "gpt-4o-mini"):
        assert client.chat.completions.create(model=asked, messages=[{"role": "user", "content": "hi"}]).model == asked
    broker.flush()
    rows = broker.rows(UsageRecord, UsageRecord.organization_id == org["organization_id"])
    assert {r.model for r in rows} == {"openai/gpt-4o-mini"}
