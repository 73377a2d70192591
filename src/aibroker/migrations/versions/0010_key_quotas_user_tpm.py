"""per-user tokens per minute on plans; daily token and daily / monthly request quotas
on API keys

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite rebuilds the table, PostgreSQL gets plain ALTER TABLE ... ADD COLUMN.
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_tokens_per_minute", sa.Integer(), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_token_quota", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("monthly_request_quota", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("daily_request_quota", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("daily_request_quota")
        batch_op.drop_column("monthly_request_quota")
        batch_op.drop_column("daily_token_quota")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("user_tokens_per_minute")
