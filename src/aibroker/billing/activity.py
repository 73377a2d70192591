""""Last used" of API keys, organizations' provider keys and providers (seed 000: "Actualizar
último uso del proveedor"), written cheaply.

The request path only sets a dict entry (no I/O). Every AIBROKER_LAST_USED_FLUSH_SECONDS the
process writes what it collected in one transaction: one UPDATE per distinct key, provider
key and provider, however many requests used them, and never moving a time backwards (many
processes flush in any order). Usage of provider keys without a monthly limit is added up
the same way (keys with a limit are counted exactly, per request: billing/byok_budget.py).
A crash loses at most one interval of these times and sums, never money.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from sqlalchemy import bindparam, case, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.kit.clock import utcnow

log = logging.getLogger(__name__)


def month_of(when: dt.datetime) -> str:
    return when.strftime("%Y-%m")


class ActivityRecorder:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, flush_seconds: float) -> None:
        self._sessions = sessions
        self.flush_seconds = flush_seconds
        self.api_keys: dict[str, dt.datetime] = {}
        self.providers: dict[str, dt.datetime] = {}
        self.credentials: dict[str, tuple[dt.datetime, int]] = {}  # id -> (last used, unlimited usage to add)
        self._task: asyncio.Task[None] | None = None

    # -- the request path: memory only ---------------------------------------------------

    def touch_key(self, api_key_id: str) -> None:
        self.api_keys[api_key_id] = utcnow()

    def touch_provider(self, provider: str) -> None:
        self.providers[provider] = utcnow()

    def touch_credential(self, credential_id: str, usage_micros: int = 0) -> None:
        _, pending = self.credentials.get(credential_id, (None, 0))
        self.credentials[credential_id] = (utcnow(), pending + usage_micros)

    # -- the writer ----------------------------------------------------------------------

    async def flush(self) -> int:
        """Write what was collected; returns how many rows were touched."""
        from aibroker.models import ApiKey, ProviderActivity, ProviderCredential

        keys, providers, credentials = self.api_keys, self.providers, self.credentials
        if not (keys or providers or credentials):
            return 0
        self.api_keys, self.providers, self.credentials = {}, {}, {}
        try:
            async with self._sessions() as session:
                if keys:
                    await _touch(session, ApiKey, [{"row_id": k, "at": t} for k, t in keys.items()])
                if credentials:
                    await _touch(session, ProviderCredential, [{"row_id": k, "at": t} for k, (t, _) in credentials.items()])
                    used = [{"row_id": k, "used": u, "month": month_of(t)} for k, (t, u) in credentials.items() if u]
                    if used:
                        await _add_usage(session, ProviderCredential, used)
                if providers:
                    await _touch_providers(session, ProviderActivity, providers)
                await session.commit()
        except Exception:
            log.warning("could not write last-used times; they are kept for the next flush", exc_info=True)
            self._merge_back(keys, providers, credentials)
            return 0
        return len(keys) + len(providers) + len(credentials)

    def _merge_back(self, keys: dict[str, Any], providers: dict[str, Any], credentials: dict[str, tuple[dt.datetime, int]]) -> None:
        for name, value in keys.items():
            self.api_keys.setdefault(name, value)
        for name, value in providers.items():
            self.providers.setdefault(name, value)
        for name, (at, used) in credentials.items():
            later, more = self.credentials.get(name, (at, 0))
            self.credentials[name] = (max(at, later), used + more)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="last-used-writer")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.flush()  # what this process collected is written before it stops


async def _touch(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    column = model.last_used_at
    stmt = (
        update(model.__table__)
        .where(model.__table__.c.id == bindparam("row_id"))
        .where((column.is_(None)) | (column < bindparam("at")))
        .values(last_used_at=bindparam("at"))
    )
    await session.execute(stmt, rows)


async def _add_usage(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    table = model.__table__
    same_month = table.c.usage_month == bindparam("month")
    stmt = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(usage_micros=case((same_month, table.c.usage_micros), else_=0) + bindparam("used"), usage_month=bindparam("month"))
    )
    await session.execute(stmt, rows)


async def _touch_providers(session: AsyncSession, model: Any, providers: dict[str, dt.datetime]) -> None:
    existing = set(await session.scalars(select(model.provider).where(model.provider.in_(list(providers)))))
    if existing:
        table = model.__table__
        stmt = (
            update(table).where(table.c.provider == bindparam("name"))
            .where(table.c.last_used_at < bindparam("at")).values(last_used_at=bindparam("at"))
        )
        await session.execute(stmt, [{"name": p, "at": t} for p, t in providers.items() if p in existing])
    missing = [{"provider": p, "last_used_at": t} for p, t in providers.items() if p not in existing]
    if missing:
        try:
            async with session.begin_nested():
                await session.execute(insert(model), missing)
        except IntegrityError:  # another process inserted them first: its time is as good
            pass
