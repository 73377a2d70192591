"""The money writer's statements, run on the raw DBAPI cursor.

SQLAlchemy's execution layer costs ~100 µs per statement; a request's hold and settlement
take ~8 statements, which made the ORM-free Core path the largest part of the broker's
own latency. Here each statement is rendered once per dialect (placeholders, FOR UPDATE),
values go through SQLAlchemy's own bind processors (so SQLite stores datetimes exactly as
the ORM reads them back), and rows are inserted with executemany.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table

Processor = Callable[[Any], Any] | None


class RawSql:
    def __init__(self, conn: Connection) -> None:
        dialect = conn.dialect
        self.dialect = dialect
        self.is_sqlite = dialect.name == "sqlite"
        self.placeholder = "?" if dialect.paramstyle == "qmark" else "%s"
        self.lock_clause = "" if self.is_sqlite else " FOR UPDATE"
        self.cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]

    def marks(self, count: int) -> str:
        return ", ".join([self.placeholder] * count)

    def render(self, sql: str) -> str:
        """Statements are written with `?` placeholders (none of ours has a literal `?`)."""
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.cursor.execute(self.render(sql), tuple(params))
        return list(self.cursor.fetchall())

    def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.cursor.executemany(self.render(sql), rows)


class TableInsert:
    """INSERT of whole rows into one table: columns, Python-side defaults and bind processors
    resolved once, so each row costs a tuple build and nothing more."""

    def __init__(self, table: Table, raw: RawSql) -> None:
        self.columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True and _is_integer(c))]
        self.defaults = [_default_of(c) for c in self.columns]
        self.processors: list[Processor] = [c.type._cached_bind_processor(raw.dialect) for c in self.columns]  # noqa: SLF001
        names = ", ".join(f'"{c.name}"' for c in self.columns)
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({raw.marks(len(self.columns))})'
        self.raw = raw

    def rows(self, rows: Iterable[dict[str, Any]]) -> None:
        prepared = []
        for row in rows:
            values = []
            for column, default, process in zip(self.columns, self.defaults, self.processors, strict=True):
                value = row.get(column.key, _MISSING)
                if value is _MISSING:
                    value = default() if callable(default) else default
                values.append(process(value) if process is not None and value is not None else value)
            prepared.append(tuple(values))
        if prepared:
            self.raw.cursor.executemany(self.sql, prepared)


_MISSING = object()


def _is_integer(column: Any) -> bool:
    try:
        return column.type.python_type is int
    except NotImplementedError:
        return False


def _default_of(column: Any) -> Any:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        # SQLAlchemy wraps Python callables to take an execution context; ours ignore it.
        return lambda: default.arg(None)
    return default.arg


def processor(column: Any, raw: RawSql) -> Processor:
    return column.type._cached_bind_processor(raw.dialect)  # noqa: SLF001
