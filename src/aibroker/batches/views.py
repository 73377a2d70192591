"""The File and Batch objects and list envelopes, in OpenAI's shapes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from aibroker.models import Batch, StoredFile

TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def file_object(row: StoredFile) -> dict[str, Any]:
    return {
        "id": row.id, "object": "file", "bytes": row.bytes, "created_at": epoch(row.created_at),
        "expires_at": epoch(row.expires_at), "filename": row.filename, "purpose": row.purpose,
        "status": "processed", "status_details": None,
    }


def batch_object(row: Batch, counts: tuple[int, int] | None = None) -> dict[str, Any]:
    """`counts`: (completed, failed) counted from the lines now; a terminal batch keeps its own."""
    completed, failed = (row.completed, row.failed) if counts is None or row.status in TERMINAL else counts
    return {
        "id": row.id, "object": "batch", "endpoint": row.endpoint, "model": row.model,
        "input_file_id": row.input_file_id, "completion_window": row.completion_window, "status": row.status,
        "output_file_id": row.output_file_id, "error_file_id": row.error_file_id, "errors": row.errors,
        "created_at": epoch(row.created_at), "in_progress_at": epoch(row.in_progress_at),
        "expires_at": epoch(row.expires_at), "finalizing_at": epoch(row.finalizing_at),
        "completed_at": epoch(row.completed_at), "failed_at": epoch(row.failed_at),
        "expired_at": epoch(row.expired_at), "cancelling_at": epoch(row.cancelling_at),
        "cancelled_at": epoch(row.cancelled_at),
        "request_counts": {"total": row.total, "completed": completed, "failed": failed},
        "usage": row.usage, "metadata": row.metadata_,
    }


def page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    return {
        "object": "list", "data": data, "has_more": has_more,
        "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
    }
