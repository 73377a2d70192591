"""The pipeline's chat answer -> a Responses `Response` object; its chat stream -> the typed
Responses SSE events in OpenAI's order, each with its `sequence_number`. Pure, no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aibroker.providers.base import Usage, usage_from_openai

# chat finish_reason -> (Responses status, incomplete_details.reason)
FINISH = {"length": ("incomplete", "max_output_tokens"), "content_filter": ("incomplete", "content_filter")}


@dataclass(slots=True)
class Shell:
    """What every rendering of one response shares: its id, when, and the request's echo."""

    id: str
    request: dict[str, Any]  # the raw request body (validated)
    created_at: int = field(default_factory=lambda: int(time.time()))

    @property
    def token(self) -> str:
        return self.id.split("_", 1)[1]

    def item_id(self, prefix: str, n: int) -> str:
        """Output item ids name their response, so an item_reference finds its row at once."""
        return f"{prefix}_{self.token}_{n}"

    def response(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                 *, error: dict[str, Any] | None = None, incomplete: str | None = None) -> dict[str, Any]:
        raw = self.request
        text = dict(raw.get("text") or {})
        text.setdefault("format", {"type": "text"})
        text.setdefault("verbosity", "medium")
        return {
            "id": self.id, "object": "response", "created_at": self.created_at,
            "completed_at": int(time.time()) if status in ("completed", "incomplete") else None,
            "status": status, "background": False, "error": error,
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": raw["model"], "instructions": raw.get("instructions"),
            "previous_response_id": raw.get("previous_response_id"),
            "output": output, "tools": raw.get("tools") or [], "tool_choice": raw.get("tool_choice", "auto"),
            "parallel_tool_calls": raw.get("parallel_tool_calls", True),
            "temperature": raw.get("temperature", 1.0), "top_p": raw.get("top_p", 1.0),
            "max_output_tokens": raw.get("max_output_tokens"), "truncation": "disabled", "text": text,
            "reasoning": {"effort": None, "summary": None}, "store": raw.get("store", True),
            "metadata": raw.get("metadata") or {}, "user": raw.get("user"), "usage": usage,
        }


def usage_block(usage: Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.input_tokens + usage.output_tokens,
    }


def reasoning_of(usage: dict[str, Any] | None) -> int:
    return int(((usage or {}).get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": parts}


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name, "arguments": arguments, "status": status}


def status_of(finish: str | None) -> tuple[str, str | None]:
    return FINISH.get(finish or "stop", ("completed", None))


def render(shell: Shell, body: dict[str, Any], usage: Usage) -> dict[str, Any]:
    """A non-streamed chat completion as a Response."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content") or message.get("refusal") or not message.get("tool_calls"):
        part = {"type": "refusal", "refusal": message["refusal"]} if message.get("refusal") else text_part(message.get("content") or "")
        output.append(message_item(shell.item_id("msg", 0), [part]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(call_item(shell.item_id("fc", len(output)), call.get("id") or shell.item_id("call", len(output)),
                                function.get("name") or "", function.get("arguments") or ""))
    status, incomplete = status_of(choice.get("finish_reason"))
    return shell.response(status, output, usage_block(usage, reasoning_of(body.get("usage"))), incomplete=incomplete)


class StreamTranslator:
    """Chat chunks -> (event type, data) pairs. `start()` first; `feed(chunk)` per chunk;
    `finish()` closes the open item and returns the final Response (the caller stores it,
    then sends `terminal(response)`)."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the output item being streamed
        self.open_tool: int | None = None  # chat tool_calls index of the open function_call
        self.pieces: list[str] = []
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.reasoning = 0
        self.aibroker: dict[str, Any] | None = None

    def event(self, kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
        payload = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return kind, payload

    def start(self) -> list[tuple[str, dict[str, Any]]]:
        snapshot = self.shell.response("in_progress", [])
        return [self.event("response.created", response=snapshot), self.event("response.in_progress", response=snapshot)]

    def feed(self, chunk: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events: list[tuple[str, dict[str, Any]]] = []
        if chunk.get("usage"):
            self.usage = usage_from_openai(chunk["usage"])
            self.reasoning = reasoning_of(chunk["usage"])
        if chunk.get("aibroker"):
            self.aibroker = chunk["aibroker"]
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._tool(call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _where(self) -> dict[str, Any]:
        assert self.open is not None
        return {"item_id": self.open["id"], "output_index": len(self.output)}

    def _text(self, text: str) -> list[tuple[str, dict[str, Any]]]:
        events = []
        if self.open is None or self.open["type"] != "message":
            events += self._close()
            self.open = message_item(self.shell.item_id("msg", len(self.output)), [], "in_progress")
            events.append(self.event("response.output_item.added", output_index=len(self.output), item=dict(self.open)))
            events.append(self.event("response.content_part.added", **self._where(), content_index=0, part=text_part("")))
        self.pieces.append(text)
        events.append(self.event("response.output_text.delta", **self._where(), content_index=0, delta=text, logprobs=[]))
        return events

    def _tool(self, call: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        events = []
        index = call.get("index", 0)
        function = call.get("function") or {}
        if self.open is None or self.open["type"] != "function_call" or self.open_tool != index:
            events += self._close()
            n = len(self.output)
            self.open = call_item(self.shell.item_id("fc", n), call.get("id") or self.shell.item_id("call", n),
                                  function.get("name") or "", "", "in_progress")
            self.open_tool = index
            events.append(self.event("response.output_item.added", output_index=n, item=dict(self.open)))
        if function.get("arguments"):
            self.open["arguments"] += function["arguments"]
            events.append(self.event("response.function_call_arguments.delta", **self._where(), delta=function["arguments"]))
        return events

    def _close(self) -> list[tuple[str, dict[str, Any]]]:
        item, self.open, self.open_tool = self.open, None, None
        if item is None:
            return []
        where = {"item_id": item["id"], "output_index": len(self.output)}
        events = []
        if item["type"] == "message":
            text = "".join(self.pieces)
            self.pieces = []
            part = text_part(text)
            events.append(self.event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]))
            events.append(self.event("response.content_part.done", **where, content_index=0, part=part))
            item = message_item(item["id"], [part])
        else:
            events.append(self.event("response.function_call_arguments.done", **where, name=item["name"], arguments=item["arguments"]))
            item = {**item, "status": "completed"}
        events.append(self.event("response.output_item.done", output_index=len(self.output), item=item))
        self.output.append(item)
        return events

    def finish(self) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
        events = self._close()
        status, incomplete = status_of(self.finish_reason)
        response = self.shell.response(status, self.output, usage_block(self.usage, self.reasoning), incomplete=incomplete)
        if self.aibroker is not None:
            response["aibroker"] = self.aibroker
        return events, response

    def terminal(self, response: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kind = "response.incomplete" if response["status"] == "incomplete" else "response.completed"
        return self.event(kind, response=response)

    def failed(self, error: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        """A failure after the stream began: the nested `error` event, then `response.failed`."""
        body = error.get("error") or error
        failed = self.shell.response("failed", self.output, error={"code": body.get("code") or body.get("type") or "server_error",
                                                                   "message": body.get("message") or "The upstream failed."})
        return [self.event("error", error=body), self.event("response.failed", response=failed)]
