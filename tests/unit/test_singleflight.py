"""Cache misses are single-flight: 50 concurrent requests for the same uncached API key,
organization's provider keys or tenant settings make exactly one database query; the
others await its result. Errors reach every waiter and are not cached. Queries are counted
on a real database (SQLite, and PostgreSQL when configured) with SQLAlchemy's events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import event

from aibroker.billing.byok import ProviderKeyStore, save_key
from aibroker.db import Database
from aibroker.errors import AuthenticationError
from aibroker.kit.singleflight import SingleFlight
from aibroker.limits.tenants import TenantDirectory
from aibroker.tenancy.auth import Authenticator
from aibroker.tenancy.service import create_api_key, create_organization

CONCURRENT = 50
SECRET = "singleflight-test-secret"


class Queries:
    """Statements the engine sent to the database, counted as they go."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: object) -> None:
        self.count += 1

    def during(self) -> _Window:
        return _Window(self)


class _Window:
    def __init__(self, queries: Queries) -> None:
        self.queries = queries

    def __enter__(self) -> _Window:
        self.start = self.queries.count
        return self

    def __exit__(self, *_exc: object) -> None:
        self.made = self.queries.count - self.start


@pytest.fixture
async def tenant(database_url: str) -> AsyncIterator[tuple[Database, dict[str, str]]]:
    db = Database(database_url)
    async with db.sessions() as session:
        org = await create_organization(session, name="Flight")
        issued = await create_api_key(session, organization_id=org.id)
        await save_key(session, organization_id=org.id, provider="openai", api_key="sk-own-key-1234", secret=SECRET)
        await session.commit()
    try:
        yield db, {"org": org.id, "key": issued.key, "key_id": issued.id}
    finally:
        await db.dispose()


async def _together(call: Callable[[], object]) -> list[object]:
    return await asyncio.gather(*(call() for _ in range(CONCURRENT)), return_exceptions=True)  # type: ignore[misc]


async def test_api_key_lookup_misses_make_one_query(tenant):
    db, ids = tenant
    auth = Authenticator(db.sessions, admin_token=None, cache_seconds=30)
    queries = Queries(db)
    with queries.during() as window:
        principals = await _together(lambda: auth.authenticate(f"Bearer {ids['key']}"))
    assert window.made == 1
    assert {p.organization_id for p in principals} == {ids["org"]}  # type: ignore[union-attr]


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_cached(tenant):
    db, _ids = tenant
    auth = Authenticator(db.sessions, admin_token=None, cache_seconds=30)
    queries = Queries(db)
    with queries.during() as window:
        errors = await _together(lambda: auth.authenticate("Bearer abk_not-a-real-key"))
    assert window.made == 1
    assert all(isinstance(e, AuthenticationError) and e.code == "invalid_api_key" for e in errors)
    with queries.during() as again:  # not remembered: the next miss asks the database again
        with pytest.raises(AuthenticationError):
            await auth.authenticate("Bearer abk_not-a-real-key")
    assert again.made == 1


async def test_provider_key_misses_make_one_query(tenant):
    db, ids = tenant
    store = ProviderKeyStore(db.sessions, secret=SECRET, cache_seconds=30)
    queries = Queries(db)
    with queries.during() as window:
        found = await _together(lambda: store.keys_for(ids["org"]))
    assert window.made == 1
    assert found == [{"openai": "sk-own-key-1234"}] * CONCURRENT


async def test_tenant_settings_misses_make_one_query_per_key(tenant):
    db, ids = tenant
    tenants = TenantDirectory(db.sessions, ttl_seconds=30)
    queries = Queries(db)
    with queries.during() as window:
        infos = await _together(lambda: tenants.get(ids["org"], ids["key_id"]))
    assert window.made == 2  # one load: the organization's row, then the key's row
    assert len(set(infos)) == 1 and infos[0].org_created > 0  # type: ignore[union-attr]


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load():
    flights: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()
    loads = 0

    async def load() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return 7

    first = asyncio.ensure_future(flights.run("k", load))
    others = [asyncio.ensure_future(flights.run("k", load)) for _ in range(5)]
    await asyncio.sleep(0)  # let them all join the flight
    first.cancel()
    gate.set()
    assert await asyncio.gather(*others) == [7] * 5
    assert first.cancelled() and loads == 1 and len(flights) == 0


async def test_forget_makes_later_callers_load_afresh():
    flights: SingleFlight[str, int] = SingleFlight()
    gate = asyncio.Event()
    versions = iter([1, 2])

    async def load() -> int:
        value = next(versions)
        await gate.wait()
        return value

    stale = asyncio.ensure_future(flights.run("k", load))
    await asyncio.sleep(0)
    flights.forget("k")  # e.g. the key was revoked while its lookup was in flight
    fresh = asyncio.ensure_future(flights.run("k", load))
    gate.set()
    assert (await stale, await fresh) == (1, 2)
