"""SQLite write units that queue behind one another commit together
(`store/group_commit.py`): each keeps its own outcome, and none returns before its
rows are committed."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.events import DataChanged
from telportal.store import group_commit
from telportal.store.schema import Skill, Tenant
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope
from tests.conftest import make_platform


@pytest.fixture
async def sqlite_platform(
    tmp_path: Path, sqlite_url: str, clock: FakeClock
) -> AsyncIterator[Platform]:
    platform = await make_platform(sqlite_url, tmp_path, clock)
    async with platform.db.write(Scope.cli()) as uow:
        uow.session.add(
            Tenant(
                id="t-1", slug="acme", name="Acme", created_at=clock.now(), updated_at=clock.now()
            )
        )
    yield platform
    await platform.close()


def _skill(uow: UnitOfWork, name: str) -> None:
    now = uow.clock.now()
    uow.session.add(Skill(tenant_id="t-1", name=name, created_at=now, updated_at=now))
    uow.data_changed("t-1", "skill", name, "created", {})


def _stored(path: Path) -> set[str]:
    with sqlite3.connect(path) as raw:  # another connection: committed rows only
        return {name for (name,) in raw.execute("SELECT name FROM skills")}


def _count_commits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    commits: list[int] = []
    real = group_commit.GroupCommitter._commit

    async def counting(self: group_commit.GroupCommitter) -> None:
        commits.append(len(self._units))
        await real(self)

    monkeypatch.setattr(group_commit.GroupCommitter, "_commit", counting)
    return commits


async def test_queued_units_commit_together_and_return_committed(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = _count_commits(monkeypatch)
    seen: list[str] = []
    sqlite_platform.db.on_commit(lambda uow: seen.extend(e.entity_id for e in uow.events))
    events = sqlite_platform.bus.subscribe("")

    async def write(name: str) -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, name)
        assert name in _stored(tmp_path / "telportal.db")  # committed before it returned

    names = [f"skill-{i}" for i in range(12)]
    await asyncio.gather(*(write(n) for n in names))
    assert sum(commits) == 12 and len(commits) < 12  # fewer COMMITs than units
    assert seen == names  # listeners, unit by unit, in order
    published = [events.get_nowait() for _ in names]
    assert [e.entity_id for e in published if isinstance(e, DataChanged)] == names


async def test_a_failing_unit_leaves_the_others_of_its_group(
    sqlite_platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits = _count_commits(monkeypatch)

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
    assert sum(commits) == 2 and len(commits) < 3


async def test_a_transaction_rolled_back_by_sqlite_fails_the_whole_group(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    """SQLite rolls the whole transaction back on some errors: the units that went
    before in the group are then lost, and say so rather than return."""
    second_started = asyncio.Event()

    async def first() -> None:
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            _skill(uow, "sales")
            await second_started.wait()  # the second one is queued behind this one

    async def second() -> None:
        second_started.set()
        async with sqlite_platform.db.write(Scope.cli()) as uow:
            raw: Any = (await (await uow.connection()).get_raw_connection()).driver_connection
            raw.execute("ROLLBACK")  # what SQLite does itself on, say, a full disk
            raise OSError("disk full")

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and "rolled back" in str(results[0])
    assert isinstance(results[1], OSError)
    assert _stored(tmp_path / "telportal.db") == set()
    async with sqlite_platform.db.write(Scope.cli()) as uow:  # the next group works
        _skill(uow, "support")
    assert _stored(tmp_path / "telportal.db") == {"support"}


async def test_a_unit_cancelled_before_its_commit_is_still_committed(
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
    for _ in range(100):  # until the unit is done and waits its turn to commit
        await asyncio.sleep(0)
        groups = sqlite_platform.db._groups
        if groups is not None and groups._units:
            break
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
