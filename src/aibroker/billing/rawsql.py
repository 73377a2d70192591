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
    resolved once, into one generated function per table that turns a row dict into the
    statement's tuple (a loop over ~40 columns per row was the money writer's largest own cost)."""

    def __init__(self, table: Table, raw: RawSql) -> None:
        self.columns = [c for c in table.columns if not (c.primary_key and c.autoincrement is True and _is_integer(c))]
        defaults = [_default_of(c) for c in self.columns]
        processors: list[Processor] = [c.type._cached_bind_processor(raw.dialect) for c in self.columns]  # noqa: SLF001
        names = ", ".join(f'"{c.name}"' for c in self.columns)
        self.sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({raw.marks(len(self.columns))})'
        self.raw = raw
        self.values = _row_builder([c.key for c in self.columns], defaults, processors)

    def rows(self, rows: Iterable[dict[str, Any]]) -> None:
        prepared = [self.values(row) for row in rows]
        if prepared:
            self.raw.cursor.executemany(self.sql, prepared)


def _row_builder(keys: list[str], defaults: list[Any], processors: list[Processor]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """`row -> tuple` for these columns, generated once: a missing key takes its default (called
    when callable), then a value that is not None goes through its bind processor."""
    scope: dict[str, Any] = {"_MISSING": _MISSING}
    lines = ["def build(row):", "    get = row.get"]
    for i, (key, default, process) in enumerate(zip(keys, defaults, processors, strict=True)):
        scope[f"d{i}"], scope[f"p{i}"] = default, process
        lines.append(f"    v{i} = get({key!r}, _MISSING)")
        lines.append(f"    if v{i} is _MISSING: v{i} = {f'd{i}()' if callable(default) else f'd{i}'}")
        if process is not None:
            lines.append(f"    if v{i} is not None: v{i} = p{i}(v{i})")
    lines.append(f"    return ({', '.join(f'v{i}' for i in range(len(keys)))},)")
    exec("\n".join(lines), scope)  # noqa: S102 - our own column names, rendered with repr()
    return scope["build"]


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
