"""Writing alert events and their e-mail rows exactly once: a deterministic id (kind,
organization, what was crossed and in which period) and an insert that does nothing on
conflict, so any number of processes may scan at once."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.kit.clock import utcnow
from aibroker.models import AlertEmail, Event


def alert_event_id(kind: str, organization_id: str | None, dedup: str) -> str:
    return "eva_" + hashlib.sha256(f"{kind}|{organization_id or '-'}|{dedup}".encode()).hexdigest()[:32]


async def insert_once(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when this call wrote the row."""
    dialect = postgresql if session.bind.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(result.rowcount)


async def emit(session: AsyncSession, kind: str, organization_id: str | None, dedup: str, payload: dict[str, Any]) -> str | None:
    """Record the alert once per (kind, organization, dedup); its id, or None when it existed."""
    event_id = alert_event_id(kind, organization_id, dedup)
    written = await insert_once(session, Event.__table__, {
        "id": event_id, "organization_id": organization_id, "type": kind, "payload": payload,
        "delivery_attempts": 0, "created_at": utcnow(),
    })
    return event_id if written else None


async def add_email(session: AsyncSession, event_id: str, organization_id: str | None, recipients: list[str],
                    status: str, details: dict[str, Any]) -> bool:
    return await insert_once(session, AlertEmail.__table__, {
        "event_id": event_id, "organization_id": organization_id, "status": status, "recipients": recipients,
        "attempts": 0, "details": details, "created_at": utcnow(),
    })
