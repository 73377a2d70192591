"""A true upper bound on a request's input tokens, without a tokenizer.

Byte-level BPE tokenizers (OpenAI, Anthropic, Llama, Gemini's SentencePiece with byte
fallback) never emit more tokens than the text has UTF-8 bytes, so bytes bound tokens.
Chat formatting adds a few tokens per message; an image costs at most IMAGE_TOKENS.
The bound is then capped by the model's context window: no provider bills more input
than a request it accepted can hold.
"""

from __future__ import annotations

import re
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


# -- what a stream generated, when it ended without the provider's usage report ----------
#
# Counted once over the whole text (never per chunk: a one-word chunk is not a token plus
# rounding). No provider tokenizer is available offline (tiktoken downloads its encodings
# at run time), so this mirrors what byte-level BPE tokenizers do: text is split like GPT's
# pre-tokenizer (words with their leading space, digit groups of up to 3, punctuation runs,
# whitespace runs), and each piece costs what such tokenizers charge at most for common
# text: a word one token per 6 letters (English words up to 6 letters are one token), a
# non-Latin word one per 3 UTF-8 bytes (about one per CJK character), punctuation one per
# 2 characters, a digit group or a whitespace run one. Never more than the text's UTF-8
# bytes (a hard bound for byte-level tokenizers), nor than the request's max_tokens.

_PIECES = re.compile(r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d]+| ?\d{1,3}| ?[^\s\w]+|\s+")
LETTERS_PER_TOKEN = 6
NON_ASCII_BYTES_PER_TOKEN = 3
PUNCTUATION_PER_TOKEN = 2


def _piece_tokens(piece: str) -> int:
    body = piece.lstrip(" ") or piece
    first = body[0]
    if first.isspace() or first.isdigit() or first == "'":
        return 1
    if first.isalpha() or first == "_":
        if body.isascii():
            return -(-len(body) // LETTERS_PER_TOKEN)
        return -(-len(body.encode()) // NON_ASCII_BYTES_PER_TOKEN)
    return -(-len(body) // PUNCTUATION_PER_TOKEN)


def generated_tokens(text: str, max_tokens: int | None = None) -> int:
    """Estimated tokens of generated `text` (see above). 0 for no text."""
    if not text:
        return 0
    tokens = min(sum(_piece_tokens(p) for p in _PIECES.findall(text)), len(text.encode()))
    return min(tokens, max_tokens) if max_tokens else tokens
