"""A circuit breaker per provider: after N consecutive failures, skip the provider for a
cool-down, then let one trial call through (half-open)."""

from __future__ import annotations

import time


class CircuitBreaker:
    def __init__(self, failures: int, cooldown: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._consecutive += 1
        self._trial_in_flight = False
        if self._opened_at is not None or self._consecutive >= self.threshold:
            self._opened_at = self._clock()
