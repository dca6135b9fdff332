"""Rows the unit of work writes past the ORM (`UnitOfWork.insert` and `value`): on
SQLite straight on the driver's connection (`store/sqlite_rows.py`), elsewhere by
Core. What is stored is what SQLAlchemy stores; the rows belong to the transaction."""

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import JSON, Table, bindparam, event, func, insert, select

from telportal.app import Platform
from telportal.store.row_values import Statement
from telportal.store.schema import AuditEntry, Skill, Tenant
from telportal.tenancy.roles import Scope

AUDIT = cast(Table, AuditEntry.__table__)
TENANTS = cast(Table, Tenant.__table__)
SKILLS_OF = select(func.count()).where(Skill.tenant_id == bindparam("tenant_id"))


def _audit(at: datetime, changes: dict[str, Any]) -> dict[str, Any]:
    return dict(
        tenant_id=None, at=at, actor_kind="user", actor_id=None, actor_name="zoë",
        action="created", entity="case", entity_id="c-1", changes=changes,
    )  # fmt: skip


async def test_inserted_rows_are_stored_as_sqlalchemy_stores_them(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    at = datetime(2026, 11, 26, 7, 5, 9, 123456, tzinfo=UTC)
    changes = {"subject": "Ünïcode ✓", "n": 3, "none": None, "list": [1, "二"]}
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        await uow.insert(AUDIT, [_audit(at, changes)])  # the driver's connection
        await (await uow.connection()).execute(insert(AUDIT), _audit(at, changes))  # Core
    with sqlite3.connect(tmp_path / "telportal.db") as raw:
        rows = raw.execute(
            "SELECT id, tenant_id, at, actor_kind, actor_id, actor_name, action, entity, "
            "entity_id, changes, typeof(at), typeof(changes) FROM audit_log "
            "WHERE entity_id = 'c-1' ORDER BY id"
        ).fetchall()
    assert len(rows) == 2
    fast, core = rows
    assert fast[0] + 1 == core[0]  # SQLite numbered both
    assert fast[1:] == core[1:]  # every stored value and its storage class
    async with sqlite_platform.db.read() as session:
        read = (await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars().all()
    assert [(r.at, r.changes) for r in read[-2:]] == [(at, changes), (at, changes)]


@pytest.mark.parametrize("changes", [{}, [], {"a": []}, [{}], None, JSON.NULL])
async def test_empty_json_is_stored_as_sqlalchemy_stores_it(
    sqlite_platform: Platform, tmp_path: Path, changes: Any
) -> None:
    """Empty lists and objects skip the JSON encoder (`row_values.empty_json`): same text stored."""
    at = datetime(2026, 11, 26, 7, 5, 9, tzinfo=UTC)
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        await uow.insert(AUDIT, [_audit(at, changes)])
        await (await uow.connection()).execute(insert(AUDIT), _audit(at, changes))
    with sqlite3.connect(tmp_path / "telportal.db") as raw:
        fast, core = raw.execute(
            "SELECT changes, typeof(changes) FROM audit_log WHERE entity_id = 'c-1' ORDER BY id"
        ).fetchall()
    assert fast == core


def test_a_statement_of_one_column_binds_its_value() -> None:
    one = Statement("UPDATE t SET a = ?", ("a",), (None,))
    assert tuple(one.params({"a": 5, "b": 6})) == (5,)
    converted = Statement("UPDATE t SET a = ?, b = ?", ("a", "b"), (str, None))
    assert list(converted.params({"b": 2, "a": 1})) == ["1", 2]


async def test_python_defaults_are_applied_and_many_rows_go_in_one_call(
    sqlite_platform: Platform,
) -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        await uow.insert(
            TENANTS,
            [
                {"slug": s, "name": s.title(), "sip_domain": None, "created_at": now,
                 "updated_at": now}
                for s in ("north", "south")
            ],
        )  # fmt: skip
    async with sqlite_platform.db.read() as session:
        tenants = (
            (
                await session.execute(
                    select(Tenant).where(Tenant.slug != "acme").order_by(Tenant.slug)
                )
            )
            .scalars()
            .all()
        )
    assert [(t.slug, t.enabled, len(t.id)) for t in tenants] == [
        ("north", True, 36),  # the id from new_id, enabled from its default
        ("south", True, 36),
    ]
    assert tenants[0].id != tenants[1].id


async def test_a_row_naming_an_unknown_or_missing_column_is_refused(
    sqlite_platform: Platform,
) -> None:
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        with pytest.raises(ValueError, match="audit_log has no column 'colour'"):
            await uow.insert(AUDIT, [{**_audit(datetime.now(UTC), {}), "colour": "red"}])
        with pytest.raises(ValueError, match=r"tenants\.slug has no value"):
            await uow.insert(TENANTS, [{"name": "No slug"}])


async def test_rows_and_values_belong_to_the_transaction(platform: Platform) -> None:
    """On both databases: a failed unit of work leaves none of its rows behind, and
    `value` reads what this transaction wrote."""
    now = datetime(2026, 11, 26, tzinfo=UTC)

    async def failing() -> None:
        async with platform.db.write(Scope.cli()) as uow:
            await uow.insert(AUDIT, [_audit(now, {"k": 1})])
            raise RuntimeError("changed my mind")

    with pytest.raises(RuntimeError, match="changed my mind"):
        await failing()
    async with platform.db.write(Scope.cli()) as uow:
        uow.session.add(Tenant(id="t-1", slug="acme", name="Acme", created_at=now, updated_at=now))
        await uow.session.flush()
        await uow.insert(
            cast(Table, Skill.__table__),
            [{"tenant_id": "t-1", "name": n, "created_at": now, "updated_at": now} for n in "ab"],
        )
        assert await uow.value(SKILLS_OF, {"tenant_id": "t-1"}) == 2
        assert await uow.value(SKILLS_OF, {"tenant_id": "nobody"}) == 0
    async with platform.db.read() as session:
        assert (await session.execute(select(func.count()).select_from(AuditEntry))).scalar() == 0
        assert (await session.execute(SKILLS_OF, {"tenant_id": "t-1"})).scalar() == 2


async def test_writes_one_after_another_reuse_the_same_connection(
    sqlite_platform: Platform,
) -> None:
    """SQLite keeps a page cache per connection and drops it when another connection
    wrote since: writes run on one connection (the group's), so they start warm."""
    db = sqlite_platform.db
    async with db.read() as first, db.read() as second:  # two connections in the pool
        await first.execute(select(1))
        await second.execute(select(1))
    used = []
    for i in range(5):
        async with db.write(Scope.cli()) as uow:
            await uow.insert(AUDIT, [_audit(datetime.now(UTC), {"i": i})])
            used.append(id(await uow._sqlite()))
    assert len(set(used)) == 1


async def test_updated_rows_are_stored_as_sqlalchemy_stores_them(
    sqlite_platform: Platform, tmp_path: Path
) -> None:
    at = datetime(2026, 11, 26, 7, 5, 9, 123456, tzinfo=UTC)
    later = datetime(2026, 11, 27, 8, 0, 0, 654321, tzinfo=UTC)
    changes = {"status": "solved ✓", "list": [2, "三"]}
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        await uow.insert(AUDIT, [_audit(at, {}), _audit(at, {})])
    with sqlite3.connect(tmp_path / "telportal.db") as raw:
        fast_id, core_id = (r[0] for r in raw.execute("SELECT id FROM audit_log ORDER BY id"))
    async with sqlite_platform.db.write(Scope.cli()) as uow:
        await uow.update(AUDIT, ("id",), [{"id": fast_id, "at": later, "changes": changes}])
        await (await uow.connection()).execute(
            AUDIT.update().where(AUDIT.c.id == core_id).values(at=later, changes=changes)
        )
        with pytest.raises(ValueError, match="audit_log has no column 'colour'"):
            await uow.update(AUDIT, ("id",), [{"id": fast_id, "colour": "red"}])
        with pytest.raises(ValueError, match="audit_log: no column to set"):
            await uow.update(AUDIT, ("id",), [{"id": fast_id}])
    with sqlite3.connect(tmp_path / "telportal.db") as raw:
        fast, core = raw.execute(
            "SELECT at, changes, typeof(at), actor_name FROM audit_log ORDER BY id"
        ).fetchall()
    assert fast == core  # every stored value and its storage class
    assert fast[3] == "zoë"  # the columns not given are left alone


async def test_updates_match_every_key_column_on_both_databases(platform: Platform) -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    async with platform.db.write(Scope.cli()) as uow:
        await uow.insert(AUDIT, [_audit(now, {"n": i}) | {"entity_id": f"e-{i}"} for i in (1, 2)])
    async with platform.db.write(Scope.cli()) as uow:
        await uow.update(
            AUDIT,
            ("entity_id", "actor_name"),
            [
                {"entity_id": "e-1", "actor_name": "zoë", "action": "changed"},
                {"entity_id": "e-2", "actor_name": "nobody", "action": "changed"},  # no row
            ],
        )
    async with platform.db.read() as session:
        rows = (await session.execute(select(AuditEntry.entity_id, AuditEntry.action))).all()
    assert sorted(tuple(r) for r in rows) == [("e-1", "changed"), ("e-2", "created")]


async def test_a_read_gives_its_connection_back_before_the_caller_goes_on(
    sqlite_platform: Platform,
) -> None:
    """SQLAlchemy's `async with` closes a session in a task of its own, which runs a
    loop turn later: the other reads of that turn each took another connection, and
    those past the pool's size were opened and closed every time (31 openings for
    these 120 reads). `Database.read` closes inline."""
    db = sqlite_platform.db
    pool = db.engine.sync_engine.pool
    before = pool.checkedout()  # the write group holds one
    async with db.read() as session:
        await session.execute(select(1))
        assert pool.checkedout() == before + 1
    assert pool.checkedout() == before
    connects = 0

    def count(*_: object) -> None:
        nonlocal connects
        connects += 1

    event.listen(db.engine.sync_engine, "connect", count)
    try:

        async def read() -> None:
            async with db.read() as session:
                await session.execute(select(1))

        for _ in range(3):
            await asyncio.gather(*(read() for _ in range(40)))
    finally:
        event.remove(db.engine.sync_engine, "connect", count)
    assert connects <= 1  # the pool's connections are reused, not opened per read
