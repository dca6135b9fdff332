"""SQLite write units committed together (decision 0016).

A SQLite commit writes every page the transaction changed to the WAL, one frame and
two system calls a page; a case creation changes about 16 pages, and consecutive
cases change mostly the same ones (the right-hand leaves of each index). Units of
work that arrive together are therefore run in one SQLite transaction, each inside a
SAVEPOINT of its own, and committed once:

- a unit that fails rolls back to its savepoint, and the others are unaffected;
- a unit's caller gets control back only after the COMMIT of its group (persist
  before acknowledge holds as before); the commit listeners run and the events are
  published for every unit of the group, in order, right after that COMMIT;
- if the COMMIT fails, or SQLite rolled the whole transaction back (it does so on
  some errors), every unit of the group fails with that error;
- a unit gives the loop one turn before it commits its group, so that the requests
  ready to run meanwhile join it; the first unit back commits for all; a group is at
  most `GROUP_MAX` units.

All units run on one connection, held out of the engine's pool for the purpose, so
reads (from the pool) never see a group's uncommitted rows.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, AsyncTransaction

from telportal.clock import Clock
from telportal.events import EventBus
from telportal.store import inline_sqlite
from telportal.store.sqlite_rows import SqliteRows
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

GROUP_MAX = 64


class GroupCommitter:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        bus: EventBus,
        rows: SqliteRows,
        listeners: list[Callable[[UnitOfWork], None]],
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._bus = bus
        self._rows = rows
        self._listeners = listeners
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._transaction: AsyncTransaction | None = None
        self._units: list[UnitOfWork] = []
        self._done: asyncio.Future[None] | None = None

    @asynccontextmanager
    async def unit(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        await self._lock.acquire()
        try:
            connection = await self._begin_group()
            assert self._done is not None
            done = self._done
            session = AsyncSession(
                bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
            )
            try:
                async with session.begin():  # SAVEPOINT; RELEASE or ROLLBACK TO on the way out
                    uow = UnitOfWork(session, scope, self._clock, self._rows)
                    yield uow
                    await uow.write_rows()
            except BaseException as exc:
                if not await self._still_in_transaction():
                    await self._abandon(exc)
                raise
            finally:
                await session.close()
            self._units.append(uow)
        finally:
            if self._transaction is not None and len(self._units) >= GROUP_MAX:
                await self._commit()
            self._lock.release()
        try:
            # One turn of the loop before committing: the requests that are ready to
            # run their own units meanwhile join this group (a unit on SQLite never
            # waits for the database, so without this no two would ever meet).
            await asyncio.sleep(0)
            await self._commit_if_open(done)
        except asyncio.CancelledError:
            asyncio.get_running_loop().create_task(self._commit_if_open(done))
            raise
        await done

    async def _commit_if_open(self, done: "asyncio.Future[None]") -> None:
        if self._done is done and not done.done():
            async with self._lock:
                if self._done is done:
                    await self._commit()

    async def _begin_group(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._engine.connect()
        if self._transaction is None:
            transaction = await self._connection.begin()
            raw = await self._raw()
            try:  # the write lock, waited for while another process holds it
                await inline_sqlite.retrying(lambda: sqlite3.Cursor(raw).execute("BEGIN IMMEDIATE"))
            except BaseException:
                await transaction.rollback()
                raise
            self._transaction = transaction
            self._done = asyncio.get_running_loop().create_future()
        return self._connection

    async def _raw(self) -> sqlite3.Connection:
        assert self._connection is not None
        raw = (await self._connection.get_raw_connection()).driver_connection
        assert isinstance(raw, sqlite3.Connection)
        return raw

    async def _still_in_transaction(self) -> bool:
        return self._connection is not None and (await self._raw()).in_transaction

    async def _commit(self) -> None:
        """COMMIT the group; then its listeners and events, unit by unit."""
        units, self._units = self._units, []
        done, transaction = self._done, self._transaction
        self._transaction = self._done = None
        assert done is not None
        assert transaction is not None
        try:
            await transaction.commit()
        except BaseException as exc:
            await self._reset()
            done.set_exception(exc)
            done.exception()  # retrieved: each unit re-raises it from `_wait`
            return
        for uow in units:
            for listener in self._listeners:
                listener(uow)
        done.set_result(None)
        for uow in units:
            for event in uow.events:
                await self._bus.publish(event)

    async def _abandon(self, exc: BaseException) -> None:
        """SQLite rolled the whole transaction back: the group's units are lost."""
        self._units = []
        done, self._done, self._transaction = self._done, None, None
        await self._reset()
        if done is not None and not done.done():
            done.set_exception(RuntimeError(f"the group's transaction was rolled back: {exc}"))
            done.exception()

    async def _reset(self) -> None:
        if self._connection is not None:
            await self._connection.close()  # rolls back whatever is left
            self._connection = None
        self._transaction = None

    async def close(self) -> None:
        async with self._lock:
            if self._units:
                await self._commit()
            await self._reset()
