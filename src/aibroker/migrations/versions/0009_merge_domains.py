"""Merge the domain branches (billing, routing, plans and limits, accounts, jobs and
messaging), which were written in parallel from 0001, into one head.

Revision ID: 0009
Revises: 0004, 0005, 0006, 0007, 0008
"""

from __future__ import annotations

revision = "0009"
down_revision = ("0004", "0005", "0006", "0007", "0008")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
