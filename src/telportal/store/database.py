"""The database seam: one engine, read sessions, and write units of work.

SQLite (the all-in-one default) allows one writer at a time; rather than let
concurrent requests fail with "database is locked", writes in this process run one
at a time, the units that run in the same moment share one transaction and one
COMMIT (`group_commit`), that transaction takes SQLite's write lock as it begins
(`BEGIN IMMEDIATE`, so what a unit reads is read in it), and other processes (the
CLI beside a running server) are waited for (`inline_sqlite` retries after a sleep,
so the loop keeps running).
SQLite runs on the event loop's thread (`inline_sqlite`, decision 0011), in WAL
mode with synchronous=NORMAL: a commit survives a crash of the process, and the
last commits before a power loss or an operating-system crash may be lost.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from telportal.clock import Clock
from telportal.events import EventBus
from telportal.store import inline_sqlite
from telportal.store.checkpoint import WalCheckpointer
from telportal.store.group_commit import GroupCommitter
from telportal.store.json_text import json_text
from telportal.store.sqlite_rows import SqliteRows
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

# The log is cut back to this after a checkpoint has emptied it.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # With WAL, NORMAL syncs at checkpoints, not at every commit: durable across a
    # crash of the process, not across a power loss (decision 0011).
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in a worker thread (store/checkpoint.py), not inside a commit on
    # the event loop; without one, SQLite checkpoints when the last connection closes.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ":memory:"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = inline_sqlite.create_engine(parsed)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, json_serializer=json_text)


class Database:
    def __init__(self, url: str, clock: Clock, bus: EventBus) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.clock = clock
        self.bus = bus
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sqlite_rows = SqliteRows(self.engine.dialect) if self.is_sqlite else None
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._commit_listeners: list[Callable[[UnitOfWork], None]] = []
        sqlite_file = _sqlite_file(url)
        # An in-memory database has one connection, which reads share: its writes
        # cannot hold a transaction open across units, so they run one by one.
        self._write_lock = asyncio.Lock() if self.is_sqlite and not sqlite_file else None
        self.groups = (
            GroupCommitter(self.engine, clock, bus, self._sqlite_rows, self._commit_listeners)
            if self._sqlite_rows is not None and sqlite_file
            else None
        )
        self.checkpointer = WalCheckpointer(sqlite_file) if sqlite_file else None

    async def start(self) -> None:
        """Background work of the database itself: SQLite's WAL checkpoints."""
        if self.checkpointer is not None:
            self.checkpointer.start()

    def on_commit(self, listener: Callable[[UnitOfWork], None]) -> None:
        """Call `listener` with each unit of work as soon as its commit returns, with
        no await in between (so before any other task runs), and before its events
        are published."""
        self._commit_listeners.append(listener)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        if not self.is_sqlite:
            async with self._sessions() as session:
                yield session
            return
        # SQLAlchemy's `async with` closes a session in a task of its own, so its
        # connection went back to the pool a loop turn later: reads that came in the
        # same turn (20 calls starting at once) each took another connection, and the
        # ones past the pool's size were opened, set up and closed every time (805 new
        # connections in 2,000 IVR calls). On SQLite the close never waits on I/O, so
        # it runs here, and the connection is back before the caller goes on.
        session = self._sessions()
        try:
            yield session
        finally:
            await session.close()

    @asynccontextmanager
    async def write(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        """A transaction; its events are published only once it has committed. On a
        SQLite file, units that run in the same moment commit together (`group_commit`)."""
        if self.groups is not None:
            async with self.groups.unit(scope) as uow:
                yield uow
            return
        async with self._write_lock or nullcontext(), self._sessions() as session:
            async with session.begin():
                uow = UnitOfWork(session, scope, self.clock, self._sqlite_rows)
                if self._sqlite_rows is not None:
                    await uow.begin_immediate()
                yield uow
                await uow.write_rows()
            # Committed: listeners run before the session closes (which may await).
            for listener in self._commit_listeners:
                listener(uow)
        for evt in uow.events:
            await self.bus.publish(evt)

    async def dispose(self) -> None:
        if self.groups is not None:
            await self.groups.close()
        if self.checkpointer is not None:
            await self.checkpointer.stop()
        await self.engine.dispose()
