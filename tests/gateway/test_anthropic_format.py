"""Unit tests of the pure pieces: Anthropic <-> OpenAI translation, media unit prices."""

from __future__ import annotations

import asyncio

import pytest

from aibroker.catalog.registry import load_packaged
from aibroker.errors import BrokerError, InsufficientBalance, InvalidRequest
from aibroker.gateway.formats.anthropic import (
    MessagesRequest,
    error_body,
    to_anthropic,
    to_openai,
)
from aibroker.gateway.formats.anthropic_stream import StreamTranslator, anthropic_events
from aibroker.gateway.media import audio_billed_seconds, audio_hold_seconds, image_bound, image_price, unit_cost
from aibroker.providers.base import AudioFile, Usage
from tests.gateway.test_media import wav_bytes


def _request(**kw):
    return MessagesRequest.model_validate({"model": "m", "max_tokens": 10, **kw})


def test_tool_results_come_before_the_user_text_and_marks_are_optional():
    request = _request(
        system=[{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "q"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "and?"},
                {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42"}], "is_error": True},
            ]},
        ],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        tools=[{"name": "f", "input_schema": {"type": "object"}}],
    )
    plain = to_openai(request)
    assert plain["messages"][0] == {"role": "system", "content": "sys"}
    assert [m["role"] for m in plain["messages"]] == ["system", "user", "assistant", "tool", "user"]
    assert plain["messages"][2]["content"] is None and plain["messages"][2]["tool_calls"][0]["function"]["arguments"] == '{"a":1}'
    assert plain["messages"][3] == {"role": "tool", "tool_call_id": "t1", "content": "[tool error] 42"}
    assert plain["tool_choice"] == "required" and plain["parallel_tool_calls"] is False
    marked = to_openai(request, keep_cache_marks=True)
    assert marked["messages"][0]["content"] == [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}}]


@pytest.mark.parametrize(
    "fields, fragment",
    [
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "'audio' is not supported"),
        ({"messages": [{"role": "system", "content": "x"}]}, "role 'user' or 'assistant'"),
        ({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "web_search_20250305", "name": "s"}]}, "client tools"),
        ({"messages": [{"role": "user", "content": "x"}], "tool_choice": {"type": "sometimes"}}, "tool_choice"),
    ],
)
def test_unsupported_input_is_a_clear_400(fields, fragment):
    with pytest.raises(InvalidRequest, match=fragment):
        to_openai(_request(**fields))


def test_response_translation_stop_reasons_and_cache_usage():
    body = {"choices": [{"message": {"content": "hi", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "not json"}}]}, "finish_reason": "stop"}]}
    message = to_anthropic(body, Usage(input_tokens=100, output_tokens=5, cached_tokens=60, cache_write_tokens=30), model="m", stops=None)
    assert message["stop_reason"] == "tool_use"  # tool calls finished with "stop" still mean tool_use
    assert message["content"][1]["input"] == {"_raw_arguments": "not json"}
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 30}
    vllm = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop", "stop_reason": "END"}]}
    translated = to_anthropic(vllm, Usage(), model="m", stops=["END"])
    assert (translated["stop_reason"], translated["stop_sequence"]) == ("stop_sequence", "END")
    assert to_anthropic({"choices": [{"message": {"content": "x"}, "finish_reason": "length"}]}, Usage(), model="m", stops=None)["stop_reason"] == "max_tokens"


def test_error_bodies_keep_status_semantics_and_balances():
    assert error_body(InvalidRequest("bad"))["error"]["type"] == "invalid_request_error"
    body = error_body(InsufficientBalance("poor", extra={"available_micros": 1, "required_micros": 2}))
    assert body == {"type": "error", "error": {"type": "billing_error", "message": "poor", "available_micros": 1, "required_micros": 2}}
    assert error_body(BrokerError("x", status_code=503))["error"]["type"] == "overloaded_error"
    assert error_body(BrokerError("x", status_code=502))["error"]["type"] == "api_error"


def test_stream_translator_opens_one_block_per_text_run_and_tool_call():
    translator = StreamTranslator("m", None)
    events = translator.start()
    for chunk in (
        {"choices": [{"delta": {"role": "assistant", "content": ""}}]},
        {"choices": [{"delta": {"content": "Hi"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": '{"a"'}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}, "aibroker": {"cost_micros": 9}},
    ):
        events += translator.feed(chunk)
    events += translator.finish_events()
    names = [name for name, _ in events]
    assert names == [
        "message_start", "ping",
        "content_block_start", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta", "content_block_delta",
        "content_block_stop", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]
    starts = [data["content_block"] for name, data in events if name == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"] and starts[1]["id"] == "c1"
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "tool_use" and final["usage"]["input_tokens"] == 7
    assert final["usage"]["output_tokens"] == 3 and final["aibroker"] == {"cost_micros": 9}


def test_a_failure_mid_stream_becomes_an_error_event():
    async def chunks():
        yield {"choices": [{"delta": {"content": "a"}}]}
        raise BrokerError("upstream broke", status_code=502)

    async def collect():
        return [event async for event in anthropic_events(chunks(), "m", None)]

    events = asyncio.run(collect())
    assert events[-1] == ("error", {"type": "error", "error": {"type": "api_error", "message": "upstream broke"}})


def test_image_prices_and_bounds():
    catalog = load_packaged()
    gpt_image, dalle = catalog["openai/gpt-image-1"], catalog["openai/dall-e-3"]
    assert image_price(gpt_image, "high", "1024x1536") == 250_000
    assert image_price(gpt_image, None, None) == 42_000  # the default when nothing finer applies
    assert image_bound(gpt_image, "auto", "1024x1024") == 250_000  # "auto": the dearest
    assert image_bound(gpt_image, "low", "1024x1024") == 11_000
    assert image_price(dalle, None, "1792x1024") == 80_000 and image_price(dalle, "hd", "1024x1024") == 80_000


def test_audio_seconds_rule_and_unit_cost():
    wav = AudioFile("a.wav", wav_bytes(2.2))
    assert audio_hold_seconds(wav) == 3 and audio_billed_seconds(wav, 100.0, 3) == 3  # the header wins
    mp3 = AudioFile("a.mp3", b"\x00" * 10_000)  # 80,000 bits at 8 kbps: 10 s
    assert audio_hold_seconds(mp3) == 10
    assert audio_billed_seconds(mp3, 2.1, 10) == 3 and audio_billed_seconds(mp3, 99.0, 10) == 10
    assert audio_billed_seconds(mp3, None, 10) == 10
    cost = unit_cost(3 * 6_000, 60, 3000)  # 3 s at $0.006/min, 30 % margin
    assert (cost.provider_micros, cost.billed_micros) == (300, 390)
