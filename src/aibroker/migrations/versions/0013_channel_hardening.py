"""channel hardening: a platform account id belongs to one connection

- `uq_channel_connections_page`: one connection per (channel, page id). Facebook's page id is
  already its account_key (unique since 0008); Instagram connections carry their linked page,
  which could be registered twice. Existing duplicates keep the page on the oldest connection;
  the others lose it and send through `/me/messages` with their own token (what it reaches).
- `sealed_app_secret` may be null: such a channel verifies its webhooks with the platform's
  app secret (META_APP_SECRET / TIKTOK_CLIENT_SECRET), and refuses them when there is none.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

connections = sa.table(
    "channel_connections",
    sa.column("id", sa.String), sa.column("channel", sa.String), sa.column("page_id", sa.String),
    sa.column("created_at", sa.DateTime),
)


def _dedupe_pages() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(connections.c.id, connections.c.channel, connections.c.page_id)
        .where(connections.c.page_id.is_not(None))
        .order_by(connections.c.created_at, connections.c.id)
    ).all()
    seen: set[tuple[str, str]] = set()
    for row_id, channel, page_id in rows:
        if (channel, page_id) in seen:
            bind.execute(sa.update(connections).where(connections.c.id == row_id).values(page_id=None))
        seen.add((channel, page_id))


def upgrade() -> None:
    _dedupe_pages()
    with op.batch_alter_table("channel_connections", schema=None) as batch_op:
        batch_op.alter_column("sealed_app_secret", existing_type=sa.LargeBinary(), nullable=True)
        batch_op.create_index("uq_channel_connections_page", ["channel", "page_id"], unique=True)


def downgrade() -> None:
    # A channel without its own secret cannot go back to a NOT NULL column; deleting it would
    # lose a tenant's connection, so the downgrade stops and says which to fix first.
    missing = op.get_bind().execute(sa.text("SELECT count(*) FROM channel_connections WHERE sealed_app_secret IS NULL")).scalar()
    if missing:
        raise RuntimeError(f"{missing} channel connection(s) have no app secret of their own; give them one before downgrading.")
    with op.batch_alter_table("channel_connections", schema=None) as batch_op:
        batch_op.drop_index("uq_channel_connections_page")
        batch_op.alter_column("sealed_app_secret", existing_type=sa.LargeBinary(), nullable=False)
