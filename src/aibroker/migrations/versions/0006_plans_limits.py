"""plans (with the default plans), api key limits, organizations.cache_enabled

Revision ID: 0006
Revises: 0001
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("slug", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("price_micros", sa.BigInteger(), nullable=False),
        sa.Column("max_users", sa.Integer(), nullable=True),
        sa.Column("max_recordings", sa.Integer(), nullable=True),
        sa.Column("max_storage_bytes", sa.BigInteger(), nullable=True),
        sa.Column("requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("requests_per_hour", sa.Integer(), nullable=True),
        sa.Column("tokens_per_minute", sa.Integer(), nullable=True),
        sa.Column("user_requests_per_minute", sa.Integer(), nullable=True),
        sa.Column("user_requests_per_hour", sa.Integer(), nullable=True),
        sa.Column("monthly_token_quota", sa.BigInteger(), nullable=True),
        sa.Column("daily_token_quota", sa.BigInteger(), nullable=True),
        sa.Column("monthly_request_quota", sa.Integer(), nullable=True),
        sa.Column("daily_request_quota", sa.Integer(), nullable=True),
        sa.Column("allowed_models", sa.JSON(), nullable=True),
        sa.Column("margin_bps", sa.Integer(), nullable=True),
        sa.Column("max_prompt_chars", sa.Integer(), nullable=True),
        sa.Column("max_messages", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slug", name=op.f("pk_plans")),
    )
    # Data: the default plans (startup re-ensures any that are missing).
    from aibroker.limits.defaults import DEFAULT_PLANS, full_row

    now = dt.datetime.now(dt.UTC)
    # Only this revision's columns: later revisions add plan fields that full_row also fills.
    rows = [{k: v for k, v in {**full_row(p), "created_at": now, "updated_at": None}.items() if k in plans.c} for p in DEFAULT_PLANS]
    op.bulk_insert(plans, rows)

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rpm", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rph", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tpm", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("monthly_token_quota", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cache_enabled", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("cache_enabled")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("monthly_token_quota")
        batch_op.drop_column("tpm")
        batch_op.drop_column("rph")
        batch_op.drop_column("rpm")
    op.drop_table("plans")
