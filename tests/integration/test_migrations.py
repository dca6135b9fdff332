"""Migrations take an empty database to head, and head matches the models exactly."""

from datetime import UTC, datetime
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from telportal.store import migrate
from telportal.store.database import create_engine
from telportal.store.schema import Base


async def test_empty_to_head_matches_models_and_downgrades(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()

        def diff(conn: Connection) -> list[Any]:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(ctx, Base.metadata))

        async with engine.connect() as conn:
            assert await conn.run_sync(diff) == []
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert set(Base.metadata.tables) <= tables

        await migrate.downgrade(engine, "base")
        async with engine.connect() as conn:
            left = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert left <= {"alembic_version"}
        await migrate.upgrade(engine)  # and back up again, as an upgrade after a rollback would
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


async def test_0009_keeps_existing_levels_as_set_by_hand(db_url: str) -> None:
    """Before 0009 every level was set by hand; after it, each is that customer's floor."""
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine, "0008")
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, slug, name, enabled, created_at, updated_at)"
                    " VALUES ('t1', 'acme', 'Acme', true, :at, :at)"
                ),
                {"at": datetime(2026, 1, 1, tzinfo=UTC)},
            )
            for cid, level in (("vip", 4), ("plain", 0)):
                await conn.execute(
                    text(
                        "INSERT INTO customers (id, tenant_id, name, importance, tags, notes,"
                        " attributes, created_at, updated_at)"
                        " VALUES (:id, 't1', '', :level, '[]', '', '{}', :at, :at)"
                    ),
                    {"id": cid, "level": level, "at": datetime(2026, 1, 1, tzinfo=UTC)},
                )
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT id, importance, importance_manual, importance_rule FROM customers"
                    " ORDER BY id"
                )
            )
            assert [tuple(r) for r in rows] == [("plain", 0, None, ""), ("vip", 4, 4, "manual")]
    finally:
        await engine.dispose()
