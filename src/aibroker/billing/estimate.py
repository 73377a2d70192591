"""A true upper bound on a request's input tokens, without a tokenizer.

Byte-level BPE tokenizers (OpenAI, Anthropic, Llama, Gemini's SentencePiece with byte
fallback) never emit more tokens than the text has UTF-8 bytes, so bytes bound tokens.
Chat formatting adds a few tokens per message; an image costs at most IMAGE_TOKENS.
The bound is then capped by the model's context window: no provider bills more input
than a request it accepted can hold.
"""

from __future__ import annotations

from typing import Any

import orjson

PER_MESSAGE_TOKENS = 8
PER_REQUEST_TOKENS = 16
IMAGE_TOKENS = 6_500  # above the largest per-image charge of any catalogued provider


def _content_bytes(content: Any) -> tuple[int, int]:
    """(text bytes, image count) of a message's content."""
    if content is None:
        return 0, 0
    if isinstance(content, str):
        return len(content.encode()), 0
    if isinstance(content, list):
        text, images = 0, 0
        for part in content:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind in ("image_url", "input_image", "image"):
                images += 1
            elif kind in ("input_audio", "file"):
                text += len(orjson.dumps(part))  # encoded payloads: bytes still bound tokens
            else:
                text += len(str(part.get("text", "")).encode())
        return text, images
    return len(orjson.dumps(content)), 0


def chat_input_bound(body: dict[str, Any], context_length: int) -> int:
    tokens = PER_REQUEST_TOKENS
    for message in body.get("messages") or []:
        text, images = _content_bytes(message.get("content"))
        tokens += PER_MESSAGE_TOKENS + text + images * IMAGE_TOKENS
        for key in ("tool_calls", "name", "function_call"):
            if message.get(key):
                tokens += len(orjson.dumps(message[key]))
    for key in ("tools", "functions", "response_format"):
        if body.get(key):
            tokens += len(orjson.dumps(body[key]))
    return min(tokens, context_length) if context_length else tokens


def embedding_input_bound(body: dict[str, Any]) -> int:
    inputs = body.get("input")
    items = [inputs] if isinstance(inputs, (str, int)) else list(inputs or [])
    total = 0
    for item in items:
        if isinstance(item, str):
            total += len(item.encode()) + 1
        elif isinstance(item, list):  # pre-tokenized input: one token per id
            total += len(item)
        else:
            total += 1
    return total
