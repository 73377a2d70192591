"""create_app(): routers, middleware, and the process's long-lived services (lifespan)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI

from aibroker import __version__, handlers
from aibroker.billing.byok import ProviderKeyStore
from aibroker.billing.leases import LeaseBook
from aibroker.billing.writer import MoneyWriter
from aibroker.catalog.service import Catalog
from aibroker.config import Settings, get_settings
from aibroker.db import Database, is_sqlite, make_sync_engine
from aibroker.gateway.default_router import DefaultRouter
from aibroker.gateway.fastpath import FastPath
from aibroker.gateway.service import Gateway
from aibroker.notifications.deliverer import EventDeliverer
from aibroker.ops import db_errors
from aibroker.ops.middleware import RequestIdMiddleware
from aibroker.providers.pool import ProviderPool
from aibroker.providers.specs import enabled_providers
from aibroker.routing.router import RoutingLimits, RoutingRouter
from aibroker.routing.runtime import RoutingRuntime
from aibroker.tenancy.auth import Authenticator

log = logging.getLogger("aibroker")


@dataclass
class Services:
    settings: Settings
    db: Database
    catalog: Catalog
    pool: ProviderPool
    writer: MoneyWriter
    auth: Authenticator
    gateway: Gateway
    byok: ProviderKeyStore
    plans: Any = None  # limits.plans.PlanBook: every plan, in memory
    limits: Any = None  # limits.admission.PlanAdmission: rate limits, quotas, input rules
    cache: Any = None  # cache.service.ResponseCache
    leases: LeaseBook | None = None  # this process's wallet leases (None: ledger off)
    responses: Any = None  # gateway.formats.responses_store.ResponseStore: stored /v1/responses
    key_guards: Any = None  # tenancy.key_guard.KeyGuards: trusted proxies, signed-request nonces
    activity: Any = None  # billing.activity.ActivityRecorder: last-used times, written coalesced
    platform_keys: Any = None  # billing.platform_keys.PlatformKeys: the platform's stored provider keys
    _lease_upkeep: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        db = Database(settings.database.database_url, settings=settings.database)
        enabled = enabled_providers()
        catalog = Catalog(set(enabled), settings.gateway.aliases)
        async with db.sessions() as session:
            await catalog.load_overrides(session)
        pool = ProviderPool(enabled, settings.gateway)
        catalog.register_discovered(await pool.discover())  # local models (Ollama) the catalog lacks
        billing = settings.billing
        url = settings.database.database_url
        inline = make_sync_engine(url, immediate=True, wait_for_lock=False) if is_sqlite(url) else None
        writer = MoneyWriter(
            make_sync_engine(url, immediate=True, settings=settings.database), hold_ttl_seconds=billing.hold_ttl_seconds, inline_engine=inline,
            lease_ttl_seconds=billing.lease_ttl_seconds,
        )
        writer.start()
        leases = LeaseBook(
            writer, chunk_micros=billing.lease_chunk_micros, idle_seconds=billing.lease_idle_seconds,
            renew_seconds=billing.lease_ttl_seconds / 3,
        ) if billing.ledger_enabled else None
        auth = Authenticator(
            db.sessions, admin_token=settings.server.admin_token, cache_seconds=settings.server.auth_cache_seconds,
            secret_key=settings.server.secret_key, code_rate_limit=settings.accounts.code_rate_limit,
        )
        byok = ProviderKeyStore(db.sessions, secret=settings.server.secret_key, cache_seconds=settings.billing.byok_cache_seconds)
        from aibroker.limits.wiring import start_limits

        plans, limits, cache = await start_limits(settings, db)
        routing = await RoutingRuntime.start(db.sessions, settings.gateway.routing_reload_seconds)
        gateway = Gateway(
            router=RoutingRouter(DefaultRouter(catalog, settings.gateway), routing, catalog), pool=pool, writer=writer,
            gateway_settings=settings.gateway, billing_settings=settings.billing, byok=byok,
            admission=limits, cache=cache, plan_margin=plans.margin_bps, leases=leases,
        )
        gateway.admission = RoutingLimits(gateway.admission, db.sessions)  # the matrix's daily / monthly limits
        from aibroker.ai.splits_book import SplitBook

        gateway.router.splits = await SplitBook.start(db.sessions, settings.gateway.routing_reload_seconds)

        from aibroker.guardrails.engine import Guardrails
        from aibroker.guardrails.policy import GuardrailBook

        gateway.guardrails = Guardrails(
            GuardrailBook(db.sessions, cache_seconds=settings.guard.guardrails_cache_seconds),
            phone_region=settings.limits.pii_phone_region, output_pii_everywhere=settings.guard.pii_redaction_output,
        )
        services = cls(settings, db, catalog, pool, writer, auth, gateway, byok)
        services.plans, services.limits, services.cache = plans, limits, cache
        from aibroker.tenancy.key_guard import KeyGuards, NonceBook, trusted_networks

        services.key_guards = KeyGuards(trusted_networks(settings.guard.trusted_proxies), NonceBook(db.sessions))
        auth.signature_window_seconds = settings.guard.signature_window_seconds
        from aibroker.billing.activity import ActivityRecorder
        from aibroker.billing.platform_keys import PlatformKeys

        services.activity = gateway.activity = ActivityRecorder(db.sessions, flush_seconds=settings.guard.last_used_flush_seconds)
        services.platform_keys = PlatformKeys(db.sessions, pool, catalog, settings.gateway, secret=settings.server.secret_key,
                                              refresh_seconds=settings.guard.platform_keys_cache_seconds)
        await services.platform_keys.refresh()  # stored keys win over the environment from the first request
        services.activity.start()
        services.platform_keys.start()
        if leases is not None:
            services.leases = leases
            services._lease_upkeep = asyncio.create_task(leases.run(), name="lease-upkeep")
        # Everything allocated so far lives as long as the process: keep it out of the
        # garbage collector's scans, which otherwise show up as latency spikes.
        gc.freeze()
        return services

    async def stop(self) -> None:
        if self.platform_keys is not None:
            self.platform_keys.stop()
        if self.activity is not None:
            await self.activity.aclose()
        if self._lease_upkeep is not None:
            self._lease_upkeep.cancel()
        if self.leases is not None:
            await self.leases.close()  # give the wallets their money back before the writer stops
        await self.writer.aclose()
        await self.pool.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        if self.limits is not None:
            await self.limits.counters.aclose()
        await self.db.dispose()
        from aibroker.jobs.database import dispose as dispose_write_sessions

        await dispose_write_sessions(self.db.url)


async def _sweep_holds_forever(services: Services) -> None:
    """Release holds left by crashed processes. Any process may do it: the sweep is exact.
    Often enough that a dead process's lease is back within a lease TTL and half of one."""
    billing = services.settings.billing
    while True:
        await asyncio.sleep(min(billing.sweep_interval_seconds, billing.lease_ttl_seconds / 2))
        try:
            released = await services.writer.sweep()
            if released:
                log.warning("released expired holds", extra={"fields": {"micros": released}})
        except Exception:
            log.exception("hold sweep failed")


async def _reload_catalog_forever(services: Services) -> None:
    """Pick up catalog overrides another process wrote (the admin route reloads its own at once)."""
    every = services.settings.gateway.catalog_reload_seconds
    if every <= 0:
        return
    while True:
        await asyncio.sleep(every)
        try:
            async with services.db.sessions() as session:
                await services.catalog.load_overrides(session)
        except Exception:
            log.exception("catalog reload failed")


def _start_event_deliverer(services: Services) -> asyncio.Task[None] | None:
    """Deliver stored events (low balance ...) to AIBROKER_ALERT_WEBHOOK_URL, when set."""
    billing = services.settings.billing
    if not billing.alert_webhook_url:
        return None
    deliverer = EventDeliverer(services.db.sessions, billing, secret=services.settings.server.secret_key)

    async def run() -> None:
        try:
            await deliverer.run_forever()
        finally:
            await deliverer.aclose()

    return asyncio.create_task(run(), name="event-deliverer")


def _start_alert_scan(services: Services) -> asyncio.Task[None] | None:
    """Spend, error-rate, breaker and key-expiry alerts, every AIBROKER_ALERT_SCAN_SECONDS."""
    every = services.settings.alerts.alert_scan_seconds
    if every <= 0:
        return None
    from aibroker.ai.alert_scan import AlertScanner, scan_forever

    return asyncio.create_task(scan_forever(AlertScanner(services), every), name="alert-scan")


def _start_responses_purge(services: Services) -> asyncio.Task[None]:
    """Purge stored /v1/responses past AIBROKER_RESPONSES_RETENTION_DAYS."""
    from aibroker.gateway.formats.responses_store import ResponseStore, purge_forever

    store = ResponseStore(services.db.sessions, services.settings.gateway.responses_retention_days)
    services.responses = store  # the routes' store: one per process, so its writes batch
    return asyncio.create_task(purge_forever(store), name="responses-purge")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    services = await Services.start(app.state.settings)
    app.state.services = services
    sweeper = asyncio.create_task(_sweep_holds_forever(services))
    catalog_reload = asyncio.create_task(_reload_catalog_forever(services))
    deliverer = _start_event_deliverer(services)
    responses_purge = _start_responses_purge(services)
    alert_scan = _start_alert_scan(services)
    try:
        yield
    finally:
        if alert_scan is not None:
            alert_scan.cancel()
        responses_purge.cancel()
        sweeper.cancel()
        catalog_reload.cancel()
        if deliverer is not None:
            deliverer.cancel()
        await services.stop()


def _routers() -> list[APIRouter]:
    """Every domain's routes. Imported here, late: only app.py knows every domain."""
    from aibroker.ai import alert_endpoints, analytics_endpoints
    from aibroker.ai import conversations_endpoints as ai_conversations
    from aibroker.ai import doors as ai_doors
    from aibroker.ai import doors_catalog as ai_doors_catalog
    from aibroker.ai import doors_media as ai_doors_media
    from aibroker.ai import splits_endpoints as ai_splits
    from aibroker.ai import templates_endpoints as ai_templates
    from aibroker.batches import endpoints as batches
    from aibroker.billing import byok, platform_key_endpoints
    from aibroker.billing import endpoints as wallet
    from aibroker.catalog import admin_endpoints as catalog_admin
    from aibroker.gateway import usage_endpoints
    from aibroker.gateway.formats import anthropic_endpoints, responses_endpoints
    from aibroker.gateway.formats import broker as broker_endpoints
    from aibroker.gateway.formats import completions as completions_format
    from aibroker.gateway.formats import count_tokens as count_tokens_format
    from aibroker.gateway.formats import media as media_endpoints
    from aibroker.gateway.formats import moderations as moderations_format
    from aibroker.gateway.formats import openai_chat as endpoints
    from aibroker.gateway.formats import speech as speech_format
    from aibroker.guardrails import endpoints as guardrails
    from aibroker.jobs import endpoints as jobs
    from aibroker.limits import plan_endpoints, quota_endpoints
    from aibroker.messaging import endpoints as messaging
    from aibroker.messaging import webhook_endpoints
    from aibroker.notifications import endpoints as events
    from aibroker.ops import endpoints as ops
    from aibroker.payments import endpoints as payments
    from aibroker.payments import history_endpoints as payment_history
    from aibroker.recordings import endpoints as recordings
    from aibroker.routing import endpoints as routing
    from aibroker.tenancy import auth_endpoints, members_endpoints, organization_endpoints
    from aibroker.tenancy import endpoints as tenancy
    from aibroker.voice import endpoints as voice

    return [
        endpoints.router, anthropic_endpoints.router, media_endpoints.router, broker_endpoints.router,
        usage_endpoints.router, quota_endpoints.router, tenancy.router, auth_endpoints.router,
        organization_endpoints.router, payments.router, wallet.router, wallet.admin, byok.router, events.router,
        plan_endpoints.router, routing.router, messaging.router, webhook_endpoints.router, jobs.router, ops.router,
        catalog_admin.router, payment_history.router, members_endpoints.router,
        responses_endpoints.router, completions_format.router,
        count_tokens_format.router, moderations_format.router, speech_format.router,
        batches.router,
        ai_templates.router, ai_conversations.router, ai_doors.router, ai_doors_media.router, ai_doors_catalog.router,
        ai_splits.router,
        guardrails.router, platform_key_endpoints.router,
        recordings.router,
        analytics_endpoints.router, alert_endpoints.router,
        voice.router,
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="aibroker", version=__version__, lifespan=lifespan)
    app.state.settings = settings or get_settings()
    handlers.install(app)
    db_errors.install(app)  # a saturated database answers 503 database_busy, not 500
    for router in _routers():
        app.include_router(router)
    from aibroker.web.mount import install as install_console

    install_console(app)  # /console: after handlers.install, whose error handlers it extends for HTML pages
    app.add_middleware(FastPath, routes=_fast_routes(), owner=app)
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, so it wraps the fast path too
    return app


def _fast_routes() -> dict[tuple[str, str], Any]:
    from aibroker.gateway.formats import openai_chat as endpoints
    from aibroker.gateway.formats import responses_endpoints

    return {("POST", "/v1/chat/completions"): endpoints.chat_completions, ("POST", "/v1/embeddings"): endpoints.embeddings,
            ("POST", "/v1/responses"): responses_endpoints.create_response}
