"""Weighted, health-aware balancing across several deployments of one provider (several keys
or base URLs), configured by AIBROKER_DEPLOYMENTS:

    {"openai": [{"name": "eu", "base_url": "https://eu.example/v1", "key_env": "OPENAI_API_KEY_EU", "weight": 3},
                {"name": "primary", "weight": 1}]}

The provider's usual configuration (its key and base URL variables) is the deployment named
`primary` (weight 1 unless listed); each other entry is one more deployment of the same wire
format, with its own pooled client and circuit breaker. A call goes to a deployment drawn by
weight among those whose breaker is closed; a transient failure (5xx, 429, timeout) counts on
that deployment's breaker and the call moves to the next deployment, so the pipeline's own
retries, fallbacks and provider breaker see one healthy provider while any deployment works.
A call with the organization's own key (BYOK) always uses the primary deployment. A stream
fails over only before its first chunk.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

from aibroker.config import GatewaySettings
from aibroker.providers.base import Call, Provider, Result
from aibroker.providers.breaker import CircuitBreaker
from aibroker.providers.errors import ProviderBadRequest, ProviderError
from aibroker.providers.specs import EnabledProvider

PRIMARY = "primary"
FAILOVER_METHODS = ("images", "transcribe", "moderate", "speech")


@dataclass(slots=True)
class Deployment:
    name: str
    adapter: Provider
    weight: int
    breaker: CircuitBreaker


def deployments_config(env: dict[str, str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """AIBROKER_DEPLOYMENTS, checked: provider -> [{"name", "base_url"?, "key_env"?, "weight"}]."""
    raw = (dict(os.environ) if env is None else env).get("AIBROKER_DEPLOYMENTS")
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict) or not all(isinstance(v, list) for v in parsed.values()):
        raise ValueError("AIBROKER_DEPLOYMENTS must be a JSON object of provider -> list of deployments")
    for provider, items in parsed.items():
        names = set()
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item["name"] in names:
                raise ValueError(f"AIBROKER_DEPLOYMENTS[{provider}]: each deployment needs a unique 'name'")
            names.add(item["name"])
            weight = item.get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                raise ValueError(f"AIBROKER_DEPLOYMENTS[{provider}].{item['name']}: weight must be a whole number >= 0")
            if item["name"] != PRIMARY and not item.get("base_url") and not item.get("key_env"):
                raise ValueError(f"AIBROKER_DEPLOYMENTS[{provider}].{item['name']}: give a base_url, a key_env or both")
    return parsed


def with_deployments(
    name: str, primary: Provider, enabled: EnabledProvider, settings: GatewaySettings,
    build: Callable[[EnabledProvider, GatewaySettings], Provider], env: dict[str, str] | None = None,
) -> Provider:
    """`primary`, or a BalancedProvider over it and the provider's other deployments."""
    env = dict(os.environ) if env is None else env
    items = deployments_config(env).get(name)
    if not items:
        return primary
    weights = {i["name"]: int(i.get("weight", 1)) for i in items}

    def breaker() -> CircuitBreaker:
        return CircuitBreaker(settings.breaker_failures, settings.breaker_cooldown_seconds)

    deployments = [Deployment(PRIMARY, primary, weights.get(PRIMARY, 1), breaker())]
    for item in items:
        if item["name"] == PRIMARY:
            continue
        key = env.get(item["key_env"]) if item.get("key_env") else enabled.api_key
        url = (item.get("base_url") or enabled.base_url or "").rstrip("/") or None
        adapter = build(replace(enabled, base_url=url, api_key=key), settings)
        deployments.append(Deployment(item["name"], adapter, weights[item["name"]], breaker()))
    return BalancedProvider(name, deployments)


def _transient(exc: ProviderError) -> bool:
    return exc.transient and not isinstance(exc, ProviderBadRequest)


class BalancedProvider:
    def __init__(self, name: str, deployments: list[Deployment], rng: random.Random | None = None) -> None:
        self.name = name
        self.deployments = deployments
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not security

    def order(self, call: Call) -> list[Deployment]:
        """Healthy deployments, drawn by weight (without replacement); then the open ones."""
        if call.api_key:  # the organization's own key belongs with the provider's own endpoint
            return [self.deployments[0]]
        healthy = [d for d in self.deployments if d.breaker.state != "open" and d.weight > 0]
        rest = [d for d in self.deployments if d not in healthy]
        ordered = []
        while healthy:
            pick = self._rng.choices(healthy, weights=[d.weight for d in healthy])[0]
            ordered.append(pick)
            healthy.remove(pick)
        return ordered + rest

    async def _each(self, call: Call, invoke: Callable[[Provider], Any]) -> Any:
        last: ProviderError | None = None
        for deployment in self.order(call):
            if not deployment.breaker.allow():
                continue
            try:
                value = await invoke(deployment.adapter)
            except ProviderError as exc:
                if not _transient(exc):
                    deployment.breaker.record_success()  # the request was refused, the deployment works
                    raise
                deployment.breaker.record_failure()
                last = exc
                continue
            deployment.breaker.record_success()
            return value
        if last is None:  # every deployment's breaker is open: try the primary anyway
            return await invoke(self.deployments[0].adapter)
        raise last

    async def chat(self, call: Call) -> Result:
        return await self._each(call, lambda adapter: adapter.chat(call))  # type: ignore[no-any-return]

    async def embed(self, call: Call) -> Result:
        return await self._each(call, lambda adapter: adapter.embed(call))  # type: ignore[no-any-return]

    async def stream_chat(self, call: Call) -> AsyncIterator[dict[str, Any]]:
        async def first_of(adapter: Provider) -> tuple[AsyncIterator[dict[str, Any]], dict[str, Any] | None]:
            iterator = adapter.stream_chat(call).__aiter__()
            try:
                return iterator, await iterator.__anext__()
            except StopAsyncIteration:
                return iterator, None

        iterator, first = await self._each(call, first_of)
        if first is None:
            return
        yield first
        async for chunk in iterator:
            yield chunk

    def __getattr__(self, name: str) -> Any:
        primary = self.deployments[0].adapter
        if name in FAILOVER_METHODS and hasattr(primary, name):
            async def failover(call: Call, *args: Any, **kwargs: Any) -> Any:
                return await self._each(call, lambda adapter: getattr(adapter, name)(call, *args, **kwargs))

            return failover
        return getattr(primary, name)

    def health(self) -> list[dict[str, Any]]:
        return [{"name": d.name, "weight": d.weight, "breaker": d.breaker.state,
                 "consecutive_failures": d.breaker.consecutive_failures} for d in self.deployments]

    async def aclose(self) -> None:
        for deployment in self.deployments:
            await deployment.adapter.aclose()
