"""The one write path: changes, their audit entries, revisions and events together."""

import functools
from typing import Any, cast

from sqlalchemy import Insert, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.clock import Clock
from telportal.events import ConfigChanged, DataChanged, Event
from telportal.events.types import ChangeAction
from telportal.store.schema import AuditEntry, Base, ConfigRevision
from telportal.tenancy.roles import Scope

PLATFORM_SCOPE = "platform"


@functools.cache
def insert_into(table: Table) -> Insert:
    """One INSERT statement object per table: building it on every write cost more
    than SQLite inserting the row (SQLAlchemy compiles it once either way)."""
    return insert(table)


class UnitOfWork:
    def __init__(self, session: AsyncSession, scope: Scope, clock: Clock) -> None:
        self.session = session
        self.scope = scope
        self.clock = clock
        self.events: list[Event] = []
        # The entities this unit of work audited (see `Database.on_commit`).
        self.audited: set[str] = set()
        self._rows: dict[Table, list[dict[str, Any]]] = {}

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
        await self.session.flush()  # what they may refer to exists first
        rows, self._rows = self._rows, {}
        connection = await self.session.connection()  # Core: past the ORM's execute
        for table, values in rows.items():
            await connection.execute(insert_into(table), values)

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
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
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
