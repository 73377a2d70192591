"""What the pipeline knows about one request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from aibroker.tenancy.auth import Principal


@dataclass(slots=True)
class CallContext:
    request_id: str
    principal: Principal
    endpoint: str  # chat | embeddings | broker
    feature: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    cache_status: str = "bypass"  # hit | miss | bypass (x-aibroker-cache)
    no_store: bool = False  # the caller sent Cache-Control: no-store (never read or write the cache)
    profile: str | None = None  # routing profile (x-aibroker-profile / body `profile`); None: "default"
    group: str | None = None  # routing group (x-aibroker-group), e.g. a promotion's group key
    route: Any = None  # what the routing matrix resolved for this request (routing.snapshot.Resolution)
    byok_keys: dict[str, str] = field(default_factory=dict)  # provider -> the organization's own key
    started: float = field(default_factory=time.perf_counter)
    # Guardrails (issue 15): what they decided (usage record `guardrail`), and whether this is
    # the broker's own call on the tenant's behalf (a moderation check: not admitted again).
    guardrail: str | None = None
    internal: bool = False
    # Monthly limits of the organization's own keys: provider -> (credential id, micros reserved, month).
    byok_reserved: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)
