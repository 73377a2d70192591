"""Quota warnings as `events` rows: once per threshold per period.

"Once" holds across processes because only the increment that crosses a threshold emits
(counters are atomic), and the event id is derived from (scope, period, threshold), so a
repeat after a restart or a counter re-seed is a duplicate key, ignored.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.kit.clock import utcnow
from aibroker.models import Event

log = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
WARNING, EXCEEDED = "quota.warning", "quota.exceeded"


def crossed(before: int, after: int, limit: int) -> list[int]:
    """Thresholds (percent of `limit`) that this change moved the count across."""
    if limit <= 0:
        return []
    return [t for t in THRESHOLDS if before * 100 < t * limit <= after * 100]


class QuotaEvents:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def emit(self, organization_id: str, threshold: int, payload: dict[str, Any]) -> None:
        kind = EXCEEDED if threshold >= 100 else WARNING
        ident = "|".join(str(payload.get(k)) for k in ("scope", "scope_id", "metric", "period", "window")) + f"|{threshold}"
        event_id = "evq_" + hashlib.sha256(ident.encode()).hexdigest()[:32]
        row = Event(
            id=event_id, organization_id=organization_id, type=kind,
            payload={**payload, "threshold_percent": threshold}, delivery_attempts=0, created_at=utcnow(),
        )
        try:
            async with self._sessions() as session:
                session.add(row)
                await session.commit()
        except IntegrityError:
            pass  # already emitted for this period
        except Exception:
            log.exception("could not record %s for %s", kind, organization_id)
