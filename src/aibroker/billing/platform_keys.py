"""The platform's own provider keys, stored sealed in the database and preferred to the
environment variables (OPENAI_API_KEY, ...) when present.

Each process reads the (small) table at startup and every AIBROKER_PLATFORM_KEYS_CACHE_SECONDS,
and hands each adapter its key: a rotation reaches every process within that window, without
a restart; the process that made the change applies it at once. Deleting a stored key puts the
environment's key (if any) back. A stored key for a known provider that has no environment
key enables it (its adapter and catalog models appear, as if the variable had been set).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.kit import crypto
from aibroker.providers.breaker import CircuitBreaker
from aibroker.providers.pool import ProviderPool, build_adapter
from aibroker.providers.specs import BUILTIN, EnabledProvider, ProviderSpec, _extra_specs

log = logging.getLogger(__name__)


def seal_context(provider: str) -> str:
    return f"platform:{provider}"


def keyed_specs() -> dict[str, ProviderSpec]:
    """Providers this broker knows that take a key (built-in or declared)."""
    import os

    return {s.name: s for s in (*BUILTIN, *_extra_specs(dict(os.environ))) if s.key_env}


def _target(adapter: Any) -> Any:
    return getattr(adapter, "inner", adapter)  # PrefixedModels wraps the adapter that holds the key


class PlatformKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], pool: ProviderPool, catalog: Any, settings: Any, *, secret: str,
                 refresh_seconds: float) -> None:
        self._sessions = sessions
        self._pool = pool
        self._catalog = catalog
        self._settings = settings  # GatewaySettings (timeouts, breaker) for adapters enabled here
        self._secret = secret
        self._key_id = crypto.key_id(secret)
        self.refresh_seconds = refresh_seconds
        self._env = {name: enabled.api_key for name, enabled in pool.enabled.items()}
        self._enabled_here: set[str] = set()  # providers only a stored key enabled
        self.applied: dict[str, str] = {}  # provider -> hint of the stored key in use
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def load(self) -> dict[str, str]:
        """provider -> plaintext key of every stored key this process can open."""
        from aibroker.models import PlatformProviderKey

        async with self._sessions() as session:
            rows = (await session.execute(select(PlatformProviderKey.provider, PlatformProviderKey.sealed_key, PlatformProviderKey.key_id))).all()
        keys = {}
        for provider, sealed, kid in rows:
            if kid != self._key_id:
                log.warning("the platform key for %s was sealed with another secret key; set it again", provider)
                continue
            keys[provider] = crypto.unseal(bytes(sealed), self._secret, context=seal_context(provider))
        return keys

    async def refresh(self) -> None:
        async with self._lock:  # a slower, older read never lands after a newer one
            self.apply(await self.load())

    def apply(self, stored: dict[str, str]) -> None:
        specs = keyed_specs()
        for provider, key in stored.items():
            if provider not in self._pool.adapters:
                if provider not in specs:
                    continue
                self._enable(specs[provider], key)
                if provider not in self._pool.adapters:
                    continue
            _target(self._pool.adapters[provider])._api_key = key
            self.applied[provider] = key[-4:]
        for provider in [p for p in self.applied if p not in stored]:
            del self.applied[provider]
            if provider in self._enabled_here:
                self._disable(provider)
                continue
            adapter = self._pool.adapters.get(provider)
            if adapter is not None:
                _target(adapter)._api_key = self._env.get(provider)  # back to the environment's key

    def _enable(self, spec: ProviderSpec, key: str) -> None:
        import os

        base_url = (os.environ.get(spec.base_url_env) if spec.base_url_env else None) or spec.default_base_url
        if not base_url:
            log.warning("platform key stored for %s, but it has no base URL (%s)", spec.name, spec.base_url_env)
            return
        enabled = EnabledProvider(spec, base_url.rstrip("/"), key)
        self._pool.enabled[spec.name] = enabled
        self._pool.adapters[spec.name] = build_adapter(enabled, self._settings)
        self._pool.breakers[spec.name] = CircuitBreaker(self._settings.breaker_failures, self._settings.breaker_cooldown_seconds)
        self._enabled_here.add(spec.name)
        self._catalog.enable_provider(spec.name)

    def _disable(self, provider: str) -> None:
        """Its stored key was the only one: the provider goes away again (its breaker stays, so a
        request planned a moment ago finds no adapter and is answered as for a provider that is down)."""
        self._enabled_here.discard(provider)
        self._catalog.disable_provider(provider)
        self._pool.enabled.pop(provider, None)
        adapter = self._pool.adapters.pop(provider, None)
        if adapter is not None:
            task = asyncio.ensure_future(adapter.aclose())
            task.add_done_callback(lambda t: t.exception())

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            try:
                await self.refresh()
            except Exception:
                log.exception("platform provider keys refresh failed")

    def start(self) -> None:
        if self.refresh_seconds > 0:
            self._task = asyncio.create_task(self.run(), name="platform-keys")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
