"""Anthropic Messages API <-> the broker's OpenAI-shaped bodies. Pure translation, no I/O.

Inbound: an Anthropic `POST /v1/messages` request becomes an OpenAI chat completion body
(which then runs the normal pipeline against any provider). Outbound: the OpenAI-shaped
answer becomes an Anthropic `Message`, and a stream of OpenAI chunks becomes Anthropic's
SSE events (message_start, content_block_*, message_delta, message_stop) in anthropic_stream.py.
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from aibroker.errors import BrokerError, InvalidRequest
from aibroker.gateway.formats.schemas import MAX_TOKENS
from aibroker.kit.ids import new_id
from aibroker.providers.base import Usage

# OpenAI finish_reason -> Anthropic stop_reason
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# HTTP status -> Anthropic error type (https://docs.anthropic.com/en/api/errors)
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class MessagesRequest(BaseModel):
    """Anthropic's Messages request. Unknown fields (top_k, thinking, ...) are accepted and ignored."""

    # strict: the body's own types are checked ("yes" is not a boolean, "16" not an integer)
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1, description="`provider/model` or a bare catalog name; any upstream provider.")
    messages: list[dict[str, Any]] = Field(min_length=1, description="Alternating user / assistant turns.")
    max_tokens: int = Field(ge=1, le=MAX_TOKENS, description="Required, as in Anthropic's API: the most tokens to generate.")
    system: str | list[dict[str, Any]] | None = Field(default=None, description="System prompt: text or text blocks.")
    temperature: float | None = Field(default=None, ge=0, le=1)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop_sequences: list[str] | None = None
    stream: bool = False
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class _Message(BaseModel):
    model_config = ConfigDict(strict=True)

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


# -- request: Anthropic -> OpenAI -------------------------------------------------------


def _text(block: dict[str, Any], where: str) -> str:
    """A text block's text: Anthropic requires it, a string (a missing one is not an empty prompt)."""
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"{where}: a text block needs 'text', a string.", param=where)
    return text


def _text_of_blocks(blocks: Any, where: str) -> str:
    if isinstance(blocks, str):
        return blocks
    texts = []
    for i, block in enumerate(blocks or []):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"{where}: only text blocks are allowed here.", param=where)
        texts.append(_text(block, f"{where}.{i}"))
    return "\n".join(texts)


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = str(source.get("url", ""))
    else:
        raise InvalidRequest(f"{where}: image source type must be 'base64' or 'url'.", param=where)
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_message(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content")
    if isinstance(content, list):
        # Images inside tool results have no OpenAI equivalent on the tool role: keep the text.
        content = "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
    text = str(content or "")
    if block.get("is_error"):
        text = f"[tool error] {text}"
    if not block.get("tool_use_id"):
        raise InvalidRequest(f"{where}: tool_result needs tool_use_id.", param=where)
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}


def _with_mark(part: dict[str, Any], block: dict[str, Any], keep_marks: bool) -> dict[str, Any]:
    if keep_marks and block.get("cache_control"):
        part["cache_control"] = block["cache_control"]
    return part


def _user_messages(content: Any, where: str, keep_marks: bool) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content.{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(_with_mark({"type": "text", "text": _text(block, at)}, block, keep_marks))
        elif kind == "image":
            parts.append(_with_mark(_image_part(block, at), block, keep_marks))
        elif kind == "tool_result":
            tool_messages.append(_tool_result_message(block, at))
        elif kind == "document" and (block.get("source") or {}).get("type") == "text":
            parts.append({"type": "text", "text": str(block["source"].get("data", ""))})
        else:
            raise InvalidRequest(f"{at}: content block type '{kind}' is not supported by this broker.", param=at)
    # OpenAI wants tool answers right after the assistant turn that asked for them.
    messages = list(tool_messages)
    if parts:
        only_text = all(p["type"] == "text" and "cache_control" not in p for p in parts)
        messages.append({"role": "user", "content": "\n".join(p["text"] for p in parts) if only_text else parts})
    return messages


def _assistant_message(content: Any, where: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content.{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            if not (isinstance(block.get("id"), str) and isinstance(block.get("name"), str) and isinstance(block.get("input", {}), dict)):
                raise InvalidRequest(f"{at}: a tool_use block needs 'id' and 'name' (strings) and an 'input' object.", param=at)
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append({"id": block.get("id"), "type": "function", "function": {"name": block.get("name"), "arguments": arguments}})
        elif kind in ("thinking", "redacted_thinking"):
            continue  # provider-specific reasoning traces do not carry across providers
        else:
            raise InvalidRequest(f"{at}: content block type '{kind}' is not supported in an assistant turn.", param=at)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for i, tool in enumerate(tools):
        if tool.get("type") not in (None, "custom") or not isinstance(tool.get("input_schema"), dict):
            raise InvalidRequest(
                f"tools.{i}: only client tools with an input_schema are supported (not '{tool.get('type')}').",
                param=f"tools.{i}",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"tools.{i}: a tool needs a 'name'.", param=f"tools.{i}")
        function: dict[str, Any] = {"name": tool["name"], "parameters": tool["input_schema"]}
        if tool.get("description"):
            function["description"] = tool["description"]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice: dict[str, Any]) -> tuple[Any, bool | None]:
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    raise InvalidRequest("tool_choice.type must be auto, any, tool (with name) or none.", param="tool_choice")


def _system(system: str | list[dict[str, Any]], keep_marks: bool) -> dict[str, Any]:
    text = _text_of_blocks(system, "system")
    if keep_marks and isinstance(system, list) and any(b.get("cache_control") for b in system):
        parts = [_with_mark({"type": "text", "text": b["text"]}, b, True) for b in system]  # checked above
        return {"role": "system", "content": parts}
    return {"role": "system", "content": text}


def to_openai(request: MessagesRequest, *, keep_cache_marks: bool = False) -> dict[str, Any]:
    """The OpenAI chat completion body equivalent to an Anthropic Messages request.
    `keep_cache_marks`: carry `cache_control` on text/image parts (an Anthropic upstream
    honours them; other providers would refuse the unknown field, so they are dropped)."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append(_system(request.system, keep_cache_marks))
    for i, raw in enumerate(request.messages):
        where = f"messages.{i}"
        try:
            message = _Message.model_validate(raw)
        except Exception as exc:
            raise InvalidRequest(f"{where}: needs role 'user' or 'assistant' and content.", param=where) from exc
        if message.role == "user":
            messages.extend(_user_messages(message.content, where, keep_cache_marks))
        else:
            messages.append(_assistant_message(message.content, where))
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    for name in ("temperature", "top_p"):
        if getattr(request, name) is not None:
            body[name] = getattr(request, name)
    if request.stop_sequences:
        body["stop"] = request.stop_sequences
    if request.tools:
        body["tools"] = _tools(request.tools)
    if request.tool_choice:
        choice, parallel = _tool_choice(request.tool_choice)
        body["tool_choice"] = choice
        if parallel is not None and request.tools:
            body["parallel_tool_calls"] = parallel
    user_id = (request.metadata or {}).get("user_id")
    if user_id:
        body["user"] = str(user_id)
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # the cost arrives in the last chunk
    return body


# -- response: OpenAI -> Anthropic ------------------------------------------------------


def stop_reason(finish: str | None, choice: dict[str, Any], stops: list[str] | None) -> tuple[str | None, str | None]:
    """(stop_reason, stop_sequence). OpenAI says only "stop"; a server that names the matched
    sequence (vLLM's `stop_reason`) lets us say `stop_sequence` like Anthropic does."""
    matched = choice.get("stop_reason") or choice.get("stop_sequence")
    if finish == "stop" and stops and isinstance(matched, str) and matched in stops:
        return "stop_sequence", matched
    if finish is None:
        return None, None
    return STOP_REASONS.get(finish, "end_turn"), None


def usage_block(usage: Usage) -> dict[str, int]:
    """Anthropic counts uncached input apart from cache reads and cache writes."""
    plain = max(0, usage.input_tokens - usage.cached_tokens - usage.cache_write_tokens)
    return {
        "input_tokens": plain,
        "output_tokens": usage.output_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
    }


def tool_input(arguments: Any) -> dict[str, Any]:
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw_arguments": str(arguments)}  # never lose what the model produced
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def to_anthropic(body: dict[str, Any], usage: Usage, *, model: str, stops: list[str] | None) -> dict[str, Any]:
    """An Anthropic `Message` from an OpenAI chat completion."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = "".join(str(p.get("text", "")) for p in text if isinstance(p, dict))
    if text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {"type": "tool_use", "id": call.get("id") or new_id("toolu"), "name": function.get("name"), "input": tool_input(function.get("arguments"))}
        )
    reason, sequence = stop_reason(choice.get("finish_reason"), choice, stops)
    if message.get("tool_calls") and reason == "end_turn":
        reason = "tool_use"  # some servers finish tool calls with "stop"
    return {
        "id": new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": usage_block(usage),
    }


def error_body(exc: BrokerError) -> dict[str, Any]:
    """Anthropic's error envelope; the broker's own details (balances, codes) ride along."""
    status = exc.status_code
    kind = ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    error: dict[str, Any] = {"type": kind, "message": exc.message}
    if exc.code:
        error["code"] = exc.code
    if exc.param:
        error["param"] = exc.param
    error.update(exc.extra)
    return {"type": "error", "error": error}
