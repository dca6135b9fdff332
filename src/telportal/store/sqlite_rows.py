"""Inserts and one-value queries run on SQLite's own connection, inside the unit of
work's transaction, without SQLAlchemy's per-statement machinery.

Measured on the 2-core machine (decision 0015): a one-row INSERT costs SQLite about
12 us, `AsyncConnection.execute` of the same cached Core statement about 135 us, and
`exec_driver_sql` about 64 us. A case creation ran four such statements. Here a
statement is compiled by SQLAlchemy once (per table and set of columns, or per
query), and each execution converts its values with the column types' own bind
processors (so what is stored is byte for byte what SQLAlchemy would store) and hands
them to `sqlite3`. The connection is the one the session's transaction holds, so
these rows commit or roll back with the rest of it.

Only for what needs nothing else from SQLAlchemy: plain INSERTs of complete rows
(Python-side column defaults are applied; server defaults are left to the database)
and queries whose single value needs no type conversion (counts, numbers, ids).

An empty JSON list or object is stored as the text its column's processor gave for
it once: a call record was four `json.dumps` of `[]` (bench/call_records.py). A UTC
datetime's text up to the second is made once a second, where that gives the same
text as SQLAlchemy's processor. Both conversions, and the making of each row's
parameters, are in `store/row_values` (compiled, decision 0022).
"""

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import JSON, Integer, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import Column

from telportal.store.row_values import Processor, Statement, empty_json, utc_text
from telportal.store.schema import UTCDateTime


@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    names: tuple[str, ...]  # bound parameters, in the statement's order
    fixed: Mapping[str, Any]  # the values the statement itself binds (literals)


def _shortened(column: Column[Any], proc: Processor) -> Processor:
    """`proc`, or a quicker conversion that gives the same text where it applies."""
    if proc is not None and isinstance(column.type, JSON):
        return empty_json(proc)
    if proc is not None and isinstance(column.type, UTCDateTime) and _same_text(proc):
        return utc_text
    return proc


# Datetimes `utc_text` must convert as the column's own processor does before it
# stands in for it: another zone, no microseconds, a year below 1000.
_PROBES = (
    datetime(2026, 11, 27, 3, 4, 5, 6789, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8))),
    datetime(999, 1, 2, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
)


def _same_text(proc: Callable[[Any], Any]) -> bool:
    """SQLite's DATETIME in its default storage format: what `utc_text` gives."""
    return all(proc(p) == utc_text(p) for p in _PROBES) and proc(None) is None


def _default_of(column: Column[Any]) -> Callable[[], Any] | None:
    default = column.default
    if default is None:
        return None
    if default.is_callable:
        # SQLAlchemy wraps a zero-argument function into one taking the execution context.
        fn = default.arg  # type: ignore[attr-defined]
        return lambda: fn(None)
    if default.is_scalar:
        value = default.arg  # type: ignore[attr-defined]
        return lambda: value
    raise ValueError(f"column {column.name}: only Python-side defaults are supported here")


def _auto_key(column: Column[Any]) -> bool:
    """An INTEGER PRIMARY KEY that SQLite numbers itself."""
    return (
        bool(column.primary_key)
        and isinstance(column.type, Integer)
        and (column.autoincrement in (True, "auto"))
    )


class SqliteRows:
    """Prepared statements for one database's dialect; lives as long as the Database."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._inserts: dict[tuple[Table, frozenset[str]], Statement] = {}
        self._queries: dict[Select[Any], _Query] = {}
        self._updates: dict[tuple[Table, frozenset[str], tuple[str, ...]], Statement] = {}

    def _processors(self, columns: list[Column[Any]]) -> tuple[Processor, ...]:
        """Each column's own conversion of a value for the driver (None: as it is)."""
        dialect = self._dialect
        return tuple(
            _shortened(c, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns
        )

    def _insert(self, table: Table, given: frozenset[str]) -> Statement:
        key = (table, given)
        prepared = self._inserts.get(key)
        if prepared is not None:
            return prepared
        unknown = given - set(table.columns.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column {sorted(unknown)[0]!r}")
        columns: list[Column[Any]] = []
        defaults: list[tuple[str, Callable[[], Any]]] = []
        for column in table.columns:
            if column.key in given:
                columns.append(column)
                continue
            default = _default_of(column)
            if default is not None:
                columns.append(column)
                defaults.append((column.key, default))
            elif not (_auto_key(column) or column.nullable or column.server_default is not None):
                raise ValueError(f"{table.name}.{column.key} has no value")
        quote = self._dialect.identifier_preparer.quote
        names = ", ".join(quote(c.name) for c in columns)
        marks = ", ".join("?" for _ in columns)
        prepared = Statement(
            # Names from our own schema, quoted by the dialect; values are bound.
            sql=f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})",  # noqa: S608
            keys=tuple(c.key for c in columns),
            processors=self._processors(columns),
            defaults=tuple(defaults),
        )
        self._inserts[key] = prepared
        return prepared

    async def insert(
        self, connection: sqlite3.Connection, table: Table, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """INSERT `rows` (all with the same columns) into `table` on the `sqlite3`
        connection `connection`, in its open transaction. That transaction holds the
        database's write lock since its `BEGIN IMMEDIATE` (`Database.write`), so no
        statement here can find the database locked: a plain `sqlite3.Cursor` runs it."""
        if not rows:
            return
        prepared = self._insert(table, frozenset(rows[0]))
        params = [prepared.params(row) for row in rows]
        if len(params) == 1:
            sqlite3.Cursor(connection).execute(prepared.sql, params[0])
        else:
            sqlite3.Cursor(connection).executemany(prepared.sql, params)

    def _update(self, table: Table, given: frozenset[str], match: tuple[str, ...]) -> Statement:
        key = (table, given, match)
        prepared = self._updates.get(key)
        if prepared is not None:
            return prepared
        unknown = (given | set(match)) - set(table.columns.keys())
        if unknown:
            raise ValueError(f"{table.name} has no column {sorted(unknown)[0]!r}")
        setting = [c for c in table.columns if c.key in given and c.key not in match]
        if not setting:
            raise ValueError(f"{table.name}: no column to set")
        matching = [table.columns[k] for k in match]
        quote = self._dialect.identifier_preparer.quote
        assignments = ", ".join(f"{quote(c.name)} = ?" for c in setting)
        conditions = " AND ".join(f"{quote(c.name)} = ?" for c in matching)
        columns = [*setting, *matching]
        prepared = Statement(
            # Names from our own schema, quoted by the dialect; values are bound.
            sql=f"UPDATE {quote(table.name)} SET {assignments} WHERE {conditions}",  # noqa: S608
            keys=tuple(c.key for c in columns),
            processors=self._processors(columns),
        )
        self._updates[key] = prepared
        return prepared

    async def update(
        self,
        connection: sqlite3.Connection,
        table: Table,
        match: tuple[str, ...],
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """UPDATE `table` once per row of `rows` (all with the same columns): the row's
        `match` columns pick the table's row, its other columns are set. In the open
        transaction, like `insert`; no column's `onupdate` is applied."""
        if not rows:
            return
        prepared = self._update(table, frozenset(rows[0]), match)
        params = [prepared.params(row) for row in rows]
        if len(params) == 1:
            sqlite3.Cursor(connection).execute(prepared.sql, params[0])
        else:
            sqlite3.Cursor(connection).executemany(prepared.sql, params)

    async def value(
        self, connection: sqlite3.Connection, query: Select[Any], params: Mapping[str, Any]
    ) -> Any:
        """The first column of the first row of `query` (None when there is no row).
        The value is as SQLite gives it: for integers and strings, not for datetimes."""
        prepared = self._queries.get(query)
        if prepared is None:
            compiled = query.compile(dialect=self._dialect)
            prepared = _Query(compiled.string, tuple(compiled.positiontup or ()), compiled.params)
            self._queries[query] = prepared
        fixed = prepared.fixed
        args = tuple(params[name] if name in params else fixed[name] for name in prepared.names)
        row = sqlite3.Cursor(connection).execute(prepared.sql, args).fetchone()
        return None if row is None else row[0]
