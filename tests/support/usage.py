"""Reading what a test broker recorded."""

from __future__ import annotations

from typing import Any

from aibroker.models import UsageRecord


def usage_rows(broker: Any, org_id: str) -> list[UsageRecord]:
    """The organization's usage records, oldest first, after the money writer has flushed."""
    broker.flush()
    return sorted(broker.rows(UsageRecord, UsageRecord.organization_id == org_id), key=lambda r: r.id)
