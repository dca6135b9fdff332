"""SQLite on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

aiosqlite runs each connection in a thread and hands every call across: about 1 ms
a statement on a busy loop, where SQLite on local disk answers in microseconds
(decision 0011). These classes have aiosqlite's shape (the methods SQLAlchemy's
dialect awaits) but call `sqlite3` directly, so a statement costs what SQLite costs.

Blocking the loop is bounded: the connection's busy timeout is 0, and a statement
refused because another process holds the database ("database is locked") is retried
after an `asyncio.sleep`, up to `BUSY_TIMEOUT` in all, so the loop keeps running while
the CLI or another writer finishes. A refused statement had no effect, so running it
again is safe; in the legacy transaction mode the dialect uses, a transaction holds no
read snapshot before its first write, so a retry never meets a stale snapshot.
"""

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

BUSY_TIMEOUT = 10.0
_FIRST_BACKOFF = 0.001
_MAX_BACKOFF = 0.05

T = TypeVar("T")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


async def _retrying(fn: Callable[[], T]) -> T:
    """Run `fn`; while SQLite says another connection holds the lock, wait and retry."""
    try:
        return fn()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
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


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> "InlineCursor":
        await _retrying(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> "InlineCursor":
        rows = list(parameters)  # an iterator could not be run twice
        await _retrying(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> "InlineCursor":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()


class _Opening:
    """What `cursor()` returns: awaited or entered, it gives the cursor (as aiosqlite's)."""

    def __init__(self, cursor: InlineCursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self._cursor

    async def __aexit__(self, *_exc: object) -> None:
        await self._cursor.close()

    def __await__(self) -> Any:
        return self.__aenter__().__await__()


class _Now:
    """Stands in for aiosqlite's queue to its thread: the call runs at once."""

    def __init__(self) -> None:
        self.put_nowait = self._run

    @staticmethod
    def _run(item: tuple["asyncio.Future[Any]", Callable[[], Any]]) -> None:
        future, fn = item
        try:
            future.set_result(fn())
        except Exception as exc:  # handed to whoever awaits the future
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._open = True
        self._tx = _Now()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        """Truthy while open (the dialect checks it before commit and rollback)."""
        return self._conn if self._open else None

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._conn.isolation_level = value  # type: ignore[assignment]

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> _Opening:
        return _Opening(InlineCursor(self._conn.cursor()))

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return await InlineCursor(self._conn.cursor()).execute(sql, parameters)

    async def commit(self) -> None:
        await _retrying(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._open:
            self._open = False
            self._conn.close()


def connector(path: str) -> Callable[[], Awaitable[InlineConnection]]:
    """The `async_creator` for `create_async_engine`: inline connections to `path`."""

    async def connect() -> InlineConnection:
        # No busy timeout: SQLite would wait on the loop's thread; `_retrying` waits.
        conn = sqlite3.connect(path, timeout=0, isolation_level="DEFERRED", check_same_thread=False)
        return InlineConnection(conn)

    return connect
