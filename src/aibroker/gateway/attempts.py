"""Calling upstream: retries with backoff (tenacity) on transient errors, honouring
Retry-After; fallback to the next candidate; a circuit breaker per provider. Every failed
attempt is recorded (never billed)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential_jitter,
)

from aibroker.catalog.registry import ModelEntry
from aibroker.config import GatewaySettings
from aibroker.ops import metrics
from aibroker.providers.base import Call, Provider
from aibroker.providers.errors import (
    ProviderBadRequest,
    ProviderCircuitOpen,
    ProviderError,
)
from aibroker.providers.pool import ProviderPool

T = TypeVar("T")


@dataclass(slots=True)
class Attempted:
    """The outcome of the call that succeeded."""

    value: Any
    model: ModelEntry
    attempts: int
    upstream_ms: int


OnFailure = Callable[[ModelEntry, ProviderError, int, int], None]


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, ProviderError) and exc.transient


class AttemptRunner:
    def __init__(self, pool: ProviderPool, settings: GatewaySettings) -> None:
        self._pool = pool
        self._settings = settings
        self._backoff = wait_exponential_jitter(
            multiplier=settings.retry_base_seconds, max=settings.retry_max_seconds, jitter=settings.retry_base_seconds
        )

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number > self._settings.max_retries:
            return True
        exc = state.outcome.exception() if state.outcome else None
        # A Retry-After longer than we are willing to wait: try the next candidate instead.
        return isinstance(exc, ProviderError) and (exc.retry_after or 0) > self._settings.retry_max_seconds

    async def run(
        self,
        candidates: list[tuple[ModelEntry, Call]],
        invoke: Callable[[Provider, Call], Awaitable[T]],
        on_failure: OnFailure,
    ) -> Attempted:
        attempt_no = 0
        last_error: ProviderError | None = None
        for model, call in candidates:
            breaker = self._pool.breakers[model.provider]
            adapter = self._pool.get(model.provider)
            if adapter is None or not breaker.allow():
                last_error = ProviderCircuitOpen(
                    f"provider '{model.provider}' is failing and is skipped for now", provider=model.provider
                )
                continue
            retrying = AsyncRetrying(
                stop=self._stop, wait=self._wait, retry=retry_if_exception(_is_transient), reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        attempt_no += 1
                        started = time.perf_counter()
                        try:
                            value = await invoke(adapter, call)
                        except ProviderError as exc:
                            elapsed = int((time.perf_counter() - started) * 1000)
                            metrics.child(metrics.UPSTREAM_ERRORS, model.provider, exc.error_type).inc()
                            if not isinstance(exc, ProviderBadRequest):
                                breaker.record_failure()
                            on_failure(model, exc, attempt_no, elapsed)
                            raise
                        upstream = time.perf_counter() - started
                        breaker.record_success()
                        metrics.child(metrics.UPSTREAM_SECONDS, model.provider).observe(upstream)
                        return Attempted(value, model, attempt_no, int(upstream * 1000))
            except ProviderBadRequest:
                raise  # the request itself is wrong: another provider would refuse it too
            except ProviderError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error
