"""realtime voice sessions

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "voice_sessions",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=120), nullable=True),
        sa.Column("api_key_id", sa.String(length=40), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("feature", sa.String(length=80), nullable=True),
        sa.Column("voice", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column("tools", sa.JSON(), nullable=False),
        sa.Column("input_audio_format", sa.String(length=20), nullable=False),
        sa.Column("output_audio_format", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("input_audio_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_audio_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("close_code", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(length=200), nullable=True),
        sa.Column("transcript", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_voice_sessions_organization_id_organizations")),
        sa.PrimaryKeyConstraint("organization_id", "id", name=op.f("pk_voice_sessions")),
    )
    op.create_index("ix_voice_sessions_org_status", "voice_sessions", ["organization_id", "status"])
    op.create_index("ix_voice_sessions_org_created", "voice_sessions", ["organization_id", "created_at"])
    op.create_index("ix_voice_sessions_token_hash", "voice_sessions", ["token_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_voice_sessions_token_hash", table_name="voice_sessions")
    op.drop_index("ix_voice_sessions_org_created", table_name="voice_sessions")
    op.drop_index("ix_voice_sessions_org_status", table_name="voice_sessions")
    op.drop_table("voice_sessions")
