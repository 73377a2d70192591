"""Payment rows, written where the webhook processing writes: a wallet recharge's row in the
money writer's transaction with its ledger credit (a `PostEntry.after` hook), a reversal's
update with its reversal entry, and everything an event says in the webhook's own
transaction, with its inbox row. Each write is an idempotent upsert + monotonic merge
(payment_facts.merge), so the same news applied twice, or out of order, changes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from aibroker.billing.batch import EntryPosted
from aibroker.kit.clock import utcnow
from aibroker.kit.ids import new_id
from aibroker.models import Organization, OrganizationCode, Payment, Wallet
from aibroker.payments.payment_facts import Fact, mercadopago_fact, merge, stripe_fact

_T = Payment.__table__
_COLUMNS = [c.name for c in _T.c]


def _insert(conn: Connection) -> Any:
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(_T)


def _find(conn: Connection, fact: Fact) -> dict[str, Any] | None:
    lookups = []
    if fact.external_id:
        lookups.append((_T.c.external_id, fact.external_id))
    if fact.ledger_key:
        lookups.append((_T.c.ledger_key, fact.ledger_key))
    if fact.payment_ref:
        lookups.append((_T.c.payment_ref, fact.payment_ref))
    for column, value in lookups:
        row = conn.execute(select(_T).where(_T.c.provider == fact.provider, column == value).limit(1)).mappings().first()
        if row is not None:
            return dict(row)
    return None


def apply_fact(conn: Connection, fact: Fact, *, code_id: str | None = None, at: dt.datetime | None = None) -> str | None:
    """Create or update the payment `fact` is about; returns its id (None: unknown payment,
    e.g. the refund of a charge this broker never recorded). `at`: when (the backfill's events)."""
    row = _find(conn, fact)
    now = at or utcnow()
    if row is None:
        if not fact.creates() or not conn.scalar(select(Organization.id).where(Organization.id == fact.organization_id)):
            return None
        values = {
            "id": new_id("pay"), "organization_id": fact.organization_id, "provider": fact.provider, "external_id": fact.external_id,
            "kind": fact.kind, "plan": fact.plan, "amount_micros": fact.amount_micros, "currency": fact.currency,
            "status": fact.status, "refunded_micros": 0, "disputed_micros": 0, "dispute_status": None,
            "payment_ref": fact.payment_ref, "ledger_key": fact.ledger_key, "organization_code_id": None,
            "created_at": now, "updated_at": now,
        }
        # Two deliveries of one payment may race here: the unique (provider, external_id) picks one.
        conn.execute(_insert(conn).values(**values).on_conflict_do_nothing(index_elements=["provider", "external_id"]))
        row = _find(conn, fact)
        assert row is not None
    changes = merge(row, fact)
    if code_id and not row.get("organization_code_id"):
        changes["organization_code_id"] = code_id
    if changes:
        conn.execute(update(_T).where(_T.c.id == row["id"]).values(**changes, updated_at=now))
    return str(row["id"])


# -- in the money writer's transaction -------------------------------------------------------


def recharge_hook(*, provider: str, external_id: str, organization_id: str, amount_micros: int, ledger_key: str,
                  payment_ref: str | None, plan: str | None = None) -> Callable[[Connection, EntryPosted], None]:
    """`PostEntry.after` for a recharge credit: its payment row commits with the credit."""

    def after(conn: Connection, _posted: EntryPosted) -> None:
        currency = conn.scalar(select(Wallet.currency).where(Wallet.organization_id == organization_id)) or "USD"
        apply_fact(conn, Fact(provider, external_id=external_id, payment_ref=payment_ref, ledger_key=ledger_key,
                              organization_id=organization_id, kind="recharge", plan=plan, amount_micros=amount_micros,
                              currency=currency, status="succeeded"))

    return after


def reversal_hook(*, ledger_key: str, stream: str, target: int, reinstate: bool) -> Callable[[Connection, EntryPosted], None]:
    """`PostEntry.after` for a reversal entry: the payment it reverses shows it in the same commit."""
    provider = "mercadopago" if stream.startswith("mercadopago") else "stripe"
    fact = Fact(provider, ledger_key=ledger_key)
    source = stream.split(":", 1)[0].rpartition("-")[2]  # stripe-refund:<charge> -> refund
    if source == "refund":
        fact.refunded_micros = target
    elif source == "chargeback":
        fact.dispute_status, fact.disputed_micros = "lost", target
    elif reinstate:
        fact.dispute_status = "won"
    else:
        fact.dispute_status, fact.disputed_micros = "open", target

    def after(conn: Connection, _posted: EntryPosted) -> None:
        apply_fact(conn, fact)

    return after


# -- in the webhook's transaction -------------------------------------------------------------


async def record_event(session: AsyncSession, *, provider: str, event_type: str, obj: dict[str, Any], code: str | None) -> str | None:
    """Take in what a verified, applied provider event says about its payment (status,
    refunds, disputes, the code it issued). Called with the event's inbox row, after every
    money write (SQLite: this session writes last)."""
    fact = stripe_fact(event_type, obj) if provider == "stripe" else mercadopago_fact(obj)
    if fact is None:
        return None
    code_id = None
    if code and fact.status == "succeeded":
        code_id = await session.scalar(select(OrganizationCode.id).where(OrganizationCode.code == code))
    return await session.run_sync(lambda sync: apply_fact(sync.connection(), fact, code_id=code_id))
