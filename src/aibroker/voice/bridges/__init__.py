"""One bridge per upstream protocol; `open_bridge` picks it by the provider's wire format."""

from __future__ import annotations

from typing import Any

from aibroker.catalog.registry import ModelEntry
from aibroker.errors import InvalidRequest
from aibroker.providers.specs import GEMINI_WIRE, MOCK_WIRE, OPENAI_WIRE
from aibroker.voice.bridges.base import Bridge, UpstreamClosed
from aibroker.voice.bridges.gemini_live import GeminiLiveBridge
from aibroker.voice.bridges.mock import MockRealtimeBridge
from aibroker.voice.bridges.openai_realtime import OpenAIRealtimeBridge
from aibroker.voice.protocol import SessionConfig

__all__ = ["Bridge", "UpstreamClosed", "open_bridge", "speaks_realtime"]


def speaks_realtime(services: Any, model: ModelEntry) -> bool:
    enabled = services.pool.enabled.get(model.provider)
    return enabled is not None and enabled.spec.wire in (OPENAI_WIRE, GEMINI_WIRE, MOCK_WIRE)


def open_bridge(services: Any, model: ModelEntry, config: SessionConfig, api_key: str | None) -> Bridge:
    """The bridge for `model`'s provider (not connected yet). `api_key`: the organization's own
    key for that provider (BYOK), else the platform's."""
    enabled = services.pool.enabled.get(model.provider)
    if enabled is None:
        raise InvalidRequest(f"The provider '{model.provider}' is not configured in this broker.", param="model")
    wire = enabled.spec.wire
    timeout = services.settings.voice.upstream_connect_seconds
    key = api_key or enabled.api_key
    if wire == MOCK_WIRE:
        return MockRealtimeBridge(config)
    if wire == OPENAI_WIRE and enabled.base_url:
        return OpenAIRealtimeBridge(enabled.base_url, key, config, connect_timeout=timeout)
    if wire == GEMINI_WIRE and enabled.base_url:
        return GeminiLiveBridge(enabled.base_url, key, config, connect_timeout=timeout)
    raise InvalidRequest(f"The provider '{model.provider}' has no realtime voice bridge in this broker.", param="model",
                         code="unsupported_capability")
