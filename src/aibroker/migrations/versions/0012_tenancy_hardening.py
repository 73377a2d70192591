"""tenancy hardening: api key profiles, organization code lifecycle, scrubbed invitation tokens

- api_keys: `profile`, `allowed_profiles`, `allowed_groups` (the routing authority the
  platform grants a key; nothing else may name a profile or group).
- organization_codes: `expires_at` (NULL: codes issued before this revision never expire).
- events: `sealed_payload` / `key_id` (what only the webhook sees, sealed), and every
  `invitation.created` event stored before loses the accept link that carried the raw token.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("profile", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("allowed_profiles", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("allowed_groups", sa.JSON(), nullable=True))
    with op.batch_alter_table("organization_codes") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("sealed_payload", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("key_id", sa.String(length=16), nullable=True))
    _scrub_invitation_links()


def _scrub_invitation_links() -> None:
    """The accept link held the raw invitation token, readable by anyone with VIEW_USAGE.
    Drop it from every stored event (JSON handled in Python: same code on both databases)."""
    conn = op.get_bind()
    events = sa.table("events", sa.column("id", sa.String), sa.column("type", sa.String), sa.column("payload", sa.JSON))
    rows = conn.execute(sa.select(events.c.id, events.c.payload).where(events.c.type == "invitation.created")).all()
    for event_id, payload in rows:
        data = json.loads(payload) if isinstance(payload, str) else dict(payload or {})
        if "link" not in data and "token" not in data:
            continue
        data.pop("token", None)
        data.pop("link", None)
        data["link_scrubbed"] = True
        conn.execute(sa.update(events).where(events.c.id == event_id).values(payload=data))


def downgrade() -> None:
    # The scrubbed links are gone for good (that was the point); only the columns go back.
    with op.batch_alter_table("events") as batch:
        batch.drop_column("key_id")
        batch.drop_column("sealed_payload")
    with op.batch_alter_table("organization_codes") as batch:
        batch.drop_column("expires_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("allowed_groups")
        batch.drop_column("allowed_profiles")
        batch.drop_column("profile")
