"""/v1/files and /v1/batches: uploaded files and batches

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=True),
        _ts("expires_at"),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_files_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index("ix_files_organization_id_id", "files", ["organization_id", "id"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("organization_id", sa.String(length=40), nullable=False),
        sa.Column("endpoint", sa.String(length=40), nullable=False),
        sa.Column("input_file_id", sa.String(length=60), nullable=False),
        sa.Column("completion_window", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("output_file_id", sa.String(length=60), nullable=True),
        sa.Column("error_file_id", sa.String(length=60), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("creator", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("usage", sa.JSON(), nullable=True),
        _ts("expires_at", nullable=False),
        _ts("in_progress_at"),
        _ts("finalizing_at"),
        _ts("completed_at"),
        _ts("failed_at"),
        _ts("expired_at"),
        _ts("cancelling_at"),
        _ts("cancelled_at"),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(["organization_id"], ["organizations.id"], ondelete="CASCADE",
                                name=op.f("fk_batches_organization_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index("ix_batches_organization_id_id", "batches", ["organization_id", "id"])
    op.create_table(
        "batch_lines",
        sa.Column("id", sa.String(length=60), nullable=False),
        sa.Column("batch_id", sa.String(length=60), nullable=False),
        sa.Column("line_index", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(length=512), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(length=60), nullable=True),
        sa.Column("body", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("usage_record_id", sa.String(length=40), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        _ts("created_at", nullable=False),
        sa.ForeignKeyConstraint(["batch_id"], ["batches.id"], ondelete="CASCADE",
                                name=op.f("fk_batch_lines_batch_id_batches")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_lines")),
        sa.UniqueConstraint("batch_id", "line_index", name="uq_batch_lines_batch_id_line_index"),
    )
    with op.batch_alter_table("usage_records") as table:
        table.add_column(sa.Column("batch_id", sa.String(length=60), nullable=True))
        table.add_column(sa.Column("batch_custom_id", sa.String(length=512), nullable=True))
    op.create_index("ix_usage_records_batch", "usage_records", ["batch_id", "batch_custom_id"])
    with op.batch_alter_table("plans") as table:
        table.add_column(sa.Column("batch_discount_bps", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plans") as table:
        table.drop_column("batch_discount_bps")
    op.drop_index("ix_usage_records_batch", table_name="usage_records")
    with op.batch_alter_table("usage_records") as table:
        table.drop_column("batch_custom_id")
        table.drop_column("batch_id")
    op.drop_table("batch_lines")
    op.drop_index("ix_batches_organization_id_id", table_name="batches")
    op.drop_table("batches")
    op.drop_index("ix_files_organization_id_id", table_name="files")
    op.drop_table("files")
