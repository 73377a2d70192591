"""Helpers of the adapter tests: Calls as the gateway builds them, adapters on the fakes."""

from __future__ import annotations

from typing import Any

from aibroker.catalog.service import Catalog
from aibroker.providers.anthropic import AnthropicProvider
from aibroker.providers.base import Call
from aibroker.providers.gemini import GeminiProvider
from aibroker.providers.ollama import OllamaProvider
from tests.providers.conftest import ANTHROPIC_KEY, GEMINI_KEY

CATALOG = Catalog({"anthropic", "gemini", "ollama", "openai", "mock"})
USER = [{"role": "user", "content": "hello there friend"}]
LOOKUP = {"type": "function", "function": {"name": "lookup", "description": "Look something up.",
                                           "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}


def call(model_id: str, body: dict[str, Any], **kw: Any) -> Call:
    """A Call as the gateway makes it: the catalog entry and an OpenAI-shaped body."""
    entry = CATALOG.resolve(model_id)
    return Call(entry, {"model": entry.name, "max_tokens": 256, **body}, **kw)


def anthropic_adapter(base_url: str, key: str | None = ANTHROPIC_KEY) -> AnthropicProvider:
    return AnthropicProvider("anthropic", base_url, key, timeout=5, connect_timeout=2)


def gemini_adapter(base_url: str, key: str | None = GEMINI_KEY) -> GeminiProvider:
    return GeminiProvider("gemini", base_url, key, timeout=5, connect_timeout=2)


def ollama_adapter(base_url: str) -> OllamaProvider:
    return OllamaProvider("ollama", base_url, None, timeout=5, connect_timeout=2)


async def collect(stream: Any) -> list[dict[str, Any]]:
    return [chunk async for chunk in stream]


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
