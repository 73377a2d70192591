"""an index on ledger_entries.payment_ref (partial: only entries that have one), for
refunds and disputes that look up the recharge a payment made

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

HAS_REF = sa.text("payment_ref IS NOT NULL")


def upgrade() -> None:
    op.create_index("ix_ledger_entries_payment_ref", "ledger_entries", ["payment_ref"], unique=False,
                    postgresql_where=HAS_REF, sqlite_where=HAS_REF)


def downgrade() -> None:
    op.drop_index("ix_ledger_entries_payment_ref", table_name="ledger_entries")
