"""analytics rollups and alerts

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

LATENCY_BINS = 72  # ai/rollup_shape.py
_MEASURES = (
    "requests", "errors", "refused", "failed_attempts", "cache_hits", "input_tokens", "output_tokens",
    "cached_tokens", "cache_hit_input_tokens", "cache_hit_output_tokens", "cache_hit_billed_micros",
    "provider_cost_micros", "billed_cost_micros", "latency_ms_sum", "latency_count",
)


def upgrade() -> None:
    op.create_table(
        "usage_rollups",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("feature", sa.String(length=80), nullable=False),
        sa.Column("user_id", sa.String(length=120), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("local_date", sa.String(length=10), nullable=False),
        *[sa.Column(name, sa.BigInteger(), nullable=False) for name in _MEASURES],
        *[sa.Column(f"lat_{i:02d}", sa.Integer(), nullable=False) for i in range(LATENCY_BINS)],
        sa.PrimaryKeyConstraint(
            "organization_id", "bucket_start", "model", "provider", "feature", "user_id", "api_key_id",
            name=op.f("pk_usage_rollups"),
        ),
    )
    op.create_index("ix_usage_rollups_bucket", "usage_rollups", ["bucket_start"])
    op.create_index("ix_usage_rollups_org_date", "usage_rollups", ["organization_id", "local_date"])
    op.create_table(
        "alert_settings",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("daily_spend_micros", sa.BigInteger(), nullable=True),
        sa.Column("monthly_spend_micros", sa.BigInteger(), nullable=True),
        sa.Column("key_expiry_days", sa.Integer(), nullable=True),
        sa.Column("email_enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_alert_settings")),
    )
    op.create_table(
        "alert_emails",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_alert_emails")),
    )
    op.create_index("ix_alert_emails_organization_id", "alert_emails", ["organization_id"])
    # Usage recorded before this revision is folded into the rollups by 0024, which replaces
    # this table's shape (its rebuild reads the records with the code of that shape).


def downgrade() -> None:
    op.drop_index("ix_alert_emails_organization_id", table_name="alert_emails")
    op.drop_table("alert_emails")
    op.drop_table("alert_settings")
    op.drop_index("ix_usage_rollups_org_date", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_bucket", table_name="usage_rollups")
    op.drop_table("usage_rollups")
