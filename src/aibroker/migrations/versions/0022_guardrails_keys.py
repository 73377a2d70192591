"""guardrails, request signing, IP allowlists, provider-key lifecycle

- api_keys: `allowed_ips`, `sealed_signing_secret` / `signing_key_id` /
  `signing_window_seconds`, `last_used_at`.
- provider_credentials: `last_used_at`, `expires_at`, `monthly_limit_micros`,
  `usage_month`, `usage_micros`.
- usage_records: `guardrail` (the guardrails' verdict).
- leads: `profile_picture_url`, `profile_fetched_at` (profile enrichment).
- new tables: guardrail_settings, platform_provider_keys, provider_activity,
  signed_request_nonces.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("allowed_ips", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("sealed_signing_secret", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("signing_key_id", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("signing_window_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("provider_credentials") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("monthly_limit_micros", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("usage_month", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("usage_micros", sa.BigInteger(), nullable=False, server_default="0"))
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("guardrail", sa.String(length=120), nullable=True))
    with op.batch_alter_table("leads") as batch:
        batch.add_column(sa.Column("profile_picture_url", sa.Text(), nullable=True))
        batch.add_column(sa.Column("profile_fetched_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "guardrail_settings",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("redact_input_pii", sa.Boolean(), nullable=False),
        sa.Column("redact_output_pii", sa.Boolean(), nullable=False),
        sa.Column("moderate_input", sa.Boolean(), nullable=False),
        sa.Column("moderate_output", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("moderation_model", sa.String(length=200), nullable=True),
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], name="fk_guardrail_settings_organization_id_organizations", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organization_id", name="pk_guardrail_settings"),
    )
    op.create_table(
        "platform_provider_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("display_hint", sa.String(length=16), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_platform_provider_keys"),
        sa.UniqueConstraint("provider", name="uq_platform_provider_keys_provider"),
    )
    op.create_table(
        "provider_activity",
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_provider_activity"),
    )
    op.create_table(
        "signed_request_nonces",
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name="pk_signed_request_nonces"),
    )
    op.create_index("ix_signed_request_nonces_expires_at", "signed_request_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_signed_request_nonces_expires_at", table_name="signed_request_nonces")
    for table in ("signed_request_nonces", "provider_activity", "platform_provider_keys", "guardrail_settings"):
        op.drop_table(table)
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("profile_fetched_at")
        batch.drop_column("profile_picture_url")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("guardrail")
    with op.batch_alter_table("provider_credentials") as batch:
        for column in ("usage_micros", "usage_month", "monthly_limit_micros", "expires_at", "last_used_at"):
            batch.drop_column(column)
    with op.batch_alter_table("api_keys") as batch:
        for column in ("last_used_at", "signing_window_seconds", "signing_key_id", "sealed_signing_secret", "allowed_ips"):
            batch.drop_column(column)
