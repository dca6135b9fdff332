"""SQLite on the event loop's own thread, as a synchronous driver under SQLAlchemy's
asyncio engine.

aiosqlite runs each connection in a thread and hands every call across: about 1 ms
a statement on a busy loop, where SQLite on local disk answers in microseconds
(decision 0011). An asyncio-shaped driver that answers at once (what this module
was first) still pays for the shape: SQLAlchemy's asyncio adapter switches greenlets
twice per driver call, about a fifth of a case creation's CPU (decision 0015).

So this dialect is the plain `sqlite3` one (SQLAlchemy's pysqlite dialect) marked as
asyncio-capable. The asyncio engine runs each operation in one greenlet, as with any
asyncio driver, and the driver calls inside it are ordinary function calls. The only
place a driver call has to wait is a database locked by another process (the CLI,
another server on the same file): the connection's busy timeout is 0, so SQLite
refuses at once rather than sleeping on the loop's thread, and the statement is
retried after an `asyncio.sleep` (awaited from inside the greenlet, so the loop keeps
running), 1 ms doubling to 50 ms, for up to `BUSY_TIMEOUT` in all, and then fails. A
refused statement had no effect. A group of write units starts with `BEGIN IMMEDIATE`
(`group_commit`), so the wait happens before it has read anything and
a retry never meets a stale snapshot; in reads' transactions (the dialect's legacy
mode) a SELECT holds no lock to wait for. What still blocks the loop is SQLite's own
work: microseconds a statement.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_

from telportal.store.json_text import json_text

BUSY_TIMEOUT = 10.0
_FIRST_BACKOFF = 0.001
_MAX_BACKOFF = 0.05
DRIVER = "telportal_inline"

T = TypeVar("T")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def _retrying(fn: Callable[[], T]) -> T:
    """Run `fn`; while SQLite says another connection holds the lock, wait and retry.

    For the driver's own calls, which run inside the asyncio engine's greenlet, where
    `await_` hands the wait to the event loop."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    return await_(_wait_and_retry(fn))


async def retrying(fn: Callable[[], T]) -> T:
    """`_retrying` for a coroutine that calls `sqlite3` itself (`sqlite_rows`)."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
    return await _wait_and_retry(fn)


async def begin_immediate(driver: sqlite3.Connection) -> None:
    """`BEGIN IMMEDIATE` on `driver`: SQLite's write lock taken now, waited for (with
    the loop running) while another process holds it."""
    await retrying(lambda: sqlite3.Cursor(driver).execute("BEGIN IMMEDIATE"))


async def _wait_and_retry(fn: Callable[[], T]) -> T:
    deadline = time.monotonic() + BUSY_TIMEOUT
    backoff = _FIRST_BACKOFF
    while True:
        await asyncio.sleep(backoff)
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() >= deadline:
                raise
        backoff = min(backoff * 2, _MAX_BACKOFF)


class InlineCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> "InlineCursor":
        try:
            super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            _retrying(lambda: super(InlineCursor, self).execute(sql, parameters))
        return self

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> "InlineCursor":
        rows = list(parameters)  # an iterator could not be run twice
        _retrying(lambda: super(InlineCursor, self).executemany(sql, rows))
        return self

    async def _async_soft_close(self) -> None:
        """SQLAlchemy's asyncio results call this on an asyncio driver's cursor before
        handing rows to synchronous code; a `sqlite3` cursor's rows stay readable."""


class InlineConnection(sqlite3.Connection):
    def cursor(self, factory: Any = InlineCursor) -> Any:
        return super().cursor(factory)

    def commit(self) -> None:
        _retrying(super().commit)


class _Ready:
    """An awaitable that is already done: awaiting it never suspends."""

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


_READY = _Ready()


def _driver(connection: Any) -> sqlite3.Cursor:
    """A plain cursor on the `sqlite3` connection under SQLAlchemy's `connection`."""
    return sqlite3.Cursor(connection.connection.driver_connection)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, run by the asyncio engine: every call is synchronous and brief."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True

    # `AsyncConnection.execute` checks that the driver awaited something (to catch a
    # synchronous driver used by mistake): one await of `_READY` a statement (two
    # greenlet switches, where aiosqlite's adapter makes several) satisfies it.
    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        await_(_READY)
        cursor.execute(statement, parameters)

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        await_(_READY)
        cursor.execute(statement)

    def do_executemany(
        self, cursor: Any, statement: Any, parameters: Any, context: Any = None
    ) -> None:
        await_(_READY)
        cursor.executemany(statement, parameters)

    # Savepoints (one per write unit in a group, `group_commit`) straight on the driver:
    # through SQLAlchemy's statement execution each cost about 60 us, in SQLite 2 us.
    def do_savepoint(self, connection: Any, name: str) -> None:
        _driver(connection).execute(f'SAVEPOINT "{name}"')

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        _driver(connection).execute(f'RELEASE SAVEPOINT "{name}"')

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        cursor = _driver(connection)
        if cursor.connection.in_transaction:  # SQLite may have rolled it all back already
            cursor.execute(f'ROLLBACK TO SAVEPOINT "{name}"')

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # As aiosqlite's dialect: a pool that waits for a free connection by awaiting.
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool


registry.register(f"sqlite.{DRIVER}", __name__, InlineSQLiteDialect.__name__)


def connect(path: str) -> InlineConnection:
    # No busy timeout: SQLite would wait on the loop's thread; `_retrying` waits.
    conn = sqlite3.connect(
        path,
        timeout=0,
        isolation_level="DEFERRED",
        check_same_thread=False,
        factory=InlineConnection,
    )
    assert isinstance(conn, InlineConnection)
    return conn


def create_engine(url: URL) -> AsyncEngine:
    """An asyncio engine for the SQLite database `url` names (any sqlite driver)."""
    path = url.database or ":memory:"
    url = url.set(drivername=f"sqlite+{DRIVER}")
    if path == ":memory:":  # one connection (`StaticPool`): there is nothing to pick from
        return create_async_engine(url, creator=lambda: connect(path), json_serializer=json_text)
    return create_async_engine(
        url, creator=lambda: connect(path), pool_use_lifo=True, json_serializer=json_text
    )
