"""What the pipeline knows about one request."""

from __future__ import annotations

import time
from collections.abc import Callable
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
    ab_split: tuple[str, str] | None = None  # (split id, arm) when an A/B split chose the model (ai/splits_router.py)
    byok_keys: dict[str, str] = field(default_factory=dict)  # provider -> the organization's own key
    started: float = field(default_factory=time.perf_counter)
    # A /v1/batches line (batches/lines.py): its records point at the batch and custom_id, the
    # plan's batch discount applies, and `on_settle(answer body, usage, usage row)` returns what must be
    # written in the settlement's own transaction (the line's result: exactly once in money).
    batch_id: str | None = None
    batch_custom_id: str | None = None
    discount_bps: int = 0
    on_settle: Callable[..., Any] | None = None
    # Guardrails (issue 15): what they decided (usage record `guardrail`), and whether this is
    # the broker's own call on the tenant's behalf (a moderation check: not admitted again).
    guardrail: str | None = None
    internal: bool = False
    # Monthly limits of the organization's own keys: provider -> (credential id, micros reserved, month).
    byok_reserved: dict[str, tuple[str, int, str]] = field(default_factory=dict)

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)
