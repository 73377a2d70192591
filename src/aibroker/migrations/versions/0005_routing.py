"""routing matrix: providers, features, feature-providers, plan matrix, group overrides, state

Revision ID: 0005
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "routing_providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("relative_cost", sa.Float(), nullable=False),
        sa.Column("key_env", sa.String(length=80), nullable=True),
        sa.Column("default_model", sa.String(length=200), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_providers")),
        sa.UniqueConstraint("slug", name=op.f("uq_routing_providers_slug")),
    )
    op.create_table(
        "routing_features",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("consensus_strategy", sa.String(length=20), nullable=True),
        sa.Column("consensus_model", sa.String(length=200), nullable=True),
        _created(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_features")),
        sa.UniqueConstraint("slug", name=op.f("uq_routing_features_slug")),
    )
    op.create_table(
        "routing_feature_providers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("feature_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(["feature_id"], ["routing_features.id"], name=op.f("fk_routing_feature_providers_feature_id_routing_features"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["routing_providers.id"], name=op.f("fk_routing_feature_providers_provider_id_routing_providers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_feature_providers")),
        sa.UniqueConstraint("feature_id", "provider_id", "model", name="feature_provider_model"),
    )
    with op.batch_alter_table("routing_feature_providers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_feature_providers_feature_id"), ["feature_id"], unique=False)

    op.create_table(
        "routing_plan_matrix",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("feature_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("profile", sa.String(length=40), nullable=False),
        sa.Column("daily_limit", sa.Integer(), nullable=True),
        sa.Column("monthly_limit", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("origin", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(["feature_id"], ["routing_features.id"], name=op.f("fk_routing_plan_matrix_feature_id_routing_features"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["routing_providers.id"], name=op.f("fk_routing_plan_matrix_provider_id_routing_providers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_plan_matrix")),
        sa.UniqueConstraint("plan", "feature_id", "profile", "provider_id", "model", name="plan_feature_profile_model"),
    )
    with op.batch_alter_table("routing_plan_matrix", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_plan_matrix_plan"), ["plan"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_plan_matrix_feature_id"), ["feature_id"], unique=False)

    op.create_table(
        "routing_group_overrides",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_key", sa.String(length=80), nullable=True),
        sa.Column("user_id", sa.String(length=120), nullable=True),
        sa.Column("base_plan", sa.String(length=40), nullable=True),
        sa.Column("feature_id", sa.String(length=40), nullable=False),
        sa.Column("provider_id", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        _created(),
        sa.ForeignKeyConstraint(["feature_id"], ["routing_features.id"], name=op.f("fk_routing_group_overrides_feature_id_routing_features"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["provider_id"], ["routing_providers.id"], name=op.f("fk_routing_group_overrides_provider_id_routing_providers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_group_overrides")),
    )
    with op.batch_alter_table("routing_group_overrides", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_group_overrides_group_key"), ["group_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_group_overrides_feature_id"), ["feature_id"], unique=False)

    op.create_table(
        "routing_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("plans", sa.JSON(), nullable=False),
        sa.Column("profiles", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_state")),
    )
    # The one state row exists from the start, so every change is a plain UPDATE of it.
    op.bulk_insert(
        sa.table("routing_state", sa.column("id", sa.Integer), sa.column("version", sa.BigInteger),
                 sa.column("plans", sa.JSON), sa.column("profiles", sa.JSON)),
        [{"id": 1, "version": 0, "plans": ["free"], "profiles": ["default"]}],
    )

    # Daily / monthly limits count a feature's requests per organization in a time window.
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index("ix_usage_records_org_feature_created", ["organization_id", "feature", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_org_feature_created")
    op.drop_table("routing_state")
    op.drop_table("routing_group_overrides")
    op.drop_table("routing_plan_matrix")
    op.drop_table("routing_feature_providers")
    op.drop_table("routing_features")
    op.drop_table("routing_providers")
