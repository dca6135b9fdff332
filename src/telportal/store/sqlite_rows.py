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
datetime becomes its text in three C calls instead of SQLAlchemy's two functions and
a format of seven fields, where that gives the same text (`_utc_text`).
"""

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Integer, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.schema import Column

from telportal.store.schema import UTCDateTime

Processor = Callable[[Any], Any] | None


@dataclass(frozen=True, slots=True)
class _Statement:
    """An INSERT or UPDATE: its SQL and how a row's values become its parameters."""

    sql: str
    keys: tuple[str, ...]  # the columns bound, in the statement's order
    processors: tuple[Processor, ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...] = ()  # INSERT: filled when not given
    # The row's values in `keys` order (one C call), and which of them to convert.
    _values: Callable[[Mapping[str, Any]], Any] = field(init=False, repr=False, compare=False)
    _converted: tuple[tuple[int, Callable[[Any], Any]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        get = itemgetter(*self.keys)
        values = get if len(self.keys) > 1 else (lambda row: (get(row),))
        converted = tuple((i, p) for i, p in enumerate(self.processors) if p is not None)
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_converted", converted)

    def params(self, row: Mapping[str, Any]) -> Sequence[Any]:
        if self.defaults:
            row = dict(row)
            for key, default in self.defaults:
                if key not in row:
                    row[key] = default()
        values = self._values(row)
        if not self._converted:
            return tuple(values)
        values = list(values)
        for i, proc in self._converted:
            values[i] = proc(values[i])
        return values


@dataclass(frozen=True, slots=True)
class _Query:
    sql: str
    names: tuple[str, ...]  # bound parameters, in the statement's order
    fixed: Mapping[str, Any]  # the values the statement itself binds (literals)


def _shortened(column: Column[Any], proc: Processor) -> Processor:
    """`proc`, or a quicker conversion that gives the same text where it applies."""
    if proc is not None and isinstance(column.type, JSON):
        return _empty_json(proc)
    if proc is not None and isinstance(column.type, UTCDateTime) and _same_text(proc):
        return _utc_text
    return proc


# Datetimes `_utc_text` must convert as the column's own processor does before it
# stands in for it: another zone, no microseconds, a year below 1000.
_PROBES = (
    datetime(2026, 11, 27, 3, 4, 5, 6789, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8))),
    datetime(999, 1, 2, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
)


def _same_text(proc: Callable[[Any], Any]) -> bool:
    """SQLite's DATETIME in its default storage format: what `_utc_text` gives."""
    return all(proc(p) == _utc_text(p) for p in _PROBES) and proc(None) is None


def _utc_text(value: datetime | None) -> str | None:
    """An aware datetime as SQLite stores a `UTCDateTime`: UTC, without the zone."""
    if value is None:
        return None
    zone = value.tzinfo
    if zone is not UTC:
        if zone is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def _empty_json(proc: Callable[[Any], Any]) -> Processor:
    """Empty lists and objects as the text `proc` gave for them once."""
    empty_list, empty_object = proc([]), proc({})

    def process(value: Any) -> Any:
        # The class first: SQLAlchemy's JSON.NULL and null() refuse to be tested for truth.
        kind = value.__class__
        if (kind is list or kind is dict) and not value:
            return empty_list if kind is list else empty_object
        return proc(value)

    return process


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
        self._inserts: dict[tuple[Table, frozenset[str]], _Statement] = {}
        self._queries: dict[Select[Any], _Query] = {}
        self._updates: dict[tuple[Table, frozenset[str], tuple[str, ...]], _Statement] = {}

    def _processors(self, columns: list[Column[Any]]) -> tuple[Processor, ...]:
        """Each column's own conversion of a value for the driver (None: as it is)."""
        dialect = self._dialect
        return tuple(
            _shortened(c, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns
        )

    def _insert(self, table: Table, given: frozenset[str]) -> _Statement:
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
        prepared = _Statement(
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

    def _update(self, table: Table, given: frozenset[str], match: tuple[str, ...]) -> _Statement:
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
        prepared = _Statement(
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
