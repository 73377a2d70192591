"""Reads of wallets and their ledger (every query keyed by organization id), and the
response shapes built from them. Money moves only through billing.service.post_entry."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from aibroker.errors import InvalidRequest, NotFound
from aibroker.kit.clock import utcnow
from aibroker.kit.money import format_micros
from aibroker.models import LedgerEntry, Wallet

CSV_PAGE = 1000


class WalletView(BaseModel):
    """A prepaid wallet. Amounts in micro-units (1 USD = 1,000,000) and as decimal strings."""

    organization_id: str
    wallet_id: str
    currency: str = Field(description="ISO currency of every amount (USD).")
    balance_micros: int = Field(description="Sum of the ledger: what the organization has.")
    held_micros: int = Field(description="Reserved for requests in flight: the broker processes' leases on this wallet (idle ones go back within seconds).")
    available_micros: int = Field(description="balance - held: what a new request may reserve.")
    balance: str = Field(description="balance_micros as a decimal string, e.g. '12.500000'.")
    held: str
    available: str
    low_balance_threshold_micros: int = Field(description="Crossing below it emits one wallet.low_balance event (0: never).")
    low_balance_threshold: str
    low_balance: bool = Field(description="True when the balance is below the threshold.")
    updated_at: dt.datetime | None = None


class Transaction(BaseModel):
    """One ledger entry. Entries are never changed or deleted."""

    id: int = Field(description="Increasing per wallet; newer entries have larger ids.")
    created_at: dt.datetime | None
    kind: str = Field(description="recharge | debit | refund | adjustment | grant")
    amount_micros: int = Field(description="Signed: positive adds to the balance, negative takes from it.")
    amount: str
    balance_after_micros: int = Field(description="The wallet balance right after this entry.")
    balance_after: str
    usage_record_id: str | None = Field(default=None, description="For debits: the usage record billed.")
    payment_ref: str | None = Field(default=None, description="External payment reference (Stripe, Mercado Pago ...).")
    idempotency_key: str | None = None
    description: str | None = None


class TransactionPage(BaseModel):
    object: str = "list"
    data: list[Transaction]
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next (older) page; null on the last page.")


CSV_COLUMNS = list(Transaction.model_fields)


def wallet_view(wallet: Wallet) -> WalletView:
    available = wallet.balance_micros - wallet.held_micros
    return WalletView(
        organization_id=wallet.organization_id,
        wallet_id=wallet.id,
        currency=wallet.currency,
        balance_micros=wallet.balance_micros,
        held_micros=wallet.held_micros,
        available_micros=available,
        balance=format_micros(wallet.balance_micros),
        held=format_micros(wallet.held_micros),
        available=format_micros(available),
        low_balance_threshold_micros=wallet.low_balance_threshold_micros,
        low_balance_threshold=format_micros(wallet.low_balance_threshold_micros),
        low_balance=wallet.balance_micros < wallet.low_balance_threshold_micros,
        updated_at=wallet.updated_at,
    )


def transaction(entry: LedgerEntry) -> Transaction:
    return Transaction(
        id=entry.id,
        created_at=entry.created_at,
        kind=entry.kind,
        amount_micros=entry.amount_micros,
        amount=format_micros(entry.amount_micros),
        balance_after_micros=entry.balance_after_micros,
        balance_after=format_micros(entry.balance_after_micros),
        usage_record_id=entry.usage_record_id,
        payment_ref=entry.payment_ref,
        idempotency_key=entry.idempotency_key,
        description=entry.description,
    )


def parse_cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdigit():
        raise InvalidRequest("cursor must be the `next_cursor` of a previous page", param="cursor")
    return int(cursor)


class WalletRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def wallet(self, organization_id: str) -> Wallet:
        wallet = await self.session.scalar(select(Wallet).where(Wallet.organization_id == organization_id))
        if wallet is None:
            raise NotFound("this organization has no wallet")
        return wallet

    async def entries(
        self, organization_id: str, *, limit: int, before_id: int | None = None, kind: str | None = None
    ) -> list[LedgerEntry]:
        """Newest first (ids increase with time per wallet)."""
        query = select(LedgerEntry).where(LedgerEntry.organization_id == organization_id)
        if before_id is not None:
            query = query.where(LedgerEntry.id < before_id)
        if kind:
            query = query.where(LedgerEntry.kind == kind)
        return list(await self.session.scalars(query.order_by(LedgerEntry.id.desc()).limit(limit)))

    async def page(self, organization_id: str, *, limit: int, cursor: str | None, kind: str | None) -> TransactionPage:
        rows = await self.entries(organization_id, limit=limit + 1, before_id=parse_cursor(cursor), kind=kind)
        has_more = len(rows) > limit
        rows = rows[:limit]
        return TransactionPage(
            data=[transaction(r) for r in rows],
            has_more=has_more,
            next_cursor=str(rows[-1].id) if has_more else None,
        )

    async def entry_by_key(self, key: str) -> LedgerEntry | None:
        return await self.session.scalar(select(LedgerEntry).where(LedgerEntry.idempotency_key == key))

    async def set_threshold(self, organization_id: str, threshold_micros: int) -> None:
        """Change the low-balance threshold. Already below the new threshold: no alert now
        (alerts fire on a crossing); the next recharge above it re-arms the alert."""
        # One statement, so it is atomic against the money writer on both databases.
        result = await self.session.execute(
            update(Wallet)
            .where(Wallet.organization_id == organization_id)
            .values(
                low_balance_threshold_micros=threshold_micros,
                low_balance_alerted=Wallet.balance_micros < threshold_micros,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:  # type: ignore[attr-defined]
            raise NotFound("this organization has no wallet")


async def csv_export(
    sessions: async_sessionmaker[AsyncSession], organization_id: str, *, kind: str | None = None
) -> AsyncIterator[bytes]:
    """The whole ledger (newest first) as CSV, streamed page by page in its own sessions."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    before: int | None = None
    while True:
        async with sessions() as session:
            rows = await WalletRepository(session).entries(organization_id, limit=CSV_PAGE, before_id=before, kind=kind)
        for row in rows:
            writer.writerow(_csv_row(transaction(row)))
        yield _take(buffer)
        if len(rows) < CSV_PAGE:
            return
        before = rows[-1].id


def _csv_row(tx: Transaction) -> dict[str, Any]:
    data = tx.model_dump()
    data["created_at"] = tx.created_at.isoformat() if tx.created_at else ""
    return data


def _take(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data
