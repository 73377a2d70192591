"""Wallet operations outside the request path: recharges, refunds, adjustments, grants.

In a server they go through the process's MoneyWriter (serialized with the hot path);
from the CLI they run directly in one transaction. Both use the same batch code."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from aibroker.billing.batch import (
    EntryPosted,
    NoWallet,
    PostEntry,
    WouldGoNegative,
    apply_batch,
)
from aibroker.billing.writer import MoneyWriter
from aibroker.errors import Conflict, InvalidRequest, NotFound
from aibroker.kit.money import format_micros

ENTRY_KINDS = ("recharge", "refund", "adjustment", "grant")


def check_entry(op: PostEntry) -> None:
    if op.kind not in ENTRY_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(ENTRY_KINDS)}", param="kind")
    if op.kind in ("recharge", "refund", "grant") and op.amount <= 0:
        raise InvalidRequest(f"a {op.kind} amount must be positive", param="amount")
    if op.amount == 0:
        raise InvalidRequest("an adjustment of zero moves nothing", param="amount")


def _outcome(result: Any) -> EntryPosted:
    if isinstance(result, NoWallet):
        raise NotFound("this organization has no wallet")
    if isinstance(result, WouldGoNegative):
        raise Conflict(
            f"this would take the available balance ({format_micros(result.balance)}) below zero",
            code="would_overdraw",
        )
    if isinstance(result, Exception):
        raise result
    return result


async def post_entry(writer: MoneyWriter, op: PostEntry) -> EntryPosted:
    check_entry(op)
    try:
        result = await writer.submit(op)
    except (NoWallet, WouldGoNegative) as refused:  # the writer raises an operation's refusal
        result = refused
    return _outcome(result)


def post_entry_sync(engine: Engine, op: PostEntry) -> EntryPosted:
    check_entry(op)
    with engine.begin() as conn:
        return _outcome(apply_batch(conn, [op])[0])
