"""The database seam: one engine, read sessions, and write units of work.

SQLite (the all-in-one default) allows one writer at a time; rather than let
concurrent requests fail with "database is locked", writes in this process
queue on a lock, and other processes (the CLI beside a running server) wait
on SQLite's busy timeout.
"""

import asyncio
from collections.abc import AsyncIterator
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
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

SQLITE_BUSY_TIMEOUT_MS = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


class Database:
    def __init__(self, url: str, clock: Clock, bus: EventBus) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.clock = clock
        self.bus = bus
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def write(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        """A transaction; its events are published only once it has committed."""
        async with self._write_lock or nullcontext(), self._sessions() as session, session.begin():
            uow = UnitOfWork(session, scope, self.clock)
            yield uow
        for evt in uow.events:
            await self.bus.publish(evt)

    async def dispose(self) -> None:
        await self.engine.dispose()
