"""OpenAI chat chunks -> Anthropic Messages SSE events (pure; the route frames them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aibroker.errors import BrokerError
from aibroker.gateway.formats.anthropic import error_body, stop_reason, usage_block
from aibroker.kit.ids import new_id
from aibroker.providers.base import Usage, usage_from_openai


class StreamTranslator:
    """Turns OpenAI chunks into Anthropic (event, data) pairs, one block at a time.

    Input token counts are only known at the end of an OpenAI stream, so message_start
    says 0 and message_delta carries the final counts (the SDK takes them from there)."""

    def __init__(self, model: str, stops: list[str] | None) -> None:
        self.model = model
        self.stops = stops
        self.message_id = new_id("msg")
        self.index = -1  # the open content block, -1 when none
        self.open_kind: str | None = None
        self.open_tool: int | None = None  # OpenAI tool call index of the open tool_use block
        self.finish: str | None = None
        self.last_choice: dict[str, Any] = {}
        self.saw_tool_call = False
        self.usage: Usage | None = None
        self.aibroker: dict[str, Any] | None = None

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        message = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        if self.open_kind is None:
            return []
        self.open_kind, self.open_tool = None, None
        return [("content_block_stop", {"type": "content_block_stop", "index": self.index})]

    def _open(self, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = self._close()
        self.index += 1
        self.open_kind = block["type"]
        events.append(("content_block_start", {"type": "content_block_start", "index": self.index, "content_block": block}))
        return events

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        if chunk.get("usage"):
            self.usage = usage_from_openai(chunk["usage"])
        if chunk.get("aibroker"):
            self.aibroker = chunk["aibroker"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self.open_kind != "text":
                    events += self._open({"type": "text", "text": ""})
                events.append(("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or []:
                events += self._tool_delta(call)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
                self.last_choice = choice
        return events

    def _tool_delta(self, call: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        position = call.get("index", 0)
        function = call.get("function") or {}
        if self.open_kind != "tool_use" or self.open_tool != position:
            self.saw_tool_call = True
            block = {"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": function.get("name") or "", "input": {}}
            events += self._open(block)
            self.open_tool = position
        if function.get("arguments"):
            delta = {"type": "input_json_delta", "partial_json": function["arguments"]}
            events.append(("content_block_delta", {"type": "content_block_delta", "index": self.index, "delta": delta}))
        return events

    def finish_events(self) -> list[tuple[str, dict[str, Any]]]:
        events = self._close()
        reason, sequence = stop_reason(self.finish or "stop", self.last_choice, self.stops)
        if self.saw_tool_call and reason == "end_turn":
            reason = "tool_use"
        delta_event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
            "usage": usage_block(self.usage or Usage()),
        }
        if self.aibroker:
            delta_event["aibroker"] = self.aibroker
        events.append(("message_delta", delta_event))
        events.append(("message_stop", {"type": "message_stop"}))
        return events


async def anthropic_events(
    chunks: AsyncIterator[dict[str, Any]], model: str, stops: list[str] | None
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """The whole translated stream; a failure after it began becomes an `error` event."""
    translator = StreamTranslator(model, stops)
    for event in translator.start():
        yield event
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk):
                yield event
    except BrokerError as exc:
        yield "error", error_body(exc)
        return
    for event in translator.finish_events():
        yield event
