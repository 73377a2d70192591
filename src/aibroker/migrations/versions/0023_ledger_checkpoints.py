"""verify-ledger checkpoints: audited totals so a run verifies only what came after

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("through_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("usage_through_id", sa.String(length=40), nullable=False),
        sa.Column("entries", sa.BigInteger(), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_table(
        "ledger_checkpoint_wallets",
        sa.Column("wallet_id", sa.String(length=40), nullable=False),
        sa.Column("sum_micros", sa.BigInteger(), nullable=False),
        sa.Column("last_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("last_balance_after_micros", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_ledger_checkpoint_wallets_wallet_id_wallets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("wallet_id", name=op.f("pk_ledger_checkpoint_wallets")),
    )


def downgrade() -> None:
    op.drop_table("ledger_checkpoint_wallets")
    op.drop_table("ledger_checkpoints")
