"""Migration 0013 on a database that already holds duplicate page ids: the oldest connection
keeps the page, the later ones lose it (and send through /me/messages with their own token);
afterwards the unique index refuses a duplicate, and a channel may have no own app secret."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from aibroker.db import make_sync_engine
from aibroker.migrations.runner import alembic_config
from tests.conftest import DATABASES
from tests.test_migrations import _fresh_database


def _row(table: sa.Table, **values: object) -> dict[str, object]:
    """`values`, plus a placeholder for every other NOT NULL column without a default."""
    for column in table.columns:
        if column.name in values or column.nullable or column.server_default is not None:
            continue
        kind = column.type.python_type if not isinstance(column.type, sa.JSON) else dict
        values[column.name] = {str: "x", int: 0, bool: False, bytes: b"x", dict: {}, dt.datetime: dt.datetime.now(dt.UTC)}[kind]
    return values


@pytest.mark.parametrize("kind", DATABASES)
def test_0013_dedupes_page_ids_then_enforces_them(kind, tmp_path):
    url = _fresh_database(kind, tmp_path)
    config = alembic_config(url)
    command.upgrade(config, "0012")
    engine = make_sync_engine(url, pooled=False)
    try:
        meta = sa.MetaData()
        orgs = sa.Table("organizations", meta, autoload_with=engine)
        channels = sa.Table("channel_connections", meta, autoload_with=engine)
        now = dt.datetime.now(dt.UTC)
        with engine.begin() as conn:
            for org in ("org_a", "org_b"):
                conn.execute(orgs.insert().values(_row(orgs, id=org, name=org, slug=org, created_at=now)))
            for i, (org, account) in enumerate((("org_a", "ig-1"), ("org_b", "ig-2"), ("org_b", "ig-3"))):
                conn.execute(channels.insert().values(_row(
                    channels, id=f"chn_{i}", organization_id=org, channel="instagram", account_key=account, page_id="page-1",
                    status="active", created_at=now + dt.timedelta(seconds=i))))
        command.upgrade(config, "head")
        with engine.connect() as conn:
            pages = dict(conn.execute(sa.text("SELECT id, page_id FROM channel_connections ORDER BY id")).all())
        assert pages == {"chn_0": "page-1", "chn_1": None, "chn_2": None}
        channels = sa.Table("channel_connections", sa.MetaData(), autoload_with=engine)
        assert channels.c.sealed_app_secret.nullable
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(channels.insert().values(_row(
                channels, id="chn_9", organization_id="org_b", channel="instagram", account_key="ig-9", page_id="page-1",
                status="active", created_at=now, sealed_app_secret=None)))
    finally:
        engine.dispose()
