"""SQLite write units that run in the same moment commit together
(`store/group_commit.py`): each keeps its own outcome, none returns before its rows
are committed, and a COMMIT never waits for a unit that has not run yet."""

import asyncio
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.events import DataChanged, InProcessBus
from telportal.store import group_commit
from telportal.store.database import Database
from telportal.store.group_commit import GroupCommitter, GroupRolledBack
from telportal.store.schema import Base, Skill, Tenant
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope


def _skill(uow: UnitOfWork, name: str) -> None:
    now = uow.clock.now()
    uow.session.add(Skill(tenant_id="t-1", name=name, created_at=now, updated_at=now))
    uow.data_changed("t-1", "skill", name, "created", {})


def _stored(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:  # another connection: committed rows only
        return {name for (name,) in raw.execute("SELECT name FROM skills")}


def _groups(platform: Platform) -> GroupCommitter:
    assert platform.db.groups is not None
    return platform.db.groups


async def test_units_that_run_together_commit_together_and_return_committed(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    groups = _groups(sqlite_platform)
    commits_before, units_before = groups.commits, groups.units
    seen: list[str] = []
    sqlite_platform.db.on_commit(lambda uow: seen.extend(e.entity_id for e in uow.events))
    events = sqlite_platform.bus.subscribe("")

    async def write(name: str) -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, name)
        assert name in _stored(tmp_path / "telportal.db")  # committed before it returned
        assert name in seen  # and its listeners ran

    names = [f"skill-{i}" for i in range(12)]
    await asyncio.gather(*(write(n) for n in names))
    assert groups.units - units_before == 12
    assert groups.commits - commits_before == 1  # all twelve ran in the same moment
    assert seen == names  # listeners, unit by unit, in order
    published = [events.get_nowait() for _ in names]
    assert [e.entity_id for e in published if isinstance(e, DataChanged)] == names


async def test_a_group_is_committed_when_it_is_full(sqlite_platform: Platform) -> None:
    groups = _groups(sqlite_platform)
    commits_before = groups.commits

    async def write(name: str) -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, name)

    await asyncio.gather(*(write(f"skill-{i}") for i in range(group_commit.GROUP_MAX + 6)))
    assert groups.commits - commits_before == 2  # 64, then the 6 left


async def test_a_failing_unit_leaves_the_others_of_its_group(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    groups = _groups(sqlite_platform)
    commits_before = groups.commits

    async def write(name: str) -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, name)
            await uow.session.flush()  # written, then undone by its savepoint
            if name == "bad":
                raise ValueError("no such skill")

    results = await asyncio.gather(
        write("sales"), write("bad"), write("support"), return_exceptions=True
    )
    assert [type(r) for r in results] == [type(None), ValueError, type(None)]
    assert _stored(tmp_path / "telportal.db") == {"sales", "support"}
    assert groups.commits - commits_before == 1


async def test_a_unit_that_fails_alone_lets_go_of_the_write_lock(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """Nothing of its group is left to commit: the transaction ends at once rather
    than hold SQLite's write lock (against the CLI, say) until the next write."""

    async def failing() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, "bad")
            await uow.session.flush()
            raise ValueError("no such skill")

    with pytest.raises(ValueError, match="no such skill"):
        await failing()
    other = sqlite3.connect(tmp_path / "telportal.db", timeout=0, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # raises "database is locked" if still held
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_transaction_rolled_back_by_sqlite_fails_the_units_before_it(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """SQLite rolls the whole transaction back on some errors: the units that went
    before in the group are then lost, and say so rather than return."""

    async def first() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, "sales")

    async def second() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            raw: Any = (await (await uow.connection()).get_raw_connection()).driver_connection
            raw.execute("ROLLBACK")  # what SQLite does itself on, say, a full disk
            raise OSError("disk full")

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert isinstance(results[0], GroupRolledBack) and "disk full" in str(results[0])
    assert isinstance(results[1], OSError)
    assert _stored(tmp_path / "telportal.db") == set()
    async with sqlite_platform.db.write(Scope.cli()) as uow:  # the next group works
        _skill(uow, "support")
    assert _stored(tmp_path / "telportal.db") == {"support"}


async def test_a_caller_cancelled_while_its_unit_waits_for_the_commit_is_committed(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """Its rows are in the group when the caller goes away (a client that hung up):
    the COMMIT still happens, so the group does not hold SQLite's write lock."""
    wrote = asyncio.Event()

    async def write() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, "sales")
        wrote.set()

    task = asyncio.create_task(write())
    groups = _groups(sqlite_platform)
    for _ in range(100):  # until the unit is done and waits for its COMMIT
        await asyncio.sleep(0)
        if groups._pending:
            break
    assert groups._pending
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not wrote.is_set()
    for _ in range(100):
        if _stored(tmp_path / "telportal.db") == {"sales"}:
            break
        await asyncio.sleep(0.01)
    assert _stored(tmp_path / "telportal.db") == {"sales"}
    async with sqlite_platform.db.read() as session:
        assert list((await session.execute(select(Skill.name))).scalars()) == ["sales"]


async def test_a_unit_that_awaits_something_else_holds_up_only_its_group_and_says_so(
    sqlite_platform: Platform,
    tmp_path: Path,
    held_up_commits: list[logging.LogRecord],
) -> None:
    """The rule is that a write unit awaits nothing but the database. One that breaks
    it delays the COMMIT of the units before it in its group, is named in a warning,
    and the group commits as soon as it is done; no COMMIT waits for it otherwise."""
    release = asyncio.Event()
    order: list[str] = []

    async def quick(name: str) -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, name)
        order.append(name)

    async def slow() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, "slow")
            await release.wait()  # breaks the rule
        order.append("slow")

    first = asyncio.create_task(quick("first"))
    held = asyncio.create_task(slow())
    for _ in range(20):
        await asyncio.sleep(0)
    assert order == []  # "first" waits for the COMMIT, which waits for "slow"
    assert any("awaited something other than the database" in r.getMessage()
               for r in held_up_commits)  # fmt: skip
    held_up_commits.clear()  # expected here; elsewhere the suite fails on it
    release.set()
    await asyncio.gather(first, held)
    assert order == ["first", "slow"]
    assert _stored(tmp_path / "telportal.db") == {"first", "slow"}
    # Once it is over, a unit commits in a moment of its own again.
    await quick("after")
    assert "after" in _stored(tmp_path / "telportal.db")


async def test_an_in_memory_database_writes_one_unit_at_a_time(clock: FakeClock) -> None:
    """`:memory:` has a single connection shared with reads, so no group transaction
    can stay open across units: each unit commits on its own."""
    db = Database("sqlite:///:memory:", clock, InProcessBus())
    try:
        assert db.groups is None
        async with db.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

        async def tenant(n: int) -> None:
            async with db.write(Scope.cli()) as uow:
                now = clock.now()
                uow.session.add(Tenant(id=f"t-{n}", slug=f"t{n}", name=f"T{n}",
                                       created_at=now, updated_at=now))  # fmt: skip

        await asyncio.gather(*(tenant(n) for n in range(5)))
        async with db.read() as session:
            ids = set((await session.execute(select(Tenant.id))).scalars())
        assert ids == {f"t-{n}" for n in range(5)}
    finally:
        await db.dispose()
