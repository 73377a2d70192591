"""analytics: four rollup cubes by grain, sharded per writer; usage_records.cache_saved_micros

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

LATENCY_BINS = 72  # ai/rollup_shape.py
_MONEY = ("requests", "errors", "refused", "cache_hits", "cache_saved_micros", "provider_cost_micros", "billed_cost_micros")
_MEASURES = (*_MONEY, "failed_attempts", "input_tokens", "output_tokens", "cached_tokens", "latency_ms_sum", "latency_count")
_OLD_MEASURES = (
    "requests", "errors", "refused", "failed_attempts", "cache_hits", "input_tokens", "output_tokens",
    "cached_tokens", "cache_hit_input_tokens", "cache_hit_output_tokens", "cache_hit_billed_micros",
    "provider_cost_micros", "billed_cost_micros", "latency_ms_sum", "latency_count",
)


def _measures(names: tuple[str, ...], histogram: bool) -> list[sa.Column]:
    columns = [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]
    if histogram:
        columns += [sa.Column(f"lat_{i:02d}", sa.Integer(), nullable=False) for i in range(LATENCY_BINS)]
    return columns


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("cache_saved_micros", sa.BigInteger(), server_default=sa.text("0"), nullable=False))
    op.drop_index("ix_usage_rollups_org_date", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_bucket", table_name="usage_rollups")
    op.drop_table("usage_rollups")
    op.create_table(
        "usage_rollups",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("feature", sa.String(length=80), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("local_date", sa.String(length=10), nullable=False),
        *_measures(_MEASURES, True),
        sa.PrimaryKeyConstraint("organization_id", "bucket_start", "model", "provider", "feature", "shard",
                                name=op.f("pk_usage_rollups")),
    )
    op.create_index("ix_usage_rollups_bucket", "usage_rollups", ["bucket_start"])
    op.create_index("ix_usage_rollups_org_date", "usage_rollups", ["organization_id", "local_date"])
    op.create_table(
        "usage_rollups_users",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("local_date", sa.String(length=10), nullable=False),
        sa.Column("user_id", sa.String(length=120), nullable=False),
        sa.Column("api_key_id", sa.String(length=40), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *_measures(_MEASURES, True),
        sa.PrimaryKeyConstraint("organization_id", "local_date", "user_id", "api_key_id", "shard",
                                name=op.f("pk_usage_rollups_users")),
    )
    op.create_table(
        "usage_rollups_platform",
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=60), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("feature", sa.String(length=80), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        *_measures(_MEASURES, True),
        sa.PrimaryKeyConstraint("bucket_start", "provider", "model", "feature", "shard", name=op.f("pk_usage_rollups_platform")),
    )
    op.create_table(
        "usage_rollups_orgs",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        *_measures(_MONEY, False),
        sa.PrimaryKeyConstraint("organization_id", "day", "shard", name=op.f("pk_usage_rollups_orgs")),
    )
    op.create_index("ix_usage_rollups_orgs_day", "usage_rollups_orgs", ["day"])
    # The records already stored fill the new cubes (a page of records at a time). Hits stored
    # before this revision have no recorded saving: they count as cache hits saving nothing.
    from aibroker.ai.rollup_rebuild import rebuild_rollups

    rebuild_rollups(op.get_bind())


def downgrade() -> None:
    # The earlier rollup table comes back empty: 0021's backfill code is gone with its shape,
    # and the records (kept) are what the analytics of that version would be rebuilt from.
    op.drop_index("ix_usage_rollups_orgs_day", table_name="usage_rollups_orgs")
    op.drop_table("usage_rollups_orgs")
    op.drop_table("usage_rollups_platform")
    op.drop_table("usage_rollups_users")
    op.drop_index("ix_usage_rollups_org_date", table_name="usage_rollups")
    op.drop_index("ix_usage_rollups_bucket", table_name="usage_rollups")
    op.drop_table("usage_rollups")
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
        *_measures(_OLD_MEASURES, True),
        sa.PrimaryKeyConstraint("organization_id", "bucket_start", "model", "provider", "feature", "user_id", "api_key_id",
                                name=op.f("pk_usage_rollups")),
    )
    op.create_index("ix_usage_rollups_bucket", "usage_rollups", ["bucket_start"])
    op.create_index("ix_usage_rollups_org_date", "usage_rollups", ["organization_id", "local_date"])
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("cache_saved_micros")
