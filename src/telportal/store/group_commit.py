"""SQLite write units that run in the same moment commit together (decision 0016).

A SQLite commit writes every page its transaction changed to the WAL, one frame
(and two system calls) a page. A case creation changes about 16 pages, and cases
created one after another change mostly the same ones (the right-hand leaves of each
index), so a COMMIT shared by the units that ran meanwhile writes most pages once.

How a group forms and ends:
- the units run one at a time (a lock), each in a SAVEPOINT of one transaction that
  began with `BEGIN IMMEDIATE`, on a connection held out of the engine's pool (so
  reads never see a group's uncommitted rows). A unit's ORM session is made only if
  the unit uses it (`UnitOfWork.session`), in a savepoint inside the unit's;
- a unit that completes does not commit: it schedules a flush, a task of its own,
  which runs two turns of the event loop later: the tasks that were ready to run and
  the requests that arrive meanwhile run their units into the same group;
- the flush COMMITs only when no unit is in the transaction, and never waits for
  one: if a unit is still running (it awaited something other than the database),
  that unit schedules the flush again when it ends. A group is also committed when
  it reaches `GROUP_MAX` units;
- after the COMMIT, the commit listeners run and the events are published for each
  unit of the group, in order, and only then do the units' callers resume (persist
  before acknowledge holds as before).

Failures stay with the unit that caused them: it rolls back to its savepoint and the
group goes on; if it was alone in the group, the transaction is rolled back so that
the write lock is not held while nothing happens. If SQLite rolled the whole
transaction back (it does on a full disk, for instance), the units that went before
in the group are lost, and their callers get an error rather than a return. If the
COMMIT fails, every unit of the group fails with its error. A caller cancelled while
its unit waits for the COMMIT goes away; its rows are committed with the group.

A write unit must only await the database (a SQLite statement here never suspends):
one that awaits something else holds up the commit of the units before it in its
group, and holds up every other writer, as SQLite's single write lock would anyway.
"""

import asyncio
import logging
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

log = logging.getLogger(__name__)

GROUP_MAX = 64
UNIT_SAVEPOINT = "telportal_unit"


class GroupRolledBack(RuntimeError):
    """Another unit's failure made SQLite roll back the group this unit was in."""


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
        self._driver: sqlite3.Connection | None = None  # the held connection's, once asked
        self._pending: list[tuple[UnitOfWork, asyncio.Future[None]]] = []
        # Units entered and not yet out of the lock (waiting for it or holding it).
        self._busy = 0
        self._flush_task: asyncio.Task[None] | None = None
        self._running: Scope | None = None  # the scope of the unit holding the lock
        self.commits = 0  # COMMITs made, for tests and benchmarks
        self.units = 0  # units committed

    @asynccontextmanager
    async def unit(self, scope: Scope) -> AsyncIterator[UnitOfWork]:
        self._busy += 1
        try:
            async with self._lock:
                connection = await self._begin()
                self._running = scope
                raw = await self._raw()
                uow = UnitOfWork(
                    lambda: AsyncSession(
                        bind=connection,
                        join_transaction_mode="create_savepoint",  # one inside the unit's
                        expire_on_commit=False,
                    ),
                    scope,
                    self._clock,
                    self._rows,
                    raw,
                )
                sqlite3.Cursor(raw).execute(f'SAVEPOINT "{UNIT_SAVEPOINT}"')
                try:
                    yield uow
                    await uow.write_rows()
                    if (session := uow.opened_session) is not None:
                        await session.commit()  # flushes, and releases the session's savepoint
                except BaseException as exc:
                    if (session := uow.opened_session) is not None:
                        await session.close()  # back to the session's savepoint
                    if raw.in_transaction:
                        sqlite3.Cursor(raw).execute(f'ROLLBACK TO "{UNIT_SAVEPOINT}"')
                        sqlite3.Cursor(raw).execute(f'RELEASE "{UNIT_SAVEPOINT}"')
                    await self._after_failure(exc)
                    raise
                if (session := uow.opened_session) is not None:
                    await session.close()
                sqlite3.Cursor(raw).execute(f'RELEASE "{UNIT_SAVEPOINT}"')
                committed = asyncio.get_running_loop().create_future()
                self._pending.append((uow, committed))
                if len(self._pending) >= GROUP_MAX:
                    await self._commit()
        finally:
            self._busy -= 1
            self._schedule_flush()
        await committed

    def _schedule_flush(self) -> None:
        if self._pending and self._busy == 0 and self._flush_task is None:
            self._flush_task = asyncio.get_running_loop().create_task(
                self._flush(), name="sqlite-group-commit"
            )

    async def _flush(self) -> None:
        try:
            # One more turn of the loop: the requests whose bytes arrive in it run their
            # units into this group too. Under the case benchmark (16 connections) a
            # group grew from 7 units to 14 on average, and the server's CPU a case fell
            # by about 10% (docs/benchmarks.md).
            await asyncio.sleep(0)
            if not self._pending:
                return
            if self._busy:
                # Units entered since this flush was scheduled; the last of them out
                # schedules it again. If one of them holds the lock, it is in the
                # middle of its work and awaited something other than the database:
                # the units before it in the group wait for it (module docstring).
                if self._lock.locked():
                    log.warning(
                        "a write unit (%s) awaited something other than the database "
                        "while %d units waited for their COMMIT",
                        self._running, len(self._pending),
                    )  # fmt: skip
                return
            async with self._lock:  # free, with nobody waiting (`_busy` is 0)
                if self._pending:
                    await self._commit()
        finally:
            self._flush_task = None

    async def _begin(self) -> AsyncConnection:
        if self._connection is None:
            self._connection = await self._engine.connect()
        if self._transaction is None:
            transaction = await self._connection.begin()
            try:
                await inline_sqlite.begin_immediate(await self._raw())
            except BaseException:
                await transaction.rollback()
                raise
            self._transaction = transaction
        return self._connection

    async def _raw(self) -> sqlite3.Connection:
        """The held connection's `sqlite3` connection: asked of SQLAlchemy once (a
        greenlet round trip), not by every unit."""
        if self._driver is None:
            assert self._connection is not None
            raw = (await self._connection.get_raw_connection()).driver_connection
            assert isinstance(raw, sqlite3.Connection)
            self._driver = raw
        return self._driver

    async def _after_failure(self, exc: BaseException) -> None:
        """A unit failed and rolled back to its savepoint (or SQLite rolled back more)."""
        if self._connection is None or self._transaction is None:
            return
        if not (await self._raw()).in_transaction:
            pending, self._pending = self._pending, []
            await self._reset()
            error = GroupRolledBack(
                f"the transaction was rolled back by a later unit's failure: {exc!r}"
            )
            for _, committed in pending:
                if not committed.done():
                    committed.set_exception(error)
        elif not self._pending:
            # Nothing of the group to keep: end the transaction and its write lock now
            # rather than hold them until the next write.
            transaction, self._transaction = self._transaction, None
            await transaction.rollback()

    async def _commit(self) -> None:
        """COMMIT the group (the caller holds the lock); then, unit by unit, its
        listeners, its caller's return and its events."""
        pending, self._pending = self._pending, []
        transaction, self._transaction = self._transaction, None
        assert transaction is not None
        try:
            await transaction.commit()
        except BaseException as exc:
            await self._reset()
            for _, committed in pending:
                if not committed.done():
                    committed.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        self.units += len(pending)
        for uow, _ in pending:
            for listener in self._listeners:
                try:
                    listener(uow)
                except Exception:
                    # Committed is committed: a listener's bug must not keep the
                    # group's callers waiting.
                    log.exception("commit listener %r failed", listener)
        for _, committed in pending:
            if not committed.done():  # a cancelled caller has gone away
                committed.set_result(None)
        for uow, _ in pending:
            for event in uow.events:
                await self._bus.publish(event)

    async def _reset(self) -> None:
        """Drop the held connection (closing it rolls back whatever is left)."""
        connection, self._connection = self._connection, None
        self._transaction = self._driver = None
        if connection is not None:
            await connection.close()

    async def close(self) -> None:
        if self._flush_task is not None:
            await self._flush_task
        async with self._lock:
            if self._pending and self._transaction is not None:
                await self._commit()
            was_open = self._connection is not None
            await self._reset()
        if was_open:  # once, though the platform may be closed twice
            log.info("SQLite group commit: %d write units in %d COMMITs", self.units, self.commits)
