"""accounts completed: the payments table (backfilled from stored provider events)

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_EVENTS = sa.table(
    "payment_events", sa.column("id", sa.String), sa.column("provider", sa.String), sa.column("type", sa.String),
    sa.column("payload", sa.JSON), sa.column("created_at", sa.DateTime(timezone=True)),
)
_CODES = sa.table("organization_codes", sa.column("id", sa.String), sa.column("payment_ref", sa.String))


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("refunded_micros", sa.BigInteger(), nullable=False),
        sa.Column("disputed_micros", sa.BigInteger(), nullable=False),
        sa.Column("dispute_status", sa.String(length=20), nullable=True),
        sa.Column("payment_ref", sa.String(length=200), nullable=True),
        sa.Column("ledger_key", sa.String(length=200), nullable=True),
        sa.Column("organization_code_id", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_payments_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("provider", "external_id", name="uq_payments_provider_external"),
    )
    op.create_index("ix_payments_organization_id_id", "payments", ["organization_id", "id"])
    op.create_index("ix_payments_payment_ref", "payments", ["payment_ref"])
    op.create_index("ix_payments_ledger_key", "payments", ["ledger_key"])
    _backfill(op.get_bind())


def _backfill(conn: sa.Connection) -> None:
    """Replay the stored provider events, oldest first, through the same merge the webhooks
    use: one row per payment with its latest status, refunds and disputes."""
    from aibroker.payments.payment_facts import mercadopago_fact, stripe_fact
    from aibroker.payments.records import apply_fact

    codes = {ref: code_id for code_id, ref in conn.execute(sa.select(_CODES.c.id, _CODES.c.payment_ref)) if ref}
    events = conn.execute(sa.select(_EVENTS.c.provider, _EVENTS.c.type, _EVENTS.c.payload, _EVENTS.c.created_at)
                          .order_by(_EVENTS.c.created_at, _EVENTS.c.id))
    for provider, type_, payload, created_at in list(events):
        obj = (payload or {}).get("object") if isinstance(payload, dict) else None
        if not isinstance(obj, dict):
            continue
        fact = stripe_fact(type_, obj) if provider == "stripe" else mercadopago_fact(obj) if provider == "mercadopago" else None
        if fact is None:
            continue
        code_id = codes.get(str(obj.get("id"))) or codes.get(f"mp:{obj.get('id')}") if fact.status == "succeeded" else None
        apply_fact(conn, fact, code_id=code_id, at=created_at)


def downgrade() -> None:
    op.drop_table("payments")
