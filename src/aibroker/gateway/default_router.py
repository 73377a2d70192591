"""The router a fresh install runs: the requested model (or the platform default), then
the fallbacks configured for it (AIBROKER_FALLBACKS)."""

from __future__ import annotations

from aibroker.catalog.registry import ModelEntry
from aibroker.catalog.service import Catalog
from aibroker.config import GatewaySettings
from aibroker.errors import BrokerError
from aibroker.gateway.context import CallContext


def platform_default_model(settings: GatewaySettings, enabled_providers: set[str]) -> str:
    """AIBROKER_DEFAULT_MODEL; else OpenAI's small model when OpenAI is configured; else mock-chat."""
    if settings.default_model:
        return settings.default_model
    return "openai/gpt-4o-mini" if "openai" in enabled_providers else "mock/mock-chat"


class DefaultRouter:
    def __init__(self, catalog: Catalog, settings: GatewaySettings) -> None:
        self.catalog = catalog
        self.settings = settings

    def default_model(self) -> str:
        return platform_default_model(self.settings, self.catalog.enabled_providers)

    def candidates(self, ctx: CallContext, requested: str | None, kind: str) -> list[ModelEntry]:
        name = requested or self.default_model()
        primary = self.catalog.resolve(name)
        chain = [primary]
        for fallback in self.settings.fallbacks.get(name) or self.settings.fallbacks.get(primary.id) or []:
            try:
                entry = self.catalog.resolve(fallback)
            except BrokerError:  # an unknown or disabled fallback is skipped, never fatal
                continue
            if all(entry.id != c.id for c in chain):
                chain.append(entry)
        return chain
