"""Stored responses (`store: true`), per organization: read back by id, chained by
`previous_response_id`, referenced item by item (`item_reference`), purged when expired."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.errors import InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.models.stored_response import StoredResponse

log = logging.getLogger(__name__)

MAX_CHAIN = 100  # previous_response_id hops replayed; a longer chain is refused, not truncated
SCAN_RECENT = 200  # responses searched for an item id that does not name its response
BATCH = 200  # stored responses per commit, at most


def not_found(response_id: str, param: str | None = None) -> NotFound:
    return NotFound(f"No response with id '{response_id}' is stored for this organization "
                    "(it was never stored, was deleted, or expired).", param=param, code="response_not_found")


class ResponseStore:
    def __init__(self, sessions: Callable[[], AsyncSession], retention_days: int) -> None:
        self.sessions = sessions
        self.retention_days = retention_days
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    def _live(self, organization_id: str) -> Any:
        return (StoredResponse.organization_id == organization_id) & or_(
            StoredResponse.expires_at.is_(None), StoredResponse.expires_at > utcnow())

    async def save(self, organization_id: str, response: dict[str, Any], input_items: list[dict[str, Any]],
                   *, cost_micros: int, request_id: str | None) -> None:
        """Returns once the row is committed (the client's next turn may chain on it at once).
        Rows saved while a commit is running go together in the next one: one commit per
        batch, not per response."""
        now = utcnow()
        row = {
            "id": response["id"], "organization_id": organization_id, "model": response["model"][:200],
            "status": response["status"], "input_items": input_items, "output_items": response["output"],
            "body": response, "usage": response.get("usage"), "cost_micros": cost_micros, "request_id": request_id,
            "previous_response_id": response.get("previous_response_id"), "metadata": response.get("metadata") or {},
            "created_at": now, "expires_at": now + dt.timedelta(days=self.retention_days) if self.retention_days else None,
        }
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="responses-store")
        await done

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:BATCH], self._pending[BATCH:]
            try:
                await self._insert([row for row, _ in batch])
            except Exception:  # one bad row must not lose the others: retry them one by one
                for row, done in batch:
                    try:
                        await self._insert([row])
                    except Exception as exc:  # noqa: BLE001 - handed to the request that saved it
                        _settle(done, exc)
                    else:
                        _settle(done, None)
                continue
            for _, done in batch:
                _settle(done, None)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self.sessions() as session:
            await session.execute(insert(StoredResponse.__table__), rows)
            await session.commit()

    async def get(self, organization_id: str, response_id: str) -> StoredResponse | None:
        async with self.sessions() as session:
            return (await session.execute(
                select(StoredResponse).where(StoredResponse.id == response_id, self._live(organization_id)))).scalar_one_or_none()

    async def require(self, organization_id: str, response_id: str, param: str | None = None) -> StoredResponse:
        row = await self.get(organization_id, response_id)
        if row is None:
            raise not_found(response_id, param)
        return row

    async def delete(self, organization_id: str, response_id: str) -> bool:
        async with self.sessions() as session:
            result = await session.execute(delete(StoredResponse).where(
                StoredResponse.id == response_id, StoredResponse.organization_id == organization_id))
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def chain(self, organization_id: str, response_id: str) -> list[dict[str, Any]]:
        """Every item of the chain ending at `response_id`, oldest first: each response's input
        then its output (instructions are per request, never inherited)."""
        turns: list[list[dict[str, Any]]] = []
        current: str | None = response_id
        while current is not None:
            if len(turns) >= MAX_CHAIN:
                raise InvalidRequest(f"The previous_response_id chain is longer than {MAX_CHAIN} responses.",
                                     param="previous_response_id")
            row = await self.get(organization_id, current)
            if row is None:
                raise not_found(current, "previous_response_id")
            turns.append([*row.input_items, *row.output_items])
            current = row.previous_response_id
        return [item for turn in reversed(turns) for item in turn]

    async def resolve(self, organization_id: str, item_id: str) -> dict[str, Any]:
        """The stored item with this id: found through the response its id names (ids the
        broker made), else among the organization's recent responses (ids a client gave)."""
        token = item_id.split("_")[1] if item_id.count("_") >= 2 else None
        if token:
            row = await self.get(organization_id, f"resp_{token}")
            found = _find(row, item_id) if row is not None else None
            if found is not None:
                return found
        async with self.sessions() as session:
            rows = (await session.execute(select(StoredResponse).where(self._live(organization_id))
                                          .order_by(StoredResponse.id.desc()).limit(SCAN_RECENT))).scalars()
            for row in rows:
                found = _find(row, item_id)
                if found is not None:
                    return found
        raise NotFound(f"No stored item with id '{item_id}' (item_reference) for this organization.",
                       param="input", code="item_not_found")

    async def purge(self) -> int:
        async with self.sessions() as session:
            result = await session.execute(delete(StoredResponse).where(
                StoredResponse.expires_at.is_not(None), StoredResponse.expires_at <= utcnow()))
            await session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():  # the request was cancelled (client gone): nobody waits for it
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


def _find(row: StoredResponse, item_id: str) -> dict[str, Any] | None:
    return next((item for item in [*row.input_items, *row.output_items] if item.get("id") == item_id), None)


async def purge_forever(store: ResponseStore, every_seconds: float = 600.0) -> None:
    """Delete expired responses now and then (any process may: the delete is idempotent)."""
    while True:
        try:
            purged = await store.purge()
            if purged:
                log.info("purged expired responses", extra={"fields": {"count": purged}})
        except Exception:
            log.exception("responses purge failed")
        await asyncio.sleep(every_seconds)
