"""Call records: written by the call layer, read through the API, per tenant."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import String, event, func, select

from telportal import calls_store
from telportal.app import Platform
from telportal.calls_batch import CallRecordWriter
from telportal.calls_store import CallRecords
from telportal.clock import FakeClock
from telportal.errors import Conflict, Invalid, NotFound
from telportal.events.types import CallFinished
from telportal.ivr import load_demo_flow, simulate
from telportal.ivr.publishing import FlowRepository
from telportal.store.schema import AuditEntry, CallDetailRecord
from tests.integration.api_helpers import assert_error, login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> TenantWorld:
    await make_operator(platform)
    op = await login(client, "root")
    return await build_tenant(client, op, "acme", "4008001000")


async def _revision(client: httpx.AsyncClient, w: TenantWorld) -> int:
    rev: int = (await client.get("/api/v1/config/revision", headers=w.admin)).json()["revision"]
    return rev


async def test_a_call_through_the_ivr_is_recorded_and_announced(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    w = acme
    calls = CallRecords(platform.db)
    sub = platform.bus.subscribe(f"call.{w.tenant_id}")
    rev = await _revision(client, w)
    async with platform.db.read() as session:
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    published = await FlowRepository(platform.db).current(w.tenant_id, w.ids["services"])
    assert published is not None
    started = clock.now()
    record_id = await calls.start(
        w.tenant_id,
        "a84b4c76e66710@pc33",
        site="sh-1",
        direction="inbound",
        caller="13800138000",
        called="4008001000",
        service_id=w.ids["services"],
    )
    clock.advance(2)
    await calls.answered(w.tenant_id, "a84b4c76e66710@pc33")
    ivr = simulate(load_demo_flow(), "5 9", "13800138000", started, call_id="a84b4c76e66710@pc33")
    await calls.save_ivr(w.tenant_id, "a84b4c76e66710@pc33", ivr.record, published.version)
    clock.advance(30)
    await calls.finish(w.tenant_id, "a84b4c76e66710@pc33", end_reason="ivr: self_service")

    r = await client.get(f"/api/v1/calls/{record_id}", headers=w.supervisor)
    assert r.status_code == 200, r.text
    call = r.json()
    assert call["call_id"] == "a84b4c76e66710@pc33" and call["service_id"] == w.ids["services"]
    assert (call["site"], call["direction"], call["flow_version"]) == ("sh-1", "inbound", 1)
    assert call["digits"] == ["5", "9"]
    assert [v["step"] for v in call["ivr_path"]] == [v.step for v in ivr.record.path]
    menu = next(v for v in call["ivr_path"] if v["step"] == "main_menu")
    assert menu["keys"] == ["5", "9"] and menu["type"] == "menu" and menu["outcome"]
    assert call["outcome"] == ivr.record.outcome and call["end_reason"] == "ivr: self_service"
    assert call["answered_at"] is not None and call["ended_at"] is not None

    event = sub.get_nowait()
    assert isinstance(event, CallFinished) and sub.get_nowait() is None
    assert (event.record_id, event.subject) == (record_id, f"call.{w.tenant_id}.finished")
    assert event.ended_at - event.started_at == timedelta(seconds=32)
    # Data, not configuration: no revision bump, no audit entry.
    assert await _revision(client, w) == rev
    async with platform.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == audited


async def test_list_filters_and_who_sees_what(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    w = acme
    calls = CallRecords(platform.db)
    start = clock.now()
    for i in range(5):
        await calls.start(
            w.tenant_id,
            f"call-{i}",
            site="sh-1",
            direction="inbound",
            caller=f"1390000000{i % 2}",
            called="4008001000" if i < 4 else "4008001001",
        )
        clock.advance(60)
    page = (await client.get("/api/v1/calls?limit=3", headers=w.supervisor)).json()
    assert page["total"] == 5
    assert [c["call_id"] for c in page["items"]] == ["call-4", "call-3", "call-2"]
    assert page["items"][0]["ended_at"] is None and page["items"][0]["ivr_path"] == []

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/api/v1/calls?{query}", headers=w.admin)
        assert r.status_code == 200, r.text
        return [c["call_id"] for c in r.json()["items"]]

    assert await ids("caller=13900000001") == ["call-3", "call-1"]
    assert await ids("called=4008001001") == ["call-4"]
    since = (start + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    until = (start + timedelta(seconds=180)).isoformat().replace("+00:00", "Z")
    assert await ids(f"since={since}&until={until}") == ["call-2", "call-1"]
    assert await ids(f"since={since}&caller=13900000000") == ["call-4", "call-2"]
    # A time without an offset is ambiguous.
    r = await client.get("/api/v1/calls?since=2026-01-01T00:00:00", headers=w.admin)
    assert_error(r, 422, "invalid_request")

    # An agent sees only the calls they answered: none of these.
    assert (await client.get("/api/v1/calls", headers=w.agent)).json()["total"] == 0
    some = page["items"][0]["id"]
    assert_error(await client.get(f"/api/v1/calls/{some}", headers=w.agent), 404, "not_found")
    assert_error(await client.get("/api/v1/calls/nope", headers=w.admin), 404, "not_found")
    # Records are not changed through the API.
    r = await client.delete(f"/api/v1/calls/{some}", headers=w.admin)
    assert_error(r, 405, "method_not_allowed")


async def test_the_call_layer_s_mistakes_are_refused(platform: Platform, acme: TenantWorld) -> None:
    w = acme
    calls = CallRecords(platform.db)
    await calls.start(w.tenant_id, "c1", site="s", direction="inbound", caller="1", called="2")
    with pytest.raises(Conflict):
        await calls.start(w.tenant_id, "c1", site="s", direction="inbound", caller="1", called="2")
    with pytest.raises(Invalid):
        await calls.start(
            w.tenant_id,
            "c2",
            site="s",
            direction="inbound",
            caller="1",
            called="2",
            service_id="no-such-service",
        )
    with pytest.raises(NotFound):
        await calls.finish(w.tenant_id, "never-started", end_reason="x")
    await calls.finish(w.tenant_id, "c1", end_reason="bye")
    with pytest.raises(Conflict):
        await calls.finish(w.tenant_id, "c1", end_reason="bye again")


async def test_a_queued_call_answered_by_an_agent_has_a_complete_record(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    w = acme
    calls = CallRecords(platform.db)
    sub = platform.bus.subscribe(f"call.{w.tenant_id}")
    await calls.start(
        w.tenant_id, "q-1", site="sh-1", direction="inbound", caller="13800138000",
        called="4008001000", service_id=w.ids["services"],
    )  # fmt: skip
    await calls.answered(w.tenant_id, "q-1")
    clock.advance(5)
    await calls.queued(w.tenant_id, "q-1", "billing")
    clock.advance(12.5)
    ring = {"kind": "agent", "target": "1001", "started_at": clock.now(), "status": 200}
    await calls.add_leg(w.tenant_id, "q-1", ring)
    await calls.connected(
        w.tenant_id, "q-1", agent_id=w.ids["users"], extension="1001",
        routing={"queue": "billing", "free_agents": 1, "waiting": 0},
        recording="recordings/q-1-agent-1001.wav",
    )  # fmt: skip
    await calls.add_transfer(w.tenant_id, "q-1", {"kind": "blind", "to": "1002"})
    clock.advance(90)
    await calls.finish(w.tenant_id, "q-1", end_reason="caller hung up", hangup_by="caller")

    page = (await client.get("/api/v1/calls?queue=billing", headers=w.supervisor)).json()
    (call,) = page["items"]
    assert (call["queue"], call["agent_id"], call["agent_extension"]) == (
        "billing", w.ids["users"], "1001",
    )  # fmt: skip
    assert (call["wait_seconds"], call["talk_seconds"], call["hangup_by"]) == (12.5, 90.0, "caller")
    assert call["recording"] == "recordings/q-1-agent-1001.wav"
    assert call["routing"] == {"queue": "billing", "free_agents": 1, "waiting": 0}
    assert call["legs"] == [{**ring, "started_at": ring["started_at"].isoformat()}]
    assert call["transfers"] == [{"kind": "blind", "to": "1002"}]
    event = sub.get_nowait()
    assert isinstance(event, CallFinished)
    assert (event.queue, event.agent_id, event.wait_seconds, event.talk_seconds) == (
        "billing", w.ids["users"], 12.5, 90.0,
    )  # fmt: skip

    # The agent who answered sees this call, and only calls like it.
    await calls.start(w.tenant_id, "q-2", site="sh-1", direction="inbound", caller="1", called="2")
    mine = (await client.get("/api/v1/calls", headers=w.agent)).json()
    assert [c["call_id"] for c in mine["items"]] == ["q-1"]
    assert (await client.get(f"/api/v1/calls/{call['id']}", headers=w.agent)).status_code == 200

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/api/v1/calls?{query}", headers=w.admin)
        assert r.status_code == 200, r.text
        return [c["call_id"] for c in r.json()["items"]]

    assert await ids(f"agent_id={w.ids['users']}") == ["q-1"]
    assert await ids("answered=false") == ["q-2"]
    assert await ids("hangup_by=caller&direction=inbound") == ["q-1"]
    assert_error(
        await client.get("/api/v1/calls?hangup_by=nobody", headers=w.admin), 422, "invalid_request"
    )


async def test_calls_export_as_csv_with_the_same_filters(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    import csv
    import io
    import json

    w = acme
    calls = CallRecords(platform.db)
    for i in range(3):
        await calls.start(
            w.tenant_id, f"x-{i}", site="sh-1", direction="inbound", caller=f"13{i}",
            called="4008001000",
        )  # fmt: skip
        clock.advance(1)
    await calls.save_ivr(
        w.tenant_id, "x-1", simulate(load_demo_flow(), "5 9", "131", clock.now()).record, 1
    )
    r = await client.get("/api/v1/calls/export", headers=w.supervisor)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "calls.csv" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["call_id"] for row in rows] == ["x-2", "x-1", "x-0"]
    assert json.loads(rows[1]["digits"]) == ["5", "9"]  # lists travel as JSON
    assert rows[1]["flow_version"] == "1" and rows[0]["ended_at"] == ""
    r = await client.get("/api/v1/calls/export?caller=131", headers=w.admin)
    assert [row["call_id"] for row in csv.DictReader(io.StringIO(r.text))] == ["x-1"]
    # The same rule as the list: an agent exports only their own calls (none here).
    r = await client.get("/api/v1/calls/export", headers=w.agent)
    assert r.status_code == 200 and len(list(csv.DictReader(io.StringIO(r.text)))) == 0
    assert_error(await client.get("/api/v1/calls/export"), 401, "unauthorized")


async def test_records_left_open_by_a_crash_are_closed_on_restart(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    w = acme
    calls = CallRecords(platform.db)
    await calls.start(w.tenant_id, "up-1", site="sh-1", direction="inbound", caller="1", called="2")
    await calls.start(w.tenant_id, "up-2", site="bj-1", direction="inbound", caller="1", called="2")
    await calls.start(w.tenant_id, "done", site="sh-1", direction="inbound", caller="1", called="2")
    await calls.finish(w.tenant_id, "done", end_reason="bye", hangup_by="caller")
    clock.advance(600)
    assert await calls.close_orphans("sh-1") == 1  # only this site's, only open ones
    assert await calls.close_orphans("sh-1") == 0
    page = (await client.get("/api/v1/calls", headers=w.admin)).json()
    by_id = {c["call_id"]: c for c in page["items"]}
    assert by_id["up-1"]["end_reason"] == "site restarted"
    assert by_id["up-1"]["hangup_by"] == "system" and by_id["up-1"]["ended_at"] is not None
    assert by_id["up-2"]["ended_at"] is None  # another site's call may still be up
    assert by_id["done"]["end_reason"] == "bye"


async def test_records_written_behind_the_calls_are_read_after_the_flush(
    platform: Platform, client: httpx.AsyncClient, clock: FakeClock, acme: TenantWorld
) -> None:
    """The call layer's writer (decision 0010): nothing waits on the database, one
    transaction per batch, `CallFinished` only once the batch is committed."""
    w = acme
    writer = CallRecordWriter(CallRecords(platform.db), clock, interval=3600)
    sub = platform.bus.subscribe(f"call.{w.tenant_id}")
    writer.open()
    try:
        record_id = await writer.start(
            w.tenant_id, "wb-1", site="sh-1", direction="internal", caller="1001", called="1002"
        )
        clock.advance(1)
        await writer.answered(w.tenant_id, "wb-1")
        clock.advance(4)
        await writer.finish(w.tenant_id, "wb-1", end_reason="peer hung up", hangup_by="caller")
        await writer.finish(w.tenant_id, "wb-1", end_reason="twice")  # refused when written
        await writer.start(
            w.tenant_id, "wb-2", site="sh-1", direction="internal", caller="1001", called="1003"
        )
        assert (await client.get("/api/v1/calls", headers=w.admin)).json()["total"] == 0
        assert sub.get_nowait() is None
        await writer.flush()
        r = await client.get(f"/api/v1/calls/{record_id}", headers=w.supervisor)
        assert r.status_code == 200, r.text
        call = r.json()
        assert (call["end_reason"], call["hangup_by"]) == ("peer hung up", "caller")
        assert call["answered_at"] is not None
        event = sub.get_nowait()
        assert isinstance(event, CallFinished) and sub.get_nowait() is None
        assert event.record_id == record_id
        assert event.ended_at - event.started_at == timedelta(seconds=5)
        page = (await client.get("/api/v1/calls?answered=false", headers=w.admin)).json()
        assert [c["call_id"] for c in page["items"]] == ["wb-2"]
        assert page["items"][0]["ended_at"] is None
    finally:
        await writer.aclose()


async def test_a_batch_keeps_its_good_records_when_some_are_refused(
    platform: Platform,
    client: httpx.AsyncClient,
    acme: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(calls_store, "LOAD_CHUNK", 2)  # several look-ups per batch
    w = acme
    calls = CallRecords(platform.db)
    await calls.start(w.tenant_id, "dup", site="s", direction="inbound", caller="9", called="2")
    ops: list[calls_store.RecordOp] = []
    at = platform.clock.now()
    for i in range(5):
        ops.append(
            calls_store.Start(
                w.tenant_id, f"ok-{i}", calls_store.new_id(), "s", "inbound", "1", "2", None, at
            )
        )
    ops.append(
        calls_store.Start(
            w.tenant_id, "dup", calls_store.new_id(), "s", "inbound", "1", "2", None, at
        )
    )
    ops.append(calls_store.Answered(w.tenant_id, "never", at))
    ops += [calls_store.Finish(w.tenant_id, f"ok-{i}", "bye", at, None, "caller") for i in range(5)]
    refused = await calls.write(ops)
    assert [(type(r.op).__name__, r.op.call_id, type(r.error)) for r in refused] == [
        ("Start", "dup", Conflict),
        ("Answered", "never", NotFound),
    ]
    page = (await client.get("/api/v1/calls", headers=w.admin)).json()
    by_id = {c["call_id"]: c for c in page["items"]}
    assert sorted(by_id) == ["dup", "ok-0", "ok-1", "ok-2", "ok-3", "ok-4"]
    assert by_id["dup"]["caller"] == "9" and by_id["dup"]["ended_at"] is None
    assert all(by_id[f"ok-{i}"]["end_reason"] == "bye" for i in range(5))


async def test_calls_started_in_one_batch_are_inserted_together_as_the_orm_would(
    platform: Platform, acme: TenantWorld
) -> None:
    """New calls skip the ORM (`calls_store._insert`): rows with different columns set go
    in one batch, a column never set is SQL NULL (JSON too, not JSON null), and a call
    started in one batch is found and updated by the next."""
    w = acme
    calls = CallRecords(platform.db)
    at = platform.clock.now()
    later = at + timedelta(seconds=7)
    ops: list[calls_store.RecordOp] = [
        calls_store.Start(
            w.tenant_id, "plain", calls_store.new_id(), "s", "internal", "1", "2", None, at
        ),
        calls_store.Start(
            w.tenant_id, "routed", calls_store.new_id(), "s", "inbound", "3", "4", None, at
        ),
        calls_store.Queued(w.tenant_id, "routed", "sales", at),
        calls_store.Connected(
            w.tenant_id, "routed", None, "1001", {"strategy": "longest"}, "rec.wav", later
        ),
        calls_store.AddLeg(w.tenant_id, "routed", {"kind": "agent", "at": later}),
        calls_store.Finish(w.tenant_id, "routed", "bye", later, "served", "caller"),
    ]
    assert await calls.write(ops) == []
    async with platform.db.read() as session:
        rows = {
            row.call_id: row for row in (await session.execute(select(CallDetailRecord))).scalars()
        }
        plain_routing_is_null = await session.scalar(
            select(func.count())
            .select_from(CallDetailRecord)
            .where(
                CallDetailRecord.call_id == "plain",
                CallDetailRecord.routing.is_(None),
            )
        )
    assert plain_routing_is_null == 1
    plain, routed = rows["plain"], rows["routed"]
    assert (plain.routing, plain.legs, plain.ivr_path, plain.ended_at) == (None, [], [], None)
    assert routed.routing == {"strategy": "longest"}
    assert routed.legs == [{"kind": "agent", "at": later.isoformat()}]
    assert (routed.queue, routed.wait_seconds, routed.recording) == ("sales", 7.0, "rec.wav")
    assert (routed.end_reason, routed.outcome, routed.hangup_by) == ("bye", "served", "caller")
    # The next batch finds "plain" in the database and updates it.
    refused = await calls.write(
        [
            calls_store.Answered(w.tenant_id, "plain", at),
            calls_store.Finish(w.tenant_id, "plain", "done", later, None, "callee"),
            calls_store.Start(
                w.tenant_id, "plain", calls_store.new_id(), "s", "internal", "1", "2", None, at
            ),
        ]
    )
    assert [(type(r.op).__name__, type(r.error)) for r in refused] == [("Start", Conflict)]
    async with platform.db.read() as session:
        row = await session.scalar(
            select(CallDetailRecord).where(CallDetailRecord.call_id == "plain")
        )
    assert row is not None
    assert (row.end_reason, row.hangup_by, row.answered_at) == ("done", "callee", at)


async def test_new_calls_are_written_without_reading_back_and_the_database_still_checks(
    platform: Platform, acme: TenantWorld
) -> None:
    """`CallRecords.write` trusts that a call started here is new and that a service
    seen before still exists; the database's constraints check both, and a batch they
    refuse is applied again with every check, refusing only the culprit."""
    w = acme
    at = platform.clock.now()
    selects: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    def start(records_call_id: str, service: str | None) -> calls_store.Start:
        return calls_store.Start(
            w.tenant_id, records_call_id, calls_store.new_id(), "s", "inbound", "1", "2",
            service, at,
        )  # fmt: skip

    calls = CallRecords(platform.db)
    assert await calls.write([start("first", w.ids["services"])]) == []  # reads the service
    engine = platform.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert await calls.write([start(f"n-{i}", w.ids["services"]) for i in range(3)]) == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert selects == []
    # Recorded by another process (or before a restart): nothing here remembers it.
    await CallRecords(platform.db).start(
        w.tenant_id, "elsewhere", site="s", direction="inbound", caller="9", called="2"
    )
    calls._service_tenants["deleted-since"] = w.tenant_id  # a service seen, then deleted
    refused = await calls.write(
        [
            start("elsewhere", None),
            start("fresh", w.ids["services"]),
            start("orphan", "deleted-since"),
            calls_store.Finish(w.tenant_id, "fresh", "bye", at, None, "caller"),
        ]
    )
    assert [(type(r.op).__name__, r.op.call_id, type(r.error)) for r in refused] == [
        ("Start", "elsewhere", Conflict),
        ("Start", "orphan", Invalid),
    ]
    async with platform.db.read() as session:
        rows = {r.call_id: r for r in (await session.execute(select(CallDetailRecord))).scalars()}
    assert rows["elsewhere"].caller == "9"  # left as the other process wrote it
    assert rows["fresh"].end_reason == "bye" and rows["fresh"].service_id == w.ids["services"]
    assert "orphan" not in rows and "deleted-since" not in calls._service_tenants


async def test_json_columns_hold_compact_utf8_text_that_reads_back_alike(
    platform: Platform, acme: TenantWorld
) -> None:
    # store/json_text: the engine's JSON serializer, on SQLite and PostgreSQL alike.
    w = acme
    calls = CallRecords(platform.db)
    await calls.start(w.tenant_id, "json-1", site="sh-1", direction="internal",
                      caller="1001", called="1002")  # fmt: skip
    leg = {"to": "张三", "status": 200, "cost": 0.5, "nested": {"ok": True, "none": None}}
    await calls.add_leg(w.tenant_id, "json-1", leg)
    query = select(func.cast(CallDetailRecord.legs, String), CallDetailRecord.legs).where(
        CallDetailRecord.call_id == "json-1"
    )
    async with platform.db.read() as session:
        text, legs = (await session.execute(query)).one()
    assert legs == [leg]
    if platform.db.url.startswith("sqlite"):
        # PostgreSQL's json type keeps the text it was given too, but casts may respace it.
        assert text == '[{"to":"张三","status":200,"cost":0.5,"nested":{"ok":true,"none":null}}]'
    with pytest.raises(Exception, match="Unable to serialize unknown type"):
        await calls.add_leg(w.tenant_id, "json-1", {"bad": object()})
    async with platform.db.read() as session:
        assert (await session.execute(query)).one()[1] == [leg]  # the failed write left nothing
