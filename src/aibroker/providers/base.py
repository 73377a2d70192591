"""Common types and the adapter interface every provider implements.

Requests and responses are OpenAI-shaped dicts: that is the broker's lingua franca.
Adapters for other wire formats translate at their edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from aibroker.catalog.registry import ModelEntry


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0  # all prompt tokens, cached ones included
    output_tokens: int = 0  # completion tokens, reasoning included
    cached_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0  # prompt tokens written to the provider's cache
    estimated: bool = False  # True when the upstream never reported usage (cut stream)


def usage_from_openai(data: dict[str, Any] | None) -> Usage:
    """The broker's Usage from an OpenAI-shaped `usage` object (responses, stream chunks,
    cached answers); `cache_creation_input_tokens` is what Anthropic-backed answers add."""
    if not data:
        return Usage()
    details = data.get("prompt_tokens_details") or {}
    return Usage(
        input_tokens=int(data.get("prompt_tokens") or 0),
        output_tokens=int(data.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_write_tokens=int(data.get("cache_creation_input_tokens") or 0),
    )


@dataclass(slots=True)
class Call:
    """One upstream attempt: the catalog entry, the OpenAI-shaped body, an optional BYOK key."""

    model: ModelEntry
    body: dict[str, Any]
    api_key: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    body: dict[str, Any]  # OpenAI-shaped response object
    usage: Usage


class Provider(Protocol):
    name: str

    async def chat(self, call: Call) -> Result:
        """A non-streamed chat completion."""

    def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        """OpenAI `chat.completion.chunk` dicts; the last one carries `usage` when known."""

    async def embed(self, call: Call) -> Result:
        """An OpenAI-shaped embeddings list."""

    async def aclose(self) -> None:
        """Release pooled connections."""


# -- optional media capabilities: an adapter that lacks a method lacks the capability ------


@dataclass(slots=True)
class AudioFile:
    """An uploaded audio file for transcription."""

    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(slots=True)
class Transcription:
    body: dict[str, Any]  # OpenAI-shaped: {"text", ...} (verbose_json fields when known)
    seconds: float | None  # the audio duration the provider reported, if it did
    usage: Usage = field(default_factory=Usage)


class ImageProvider(Protocol):
    async def images(self, call: Call) -> Result:
        """OpenAI images response: {"created", "data": [{"b64_json" | "url", ...}]}; usage may be empty."""


class TranscriptionProvider(Protocol):
    async def transcribe(self, call: Call, audio: AudioFile) -> Transcription:
        """Transcribe `audio`; `call.body` holds the form fields (model, language, prompt, ...)."""


class TokenCounter(Protocol):
    async def count_tokens(self, call: Call) -> int:
        """The input tokens `call.body` (an OpenAI-shaped chat request) would be billed for,
        as the provider counts them (Anthropic's /v1/messages/count_tokens; free upstream)."""


@dataclass(slots=True)
class SpeechAudio:
    """Spoken text: the audio bytes and their MIME type."""

    content: bytes
    content_type: str


class SpeechProvider(Protocol):
    async def speech(self, call: Call) -> SpeechAudio:
        """Text to speech; `call.body` is OpenAI's /audio/speech request (model, input, voice, ...)."""


class ModerationProvider(Protocol):
    async def moderate(self, call: Call) -> Result:
        """OpenAI's moderation object: {"id", "model", "results": [...]}; usage is empty (free)."""
