"""`CallRecords` remembers the calls it started and has not finished, so that their
later operations are UPDATEs of the changed columns without reading the row back.
On both databases: what is remembered is only ever what was committed."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from telportal.app import Platform
from telportal.calls_store import Answered, CallRecords, Finish
from telportal.clock import FakeClock
from telportal.errors import Conflict, NotFound
from telportal.store.schema import CallDetailRecord
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope
from tests.integration.api_helpers import login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> TenantWorld:
    await make_operator(platform)
    op = await login(client, "root")
    return await build_tenant(client, op, "acme", "4008001000")


async def _row(platform: Platform, call_id: str) -> CallDetailRecord:
    async with platform.db.read() as session:
        q = select(CallDetailRecord).where(CallDetailRecord.call_id == call_id)
        return (await session.execute(q)).scalar_one()


async def _start(calls: CallRecords, w: TenantWorld, call_id: str, site: str = "sh-1") -> None:
    await calls.start(w.tenant_id, call_id, site=site, direction="inbound", caller="1", called="2")


async def test_an_open_call_is_remembered_until_it_finishes(
    platform: Platform, clock: FakeClock, acme: TenantWorld
) -> None:
    w, calls = acme, CallRecords(platform.db)
    await _start(calls, w, "c-1")
    assert calls.open_calls == 1
    clock.advance(2)
    await calls.answered(w.tenant_id, "c-1")
    clock.advance(30)
    await calls.finish(w.tenant_id, "c-1", end_reason="bye", hangup_by="caller")
    assert calls.open_calls == 0
    row = await _row(platform, "c-1")
    assert row.ended_at is not None and row.answered_at is not None
    assert row.ended_at - row.answered_at == timedelta(seconds=30)
    with pytest.raises(Conflict, match="already finished"):  # read back, still refused
        await calls.finish(w.tenant_id, "c-1", end_reason="again")


async def test_an_update_sets_only_the_columns_that_changed(
    platform: Platform, acme: TenantWorld
) -> None:
    """What another writer set meanwhile (here by hand) survives a later operation."""
    w, calls = acme, CallRecords(platform.db)
    await _start(calls, w, "c-2")
    async with platform.db.write(Scope.cli()) as uow:
        await uow.session.execute(
            update(CallDetailRecord)
            .where(CallDetailRecord.call_id == "c-2")
            .values(recording="rec/c-2.wav", caller="changed elsewhere")
        )
    await calls.finish(w.tenant_id, "c-2", end_reason="bye", hangup_by="caller")
    row = await _row(platform, "c-2")
    assert (row.recording, row.caller, row.end_reason) == (
        "rec/c-2.wav",
        "changed elsewhere",
        "bye",
    )


async def test_a_transaction_that_fails_leaves_the_remembered_call_as_committed(
    platform: Platform, clock: FakeClock, acme: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, calls = acme, CallRecords(platform.db)
    await _start(calls, w, "c-3")
    first = clock.now()

    async def refuse(*_: object, **__: object) -> None:
        raise RuntimeError("the disk is full")

    with monkeypatch.context() as m:
        m.setattr(UnitOfWork, "update", refuse)
        with pytest.raises(RuntimeError, match="disk is full"):
            await calls.write([Answered(w.tenant_id, "c-3", first)])
    clock.advance(5)
    second = clock.now()
    await calls.write([Answered(w.tenant_id, "c-3", second), Finish(w.tenant_id, "c-3", "bye",
                       second, None, "caller")])  # fmt: skip
    # Had the failed answer been remembered, this one would have been taken as a repeat.
    assert (await _row(platform, "c-3")).answered_at == second


async def test_calls_past_the_limit_are_forgotten_and_read_back_when_needed(
    platform: Platform, acme: TenantWorld
) -> None:
    w, calls = acme, CallRecords(platform.db, remember=2)
    for call_id in ("old", "mid", "new"):
        await _start(calls, w, call_id)
    assert calls.open_calls == 2
    for call_id in ("old", "mid", "new"):
        await calls.finish(w.tenant_id, call_id, end_reason="bye")
        assert (await _row(platform, call_id)).end_reason == "bye"
    assert calls.open_calls == 0


async def test_another_tenant_cannot_touch_a_remembered_call(
    platform: Platform, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w, calls = acme, CallRecords(platform.db)
    op = await login(client, "root")
    other = await build_tenant(client, op, "globex", "4008002000")
    await _start(calls, w, "c-4")
    with pytest.raises(NotFound):
        await calls.finish(other.tenant_id, "c-4", end_reason="hijacked")
    assert (await _row(platform, "c-4")).ended_at is None
    assert calls.open_calls == 1


async def test_closing_a_site_s_orphans_forgets_its_calls(
    platform: Platform, acme: TenantWorld
) -> None:
    w, calls = acme, CallRecords(platform.db)
    await _start(calls, w, "here", site="sh-1")
    await _start(calls, w, "there", site="bj-1")
    assert await calls.close_orphans("sh-1") == 1
    assert calls.open_calls == 1
    with pytest.raises(Conflict, match="already finished"):  # closed, not finished twice
        await calls.finish(w.tenant_id, "here", end_reason="bye")


async def test_a_call_read_only_to_be_refused_is_not_remembered(
    platform: Platform, acme: TenantWorld
) -> None:
    """Another process's call, met through a duplicate start, stays that process's."""
    w, elsewhere, here = acme, CallRecords(platform.db), CallRecords(platform.db)
    await _start(elsewhere, w, "theirs")
    with pytest.raises(Conflict, match="already recorded"):
        await _start(here, w, "theirs")
    assert here.open_calls == 0
    await elsewhere.finish(w.tenant_id, "theirs", end_reason="bye")
    with pytest.raises(Conflict, match="already finished"):  # read back, not remembered open
        await here.finish(w.tenant_id, "theirs", end_reason="again")
