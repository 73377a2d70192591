"""The gateway's Router and Admission for the routing matrix.

`RoutingRouter` wraps the fresh-install `DefaultRouter`: a request whose feature has
routing rows gets the resolved candidates as its fallback chain (or 403 with the reason);
any other request is routed exactly as the DefaultRouter routes it. An explicit model
must be one of the resolved candidates (it is then tried first, the other candidates
after it); `model: "auto"` lets the matrix choose. A feature without any routing rows
accepts any model (the matrix has nothing to say about it).

`RoutingLimits` wraps the gateway's Admission: before a routed request runs, it counts
the feature's successful requests of the organization (and user) in the current day and
month, in the organization's time zone, and refuses with 429 when a limit is reached.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.catalog.registry import ModelEntry
from aibroker.catalog.service import Catalog
from aibroker.errors import BrokerError, InvalidRequest, PermissionDenied
from aibroker.gateway.context import CallContext
from aibroker.gateway.hooks import Admission, Ticket
from aibroker.kit.clock import utcnow
from aibroker.providers.base import Usage
from aibroker.routing.limits import QuotaExceeded, count_usage, judge, windows
from aibroker.routing.runtime import RoutingRuntime
from aibroker.routing.snapshot import DEFAULT_PROFILE, UNROUTED, Resolution

PROFILE_HEADER = "x-aibroker-profile"
GROUP_HEADER = "x-aibroker-group"
AUTO_MODELS = frozenset({"auto", "aibroker/auto"})


def routing_fields(headers: Any, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(profile, group) a request names: headers first, then body fields `profile` / `group`.
    The body fields are removed: they are aibroker's, never sent upstream. Whether the caller
    may name them is `tenancy.routing_authority.authorize`'s to say."""
    profile = headers.get(PROFILE_HEADER) or body.pop("profile", None)
    group = headers.get(GROUP_HEADER) or body.pop("group", None)
    body.pop("profile", None)
    body.pop("group", None)
    return (str(profile) if profile else None), (str(group) if group else None)


class NoAvailableProvider(BrokerError):
    status_code = 503
    error_type = "service_unavailable"


class RoutingRouter:
    def __init__(self, default: Any, runtime: RoutingRuntime, catalog: Catalog) -> None:
        self.default = default
        self.runtime = runtime
        self.catalog = catalog
        self.splits: Any = None  # ai.splits_book.SplitBook: A/B splits, the first routing step (app.py)

    def default_model(self) -> str:
        return self.default.default_model()  # type: ignore[no-any-return]

    def resolution(self, ctx: CallContext) -> Resolution:
        """What the matrix says for this request (UNROUTED when it says nothing)."""
        snapshot = self.runtime.current()
        profile = ctx.profile or DEFAULT_PROFILE
        # Checked on unrouted features too: an unknown profile is a bad request, never served.
        if profile not in snapshot.profiles:
            raise InvalidRequest(
                f"Unknown profile '{profile}'. Known profiles: {', '.join(sorted(snapshot.profiles))}.",
                param="profile", code="unknown_profile",
            )
        if not snapshot.is_routed(ctx.feature):
            return UNROUTED
        assert ctx.feature is not None
        return snapshot.resolve(ctx.principal.plan, ctx.feature, profile, ctx.group, ctx.user_id, now=utcnow())

    def usable(self, ctx: CallContext, model_id: str, kind: str) -> ModelEntry | None:
        entry = self.catalog.get(model_id)
        if entry is None or not entry.enabled or entry.kind != kind:
            return None
        if entry.provider not in self.catalog.enabled_providers and entry.provider not in ctx.byok_keys:
            return None
        return entry

    def candidates(self, ctx: CallContext, requested: str | None, kind: str) -> list[ModelEntry]:
        if self.splits is not None:  # an A/B split of the feature picks the model of a request that names none
            requested = self.splits.apply(ctx, requested, kind)
        if requested in AUTO_MODELS:
            requested = None
        resolution = self.resolution(ctx)
        if not resolution.routed:
            return self.default.candidates(ctx, requested, kind)  # type: ignore[no-any-return]
        if not resolution.allowed:
            raise PermissionDenied(resolution.message, code=resolution.reason, extra={"feature": ctx.feature})
        ctx.route = resolution
        allowed_ids = [c.model for c in resolution.candidates]
        consensus = resolution.feature is not None and resolution.feature.mode == "consensus"
        if consensus and requested:  # the model that synthesizes the votes is allowed too
            allowed_ids += self.runtime.current().consensus_models(ctx.feature or "")
        if not any((e := self.catalog.get(m)) is not None and e.kind == kind for m in allowed_ids):
            # The matrix routes this feature's chat only: other kinds use the platform's models.
            return self.default.candidates(ctx, requested, kind)  # type: ignore[no-any-return]
        entries = [e for m in allowed_ids if (e := self.usable(ctx, m, kind)) is not None]
        if requested:
            wanted = self.catalog.resolve(requested)
            if wanted.id not in allowed_ids:
                raise PermissionDenied(
                    f"The model '{wanted.id}' is not available for the feature '{ctx.feature}' on the plan "
                    f"'{ctx.principal.plan}'. Allowed: {', '.join(allowed_ids)} (or model 'auto').",
                    param="model", code="model_not_allowed", extra={"feature": ctx.feature, "allowed_models": allowed_ids},
                )
            if consensus:
                return [wanted]  # one vote: no fallback to another voter
            return [wanted, *(e for e in entries if e.id != wanted.id)]
        # A consensus feature gets here without a model only from callers that do not vote
        # (every chat route runs routing.consensus first): they get the fallback chain.
        if not entries:
            raise NoAvailableProvider(
                f"No provider configured for the feature '{ctx.feature}' is available in this broker "
                f"(configured: {', '.join(allowed_ids)}; set their API keys).",
                code="no_available_provider",
            )
        return entries


def known_profiles(services: Any) -> frozenset[str]:
    """The routing vocabulary's profiles (only `default` without a routing runtime)."""
    runtime = find_runtime(services)
    return runtime.current().profiles if runtime is not None else frozenset((DEFAULT_PROFILE,))


def find_runtime(services: Any) -> RoutingRuntime | None:
    """The routing runtime behind the gateway's router (the router may be wrapped)."""
    router = services.gateway.router
    for _ in range(5):
        if isinstance(router, RoutingRouter):
            return router.runtime
        router = getattr(router, "inner", None) or getattr(router, "default", None)
        if router is None:
            break
    return None


class RoutingLimits:
    """Admission: the matrix's daily / monthly limits, then the wrapped admission."""

    def __init__(self, inner: Admission, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.inner = inner
        self._sessions = sessions
        # An exhausted limit stays exhausted until its window ends (usage is never removed):
        # refusals are remembered until then, so a client hammering a full quota costs no query.
        self._exhausted: dict[tuple[Any, ...], Any] = {}

    async def admit(self, ctx: CallContext, model: ModelEntry, body: dict[str, Any]) -> Ticket:
        resolution: Resolution | None = ctx.route
        remaining: dict[str, str] = {}
        if resolution is not None and resolution.has_limits and ctx.feature:
            now = utcnow()
            key = (ctx.principal.organization_id, ctx.feature, ctx.user_id, resolution.daily_limit, resolution.monthly_limit)
            known = self._exhausted.get(key)
            if known is not None and known.reset_at > now:
                raise QuotaExceeded(ctx.feature, known, now)
            win = windows(now, ctx.principal.timezone)
            async with self._sessions() as session:
                # The request's own earlier rows (consensus votes) are not another use.
                counts = await count_usage(
                    session, organization_id=ctx.principal.organization_id, feature=ctx.feature,
                    user_id=ctx.user_id, win=win, exclude_request=ctx.request_id,
                )
            verdict = judge(resolution, counts, win)
            if not verdict.allowed:
                if len(self._exhausted) > 10_000:
                    self._exhausted.clear()
                self._exhausted[key] = verdict
                raise QuotaExceeded(ctx.feature, verdict, now)
            if resolution.daily_limit is not None:
                remaining["x-aibroker-feature-remaining-day"] = str(resolution.daily_limit - counts.today - 1)
            if resolution.monthly_limit is not None:
                remaining["x-aibroker-feature-remaining-month"] = str(resolution.monthly_limit - counts.this_month - 1)
        ticket = await self.inner.admit(ctx, model, body)
        ticket.headers.update(remaining)
        return ticket

    async def settle(self, ctx: CallContext, ticket: Ticket, model: ModelEntry, usage: Usage | None) -> None:
        await self.inner.settle(ctx, ticket, model, usage)

    def __getattr__(self, name: str) -> Any:  # anything else the wrapped admission offers
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
