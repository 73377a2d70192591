"""recordings, their chunks, segments and analyses; storage use per organization

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete="CASCADE", name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=120), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("failure_code", sa.String(length=60), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=120), nullable=True),
        sa.Column("media_type", sa.String(length=60), nullable=True),
        sa.Column("codec", sa.String(length=40), nullable=True),
        sa.Column("duration_ms", sa.BigInteger(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("expected_bytes", sa.BigInteger(), nullable=True),
        sa.Column("expected_chunks", sa.Integer(), nullable=True),
        sa.Column("expected_sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=300), nullable=True),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("segments_total", sa.Integer(), nullable=False),
        sa.Column("segments_done", sa.Integer(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("recordings", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    op.create_index("ix_recordings_org_created", "recordings", ["organization_id", "created_at", "id"])
    op.create_index("ix_recordings_org_status", "recordings", ["organization_id", "status"])
    op.create_table(
        "recording_chunks",
        sa.Column("recording_id", sa.String(length=40), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("recording_chunks", "recording_id", "recordings"),
        sa.PrimaryKeyConstraint("recording_id", "index", name=op.f("pk_recording_chunks")),
    )
    op.create_table(
        "recording_segments",
        sa.Column("recording_id", sa.String(length=40), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("start_ms", sa.BigInteger(), nullable=False),
        sa.Column("end_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request_id", sa.String(length=60), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("language", sa.String(length=40), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("refunded_micros", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("recording_segments", "recording_id", "recordings"),
        sa.PrimaryKeyConstraint("recording_id", "index", name=op.f("pk_recording_segments")),
    )
    op.create_table(
        "recording_analyses",
        sa.Column("recording_id", sa.String(length=40), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=False),
        sa.Column("segments", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=40), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sentiment", sa.String(length=20), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("action_items", sa.JSON(), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("cost_micros", sa.BigInteger(), nullable=False),
        sa.Column("request_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("recording_analyses", "recording_id", "recordings"),
        sa.PrimaryKeyConstraint("recording_id", name=op.f("pk_recording_analyses")),
    )
    op.create_index(op.f("ix_recording_analyses_organization_id"), "recording_analyses", ["organization_id"])
    op.create_table(
        "storage_usage",
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("recordings", sa.Integer(), nullable=False),
        _fk("storage_usage", "organization_id", "organizations"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_storage_usage")),
    )


def downgrade() -> None:
    op.drop_table("storage_usage")
    op.drop_index(op.f("ix_recording_analyses_organization_id"), table_name="recording_analyses")
    op.drop_table("recording_analyses")
    op.drop_table("recording_segments")
    op.drop_table("recording_chunks")
    op.drop_index("ix_recordings_org_status", table_name="recordings")
    op.drop_index("ix_recordings_org_created", table_name="recordings")
    op.drop_table("recordings")
