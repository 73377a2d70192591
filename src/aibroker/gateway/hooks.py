"""The pipeline's extension points, with the do-nothing defaults a fresh install runs.

    Router     which models serve a request (routing matrix; default: the requested model
               and its configured fallbacks)
    Admission  may this request run now (plan access, rate limits, quotas); what to count after
    Cache      a stored answer for an identical request of the same organization

Each domain package provides its implementation; app.py plugs them in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aibroker.billing.pricing import Cost
from aibroker.catalog.registry import ModelEntry
from aibroker.gateway.context import CallContext
from aibroker.providers.base import Usage


@dataclass(slots=True)
class Ticket:
    """What admission granted: response headers to add, and anything it must settle later."""

    headers: dict[str, str] = field(default_factory=dict)
    state: Any = None


class Router(Protocol):
    def candidates(self, ctx: CallContext, requested: str | None, kind: str) -> list[ModelEntry]:
        """Ordered candidates; the first is the primary. Raises a BrokerError to refuse."""


class Admission(Protocol):
    def screen(self, ctx: CallContext, body: dict[str, Any], kind: str) -> None:
        """Input rules, before any planning: raise a 400, or rewrite the body in place (redaction)."""

    async def admit(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any]) -> Ticket:
        """Raise a BrokerError (403/429) to refuse; return a ticket to proceed."""

    async def settle(self, ctx: CallContext, ticket: Ticket, model: ModelEntry, usage: Usage | None) -> None:
        """Count what the request used (None: it failed and used nothing)."""


class Cache(Protocol):
    async def get(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str) -> dict[str, Any] | None:
        """The stored response body, or None. Sets ctx.cache_status."""

    async def put(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str, response: dict[str, Any]) -> None:
        """Store a fresh response (when the request allows it)."""

    def hit_cost(self, ctx: CallContext, model: ModelEntry, usage: Usage, margin_bps: int) -> Cost:
        """What a hit is billed (the configured policy; free by default)."""


class OpenAdmission:
    """No limits: every request is admitted."""

    def screen(self, ctx: CallContext, body: dict[str, Any], kind: str) -> None:
        return None

    async def admit(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any]) -> Ticket:
        return Ticket()

    async def settle(self, ctx: CallContext, ticket: Ticket, model: ModelEntry, usage: Usage | None) -> None:
        return None


class NoCache:
    async def get(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str) -> dict[str, Any] | None:
        ctx.cache_status = "bypass"
        return None

    async def put(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any], kind: str, response: dict[str, Any]) -> None:
        return None

    def hit_cost(self, ctx: CallContext, model: ModelEntry, usage: Usage, margin_bps: int) -> Cost:
        return Cost(0, 0, margin_bps)
