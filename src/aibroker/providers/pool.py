"""The process's provider adapters (one pooled HTTP client each) and their breakers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from aibroker.catalog.registry import ModelEntry
from aibroker.config import GatewaySettings
from aibroker.providers.anthropic import AnthropicProvider
from aibroker.providers.base import Call, Provider, Result
from aibroker.providers.breaker import CircuitBreaker
from aibroker.providers.gemini import GeminiProvider
from aibroker.providers.mock import MockProvider
from aibroker.providers.ollama import OllamaProvider
from aibroker.providers.openai_compat import OpenAICompatProvider
from aibroker.providers.specs import (
    ANTHROPIC_WIRE,
    GEMINI_WIRE,
    MOCK_WIRE,
    OLLAMA_WIRE,
    OPENAI_WIRE,
    EnabledProvider,
)

log = logging.getLogger("aibroker.providers")

_HTTP_ADAPTERS = {
    OPENAI_WIRE: OpenAICompatProvider,
    ANTHROPIC_WIRE: AnthropicProvider,
    GEMINI_WIRE: GeminiProvider,
    OLLAMA_WIRE: OllamaProvider,
}


class PrefixedModels:
    """Sends catalog model names upstream with the provider entry's model prefix."""

    def __init__(self, inner: Provider, prefix: str) -> None:
        self.name = inner.name
        self.inner = inner
        self.prefix = prefix

    def _call(self, call: Call) -> Call:
        name = call.model.name if call.model.name.startswith(self.prefix) else self.prefix + call.model.name
        body = {**call.body, "model": name}
        return replace(call, model=replace(call.model, name=name), body=body)

    async def chat(self, call: Call) -> Result:
        return await self.inner.chat(self._call(call))

    def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        return self.inner.stream_chat(self._call(call))

    async def embed(self, call: Call) -> Result:
        return await self.inner.embed(self._call(call))

    def __getattr__(self, name: str) -> Any:  # other capabilities (images, audio, discovery)
        return getattr(self.inner, name)

    async def aclose(self) -> None:
        await self.inner.aclose()


def build_adapter(enabled: EnabledProvider, settings: GatewaySettings) -> Provider:
    spec = enabled.spec
    if spec.wire == MOCK_WIRE:
        return MockProvider()
    adapter_class = _HTTP_ADAPTERS.get(spec.wire)
    if adapter_class is None:
        raise ValueError(f"no adapter for wire format {spec.wire!r}")
    assert enabled.base_url, f"{spec.name} needs a base URL"
    adapter: Provider = adapter_class(
        spec.name,
        enabled.base_url,
        enabled.api_key,
        timeout=settings.upstream_timeout_seconds,
        connect_timeout=settings.connect_timeout_seconds,
    )
    return PrefixedModels(adapter, spec.model_prefix) if spec.model_prefix else adapter


class ProviderPool:
    def __init__(self, enabled: dict[str, EnabledProvider], settings: GatewaySettings) -> None:
        self.enabled = enabled
        from aibroker.providers.balanced import with_deployments  # several deployments of one provider (AIBROKER_DEPLOYMENTS)

        self.adapters: dict[str, Provider] = {
            name: with_deployments(name, build_adapter(e, settings), e, settings, build_adapter) for name, e in enabled.items()
        }
        self.breakers = {
            name: CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_seconds) for name in enabled
        }

    def get(self, name: str) -> Provider | None:
        return self.adapters.get(name)

    async def discover(self) -> list[ModelEntry]:
        """Models the self-hosted servers report (Ollama's /api/tags; vLLM, llama.cpp and custom
        servers' /models), for the catalog at zero cost. Only providers flagged `local` are
        asked: a hosted provider's models are never registered free. The servers are asked
        together, each with a short timeout; one that is down is logged and skipped, so
        discovery never blocks startup."""
        asked = [
            (name, list_models)
            for name, adapter in self.adapters.items()
            if self.enabled[name].spec.local and (list_models := getattr(adapter, "list_models", None)) is not None
        ]
        results = await asyncio.gather(*(list_models() for _, list_models in asked), return_exceptions=True)
        found: list[ModelEntry] = []
        for (name, _), result in zip(asked, results, strict=True):
            if isinstance(result, BaseException):  # any failure just means "nothing discovered"
                log.warning("model discovery failed", extra={"fields": {"provider": name, "error": type(result).__name__}})
            else:
                found.extend(result)
        return found

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()
