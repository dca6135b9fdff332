"""SQLite on the event loop's thread: a database locked by another process is waited
for with the loop still running, written once it is free, and an error (not a hang)
when it stays locked past the busy timeout."""

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from telportal.app import Platform
from telportal.store import inline_sqlite
from telportal.store.checkpoint import WalCheckpointer
from telportal.store.schema import Skill, Tenant
from telportal.tenancy.roles import Scope


async def _add_skill(platform: Platform, name: str) -> None:
    async with platform.db.write(Scope.cli()) as uow:
        tenant_id = await uow.session.scalar(select(Tenant.id))
        assert tenant_id is not None
        now = uow.clock.now()
        uow.session.add(Skill(tenant_id=tenant_id, name=name, created_at=now, updated_at=now))


async def test_a_write_waits_for_another_process_without_blocking_the_loop(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "telportal.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writing = asyncio.create_task(_add_skill(sqlite_platform, "sales"))
    ticks = 0
    for _ in range(20):  # the loop goes on running while the write waits
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 20 and not writing.done()
    other.rollback()
    other.close()
    await asyncio.wait_for(writing, 5)
    async with sqlite_platform.db.read() as session:
        assert list((await session.execute(select(Skill.name))).scalars()) == ["sales"]


async def test_a_lock_held_past_the_busy_timeout_is_an_error(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_sqlite, "BUSY_TIMEOUT", 0.1)
    other = sqlite3.connect(tmp_path / "telportal.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="database is locked"):
            await asyncio.wait_for(_add_skill(sqlite_platform, "sales"), 5)
    finally:
        other.rollback()
        other.close()
    await _add_skill(sqlite_platform, "support")  # free again: writes go through
    async with sqlite_platform.db.read() as session:
        assert list((await session.execute(select(Skill.name))).scalars()) == ["support"]


async def test_checkpoints_run_off_the_loop_and_never_inside_a_commit(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """The application's connections never checkpoint (a checkpoint syncs the file, and
    a commit on the loop's thread would hold the loop for it); the checkpointer's
    rounds copy the whole log into the database file, and a last one runs at close."""
    db = sqlite_platform.db
    checkpointer = db.checkpointer
    assert checkpointer is not None and checkpointer.rounds >= 0
    async with db.read() as session:
        connection = await session.connection()
        autocheckpoint = (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar()
    assert autocheckpoint == 0
    for i in range(50):
        await _add_skill(sqlite_platform, f"skill-{i}")
    busy, frames, copied = await asyncio.to_thread(checkpointer.checkpoint)
    assert (busy, copied) == (0, frames) and frames > 0  # the whole log, copied
    rounds = checkpointer.rounds
    await db.dispose()
    assert checkpointer.rounds == rounds + 1  # the last round at close


async def test_the_checkpointer_runs_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    with sqlite3.connect(path) as raw:
        raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA wal_autocheckpoint=0")
        raw.execute("CREATE TABLE t (x)")
        raw.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(1000)])
    checkpointer = WalCheckpointer(path, interval=0.01)
    checkpointer.start()
    for _ in range(200):
        if checkpointer.rounds >= 2:
            break
        await asyncio.sleep(0.01)
    await checkpointer.stop()
    assert checkpointer.rounds >= 3  # two on its own, the last one at stop
    raw.close()


async def test_a_write_unit_holds_the_write_lock_from_its_start(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """What a unit of work reads before its first write is read in its transaction: no
    other process can write in between (it is told the database is locked)."""
    other = sqlite3.connect(tmp_path / "telportal.db", timeout=0, isolation_level=None)
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        tenant_id = await uow.session.scalar(select(Tenant.id))  # a read, no write yet
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            other.execute("UPDATE tenants SET name = 'Changed' WHERE id = ?", (tenant_id,))
    other.execute("UPDATE tenants SET name = 'Changed' WHERE id = ?", (tenant_id,))  # free now
    other.close()
