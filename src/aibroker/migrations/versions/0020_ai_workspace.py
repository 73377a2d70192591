"""prompt templates, AI conversations, A/B splits, feedback

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                   name=op.f(f"fk_{table}_organization_id_organizations"))


def upgrade() -> None:
    op.create_table(
        "ai_prompt_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=True),
        sa.Column("owner_id", sa.String(length=120), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=80), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("usage_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("ai_prompt_templates"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_prompt_templates")),
    )
    op.create_index("ix_ai_prompt_templates_org_created", "ai_prompt_templates", ["organization_id", "created_at"])
    op.create_index("ix_ai_prompt_templates_public", "ai_prompt_templates", ["is_public"])
    op.create_table(
        "ai_prompt_template_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("template_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=80), nullable=True),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("variables", sa.JSON(), nullable=False),
        sa.Column("author_id", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["template_id"], ["ai_prompt_templates.id"], ondelete="CASCADE",
                                name=op.f("fk_ai_prompt_template_versions_template_id_ai_prompt_templates")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_prompt_template_versions")),
        sa.UniqueConstraint("template_id", "version", name="template_version"),
    )
    op.create_table(
        "ai_conversations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("owner_id", sa.String(length=120), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("system_prompt", sa.Text(), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("ai_conversations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_conversations")),
    )
    op.create_index("ix_ai_conversations_org_owner_updated", "ai_conversations", ["organization_id", "owner_id", "updated_at"])
    op.create_table(
        "ai_conversation_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.String(length=60), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["ai_conversations.id"], ondelete="CASCADE",
                                name=op.f("fk_ai_conversation_messages_conversation_id_ai_conversations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_conversation_messages")),
    )
    op.create_index("ix_ai_conversation_messages_conv_seq", "ai_conversation_messages", ["conversation_id", "seq"], unique=True)
    op.create_table(
        "ai_splits",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("feature", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("arms", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("ai_splits"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_splits")),
        sa.UniqueConstraint("organization_id", "feature", name="split_org_feature"),
    )
    op.create_table(
        "ai_feedback",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("request_id", sa.String(length=60), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("author_id", sa.String(length=120), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _org_fk("ai_feedback"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_feedback")),
        sa.UniqueConstraint("organization_id", "request_id", name="feedback_org_request"),
    )
    # Plain ADD COLUMN on both databases: usage_records is the largest table; never copy it.
    op.add_column("usage_records", sa.Column("ab_split_id", sa.String(length=40), nullable=True))
    op.add_column("usage_records", sa.Column("ab_arm", sa.String(length=80), nullable=True))
    op.create_index("ix_usage_records_ab_split", "usage_records", ["ab_split_id", "ab_arm"],
                    postgresql_where=sa.text("ab_split_id IS NOT NULL"), sqlite_where=sa.text("ab_split_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_usage_records_ab_split", table_name="usage_records")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("ab_arm")
        batch.drop_column("ab_split_id")
    op.drop_table("ai_feedback")
    op.drop_table("ai_splits")
    op.drop_index("ix_ai_conversation_messages_conv_seq", table_name="ai_conversation_messages")
    op.drop_table("ai_conversation_messages")
    op.drop_index("ix_ai_conversations_org_owner_updated", table_name="ai_conversations")
    op.drop_table("ai_conversations")
    op.drop_table("ai_prompt_template_versions")
    op.drop_index("ix_ai_prompt_templates_public", table_name="ai_prompt_templates")
    op.drop_index("ix_ai_prompt_templates_org_created", table_name="ai_prompt_templates")
    op.drop_table("ai_prompt_templates")
