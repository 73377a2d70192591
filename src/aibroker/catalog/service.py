"""The live catalog: packaged entries + database overrides, and model-name resolution."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.catalog.registry import ModelEntry, apply_override, load_packaged
from aibroker.errors import InvalidRequest
from aibroker.models import ModelOverride


class UnknownModel(InvalidRequest):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, name: str, hint: str = "") -> None:
        super().__init__(
            f"The model '{name}' does not exist or is not available.{hint} GET /v1/models lists the models you can use.",
            param="model",
            code="model_not_found",
        )


class Catalog:
    def __init__(self, enabled_providers: set[str], aliases: dict[str, str] | None = None) -> None:
        self.enabled_providers = enabled_providers
        self.aliases = dict(aliases or {})
        self._packaged = load_packaged()
        self._discovered: dict[str, ModelEntry] = {}  # found on self-hosted servers, zero cost
        self._entries: dict[str, ModelEntry] = dict(self._packaged)
        self._by_bare_name: dict[str, str] = {}
        self._reindex()

    def _reindex(self) -> None:
        # A bare name resolves to the first enabled provider that serves it (file order).
        by_name: dict[str, str] = {}
        for entry in self._entries.values():
            if entry.provider in self.enabled_providers and entry.enabled:
                by_name.setdefault(entry.name, entry.id)
        for entry in self._entries.values():
            by_name.setdefault(entry.name, entry.id)
        self._by_bare_name = by_name

    def enable_provider(self, name: str) -> None:
        """A provider became usable while running (its platform key was stored: billing/platform_keys.py)."""
        if name not in self.enabled_providers:
            self.enabled_providers.add(name)
            self._reindex()

    def disable_provider(self, name: str) -> None:
        """The reverse of `enable_provider` (its stored platform key was deleted)."""
        if name in self.enabled_providers:
            self.enabled_providers.discard(name)
            self._reindex()

    def register_discovered(self, found: list[ModelEntry]) -> list[ModelEntry]:
        """Add models a local server reported that the catalog lacks. They cost zero (their
        prices are 0) but are recorded like any call; a database override can price them.
        `name:latest` is the packaged `name`, so it is not added twice. Returns what was added.
        A model a database override already priced keeps that price, and falls back to the
        discovered zero-cost entry (not to nothing) if the override is deleted."""
        added = []
        for entry in found:
            base_id = entry.id.removesuffix(":latest")
            if entry.id in self._packaged or entry.id in self._discovered:
                continue
            if base_id != entry.id and base_id in self._entries:
                continue
            self._discovered[entry.id] = entry
            if entry.id not in self._entries:
                self._entries[entry.id] = entry
                added.append(entry)
        if added:
            self._reindex()
        return added

    def is_discovered(self, model_id: str) -> bool:
        return model_id in self._discovered

    async def load_overrides(self, session: AsyncSession) -> None:
        """(Re)build the entries: packaged + discovered + every database override. Called at
        startup and by the admin catalog routes after a change (this process only)."""
        entries = {**self._packaged, **self._discovered}
        for row in (await session.scalars(select(ModelOverride))).all():
            entries[row.id] = apply_override(entries.get(row.id), row.id, row)
        self._entries = entries
        self._reindex()

    def entries(self) -> list[ModelEntry]:
        return list(self._entries.values())

    def available(self) -> list[ModelEntry]:
        return [e for e in self._entries.values() if e.enabled and e.provider in self.enabled_providers]

    def get(self, model_id: str) -> ModelEntry | None:
        return self._entries.get(model_id)

    def resolve(self, name: str) -> ModelEntry:
        """`provider/model` always; a bare name through the catalog; aliases from settings."""
        if not name or not isinstance(name, str):
            raise InvalidRequest("you must provide a model parameter", param="model")
        target = self.aliases.get(name, name)
        entry = self._entries.get(target)
        if entry is None:
            model_id = self._by_bare_name.get(target)
            entry = self._entries.get(model_id) if model_id else None
        if entry is None:
            provider, _, rest = target.partition("/")
            if provider in self.enabled_providers and rest:
                raise UnknownModel(name, f" The provider '{provider}' is configured but the catalog has no '{rest}'.")
            raise UnknownModel(name)
        if not entry.enabled:
            raise UnknownModel(name, " It is disabled in this broker.")
        if entry.provider not in self.enabled_providers:
            raise UnknownModel(name, f" Its provider '{entry.provider}' has no key configured.")
        return entry
