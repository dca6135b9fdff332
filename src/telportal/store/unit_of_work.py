"""The one write path: changes, their audit entries, revisions and events together."""

import functools
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Insert, Select, Table, Update, bindparam, insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from telportal.clock import Clock
from telportal.events import ConfigChanged, DataChanged, Event
from telportal.events.types import ChangeAction
from telportal.store import inline_sqlite
from telportal.store.schema import AuditEntry, Base, ConfigRevision
from telportal.store.sqlite_rows import SqliteRows
from telportal.tenancy.roles import Scope

PLATFORM_SCOPE = "platform"


@functools.cache
def insert_into(table: Table) -> Insert:
    """One INSERT statement object per table: building it on every write cost more
    than SQLite inserting the row (SQLAlchemy compiles it once either way)."""
    return insert(table)


@functools.cache
def _update_of(table: Table, match: tuple[str, ...]) -> Update:
    """UPDATE `table` WHERE each `match` column equals the parameter `match_<column>`;
    the columns set are the other parameters given at execution."""
    return update(table).where(*(table.c[k] == bindparam(f"match_{k}") for k in match))


class UnitOfWork:
    """One transaction's work. `session` is the ORM's; in a SQLite group
    (`group_commit`) it is made on first use, since a unit that writes only through
    `insert`, `value` and `add_row` (a case creation) needs none: the session's
    making, savepoint and commit cost about a third of such a unit's CPU."""

    def __init__(
        self,
        session: AsyncSession | Callable[[], AsyncSession],
        scope: Scope,
        clock: Clock,
        sqlite_rows: SqliteRows | None = None,
        driver: sqlite3.Connection | None = None,
    ) -> None:
        if isinstance(session, AsyncSession):
            self._session: AsyncSession | None = session
            self._open_session: Callable[[], AsyncSession] | None = None
        else:
            self._session, self._open_session = None, session
        self.scope = scope
        self.clock = clock
        self._sqlite_rows = sqlite_rows
        self._connection: AsyncConnection | None = None
        self._driver = driver
        self.events: list[Event] = []
        # The entities this unit of work audited (see `Database.on_commit`).
        self.audited: set[str] = set()
        self._rows: dict[Table, list[dict[str, Any]]] = {}

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            assert self._open_session is not None
            self._session = self._open_session()
        return self._session

    @property
    def on_sqlite(self) -> bool:
        """This unit writes to SQLite (and `insert`, `update`, `value` go past SQLAlchemy)."""
        return self._sqlite_rows is not None

    @property
    def opened_session(self) -> AsyncSession | None:
        """The session, if this unit has used it."""
        return self._session

    def has_orm_changes(self) -> bool:
        """Objects added, changed or deleted in the session and not yet flushed."""
        session = self._session
        return session is not None and bool(session.new or session.dirty or session.deleted)

    def add_row(self, model: type[Base], **values: Any) -> None:
        """A row that nothing in this transaction reads or refers to (an audit or a
        history entry). Such rows are written just before the commit, after the ORM's
        own changes, in one statement per table: no unit-of-work bookkeeping."""
        table = cast(Table, model.__table__)  # declarative models have tables
        self._rows.setdefault(table, []).append(values)

    async def write_rows(self) -> None:
        """Write the rows of `add_row`; the write path calls this before committing."""
        if not self._rows:
            return
        if self.has_orm_changes():
            await self.session.flush()  # what they may refer to exists first
        rows, self._rows = self._rows, {}
        for table, values in rows.items():
            await self.insert(table, values)

    async def connection(self) -> AsyncConnection:
        """The transaction's connection, for Core statements past the ORM's execute."""
        if self._connection is None:
            self._connection = await self.session.connection()
        return self._connection

    async def begin_immediate(self) -> None:
        """SQLite: take the database's write lock now (waiting, with the loop running,
        while another process holds it), so that what this unit reads before its first
        write is read in its transaction, and no later statement can find the lock
        taken."""
        driver = await self._sqlite()
        if not driver.in_transaction:
            await inline_sqlite.begin_immediate(driver)

    async def _sqlite(self) -> sqlite3.Connection:
        if self._driver is None:
            raw = await (await self.connection()).get_raw_connection()
            self._driver = cast(sqlite3.Connection, raw.driver_connection)
        return self._driver

    async def insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT `rows` (each with the same columns) in this transaction, past the ORM;
        on SQLite straight on the driver's connection (`sqlite_rows`)."""
        if self._sqlite_rows is not None:
            await self._sqlite_rows.insert(await self._sqlite(), table, rows)
        else:
            await (await self.connection()).execute(insert_into(table), list(rows))

    async def update(
        self, table: Table, match: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """UPDATE one row of `table` per item of `rows` (each with the same columns), past
        the ORM: the `match` columns pick the row, the others are set. No `onupdate`
        applies; on SQLite straight on the driver's connection (`sqlite_rows`)."""
        if not rows:
            return
        if self._sqlite_rows is not None:
            await self._sqlite_rows.update(await self._sqlite(), table, match, rows)
        else:
            params = [
                {(f"match_{k}" if k in match else k): v for k, v in row.items()} for row in rows
            ]
            await (await self.connection()).execute(_update_of(table, match), params)

    async def value(self, query: Select[Any], params: Mapping[str, Any]) -> Any:
        """The one value `query` answers (an integer or a string: see `sqlite_rows`)."""
        if self._sqlite_rows is not None:
            return await self._sqlite_rows.value(await self._sqlite(), query, params)
        return (await (await self.connection()).execute(query, dict(params))).scalar()

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def config_changed(
        self,
        tenant_id: str | None,
        entity: str,
        entity_id: str,
        action: ChangeAction,
        changes: dict[str, Any],
    ) -> int:
        """Record a configuration change: audit it, bump the revision, announce it."""
        self.audit(tenant_id, entity, entity_id, action, changes)
        revision = await self.bump_revision(tenant_id)
        self.emit(
            ConfigChanged(
                tenant_id=tenant_id,
                at=self.clock.now(),
                revision=revision,
                entity=entity,
                entity_id=entity_id,
                action=action,
            )
        )
        return revision

    def data_changed(
        self,
        tenant_id: str | None,
        entity: str,
        entity_id: str,
        action: ChangeAction,
        changes: dict[str, Any],
    ) -> None:
        """Record a change to data (a customer, a case): audited and announced, but no
        revision bump, since no site reloads anything for it."""
        self.audit(tenant_id, entity, entity_id, action, changes)
        self.emit(
            DataChanged(
                tenant_id=tenant_id,
                at=self.clock.now(),
                entity=entity,
                entity_id=entity_id,
                action=action,
            )
        )

    def audit(
        self,
        tenant_id: str | None,
        entity: str,
        entity_id: str,
        action: str,
        changes: dict[str, Any],
    ) -> None:
        self.audited.add(entity)
        self.add_row(
            AuditEntry,
            tenant_id=tenant_id,
            at=self.clock.now(),
            actor_kind=self.scope.actor_kind,
            actor_id=self.scope.actor_id,
            actor_name=self.scope.actor_name,
            action=action,
            entity=entity,
            entity_id=entity_id,
            changes=changes,
        )

    async def bump_revision(self, tenant_id: str | None) -> int:
        # One statement, so concurrent writers on PostgreSQL serialise on the row
        # and every change gets its own revision number.
        insert = sqlite_insert if self.on_sqlite else pg_insert
        stmt = insert(ConfigRevision).values(
            scope=tenant_id or PLATFORM_SCOPE, revision=1, updated_at=self.clock.now()
        )
        upsert = stmt.on_conflict_do_update(
            index_elements=[ConfigRevision.scope],
            set_={
                "revision": ConfigRevision.revision + 1,
                "updated_at": stmt.excluded.updated_at,
            },
        ).returning(ConfigRevision.revision)
        result = await self.session.execute(upsert)
        return int(result.scalar_one())
