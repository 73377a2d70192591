"""Pieces every translating adapter needs: reading OpenAI-shaped requests and building
OpenAI-shaped responses (completions, chunks, usage, embeddings)."""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

import orjson

from aibroker.kit.ids import new_id
from aibroker.providers.base import Call, Usage
from aibroker.providers.errors import ProviderBadRequest

# -- reading OpenAI requests -------------------------------------------------------------


def text_of(content: Any) -> str:
    """A message's text: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def output_limit(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else None


def stop_list(body: dict[str, Any]) -> list[str] | None:
    stop = body.get("stop")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:image/png;base64,AAAA` -> ("image/png", "AAAA"); None for other URLs."""
    if not url.startswith("data:"):
        return None
    header, _, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if encoding != "base64" or not data:
        raise ProviderBadRequest("image data URLs must be base64-encoded (data:<type>;base64,...)")
    return media_type or "application/octet-stream", data


def image_url_of(part: dict[str, Any]) -> str:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise ProviderBadRequest("an image_url part has no url")
    return url


def guess_media_type(url: str) -> str:
    lowered = url.lower().split("?")[0]
    for suffix, media in ((".png", "image/png"), (".gif", "image/gif"), (".webp", "image/webp")):
        if lowered.endswith(suffix):
            return media
    return "image/jpeg"


def parse_arguments(raw: Any) -> dict[str, Any]:
    """OpenAI tool-call arguments (a JSON string) as an object."""
    if isinstance(raw, dict):
        return raw
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProviderBadRequest(f"tool call arguments are not valid JSON: {str(raw)[:80]}") from exc
    return value if isinstance(value, dict) else {"value": value}


def arguments_json(value: Any) -> str:
    """An upstream tool-call input (an object) as OpenAI's JSON-string arguments."""
    return orjson.dumps(value if value is not None else {}).decode()


def function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The `function` objects of the request's tools (other tool kinds are refused)."""
    functions = []
    for tool in body.get("tools") or []:
        if tool.get("type", "function") != "function" or not isinstance(tool.get("function"), dict):
            raise ProviderBadRequest(f"only function tools are supported, got type {tool.get('type')!r}")
        functions.append(tool["function"])
    return functions


def tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    """tool_call id -> function name, from the assistant turns (tool results only carry the id)."""
    names = {}
    for message in messages:
        for tool_call in message.get("tool_calls") or []:
            names[tool_call.get("id", "")] = (tool_call.get("function") or {}).get("name", "")
    return names


def require_input_list(call: Call) -> list[str]:
    inputs = call.body.get("input")
    if isinstance(inputs, str):
        return [inputs]
    if isinstance(inputs, list) and all(isinstance(t, str) for t in inputs):
        return list(inputs)
    raise ProviderBadRequest("this provider embeds text only: send `input` as a string or a list of strings")


# -- building OpenAI responses -----------------------------------------------------------


def usage_dict(usage: Usage) -> dict[str, Any]:
    """OpenAI's usage object; `cache_creation_input_tokens` added when the provider wrote cache."""
    data: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }
    if usage.cache_write_tokens:
        data["cache_creation_input_tokens"] = usage.cache_write_tokens
    return data


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def completion(
    *,
    model: str,
    content: str | None,
    tool_calls: list[dict[str, Any]],
    finish_reason: str,
    usage: Usage,
    response_id: str | None = None,
    refusal: str | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if refusal:
        message["refusal"] = refusal
    return {
        "id": response_id or new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": usage_dict(usage),
    }


class ChunkMaker:
    """Builds the `chat.completion.chunk` dicts of one streamed answer."""

    def __init__(self, model: str, response_id: str | None = None) -> None:
        self.head = {
            "id": response_id or new_id("chatcmpl"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }

    def delta(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**self.head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}

    def usage(self, usage: Usage) -> dict[str, Any]:
        return {**self.head, "choices": [], "usage": usage_dict(usage)}


def embeddings_list(call: Call, vectors: list[list[float]], usage: Usage) -> dict[str, Any]:
    """OpenAI's embeddings list; base64 (little-endian float32) when the caller asked for it,
    as the openai SDK does by default."""
    as_base64 = call.body.get("encoding_format") == "base64"

    def encode(vector: list[float]) -> list[float] | str:
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector

    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)} for i, v in enumerate(vectors)],
        "model": call.model.name,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }
