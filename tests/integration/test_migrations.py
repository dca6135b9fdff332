"""Migrations take an empty database to head, and head matches the models exactly."""

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

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
