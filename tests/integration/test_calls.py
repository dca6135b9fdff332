"""Call records: written by the call layer, read through the API, per tenant."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from telportal.app import Platform
from telportal.calls_store import CallRecords
from telportal.clock import FakeClock
from telportal.errors import Conflict, Invalid, NotFound
from telportal.events.types import CallFinished
from telportal.ivr import load_demo_flow, simulate
from telportal.ivr.publishing import FlowRepository
from telportal.store.schema import AuditEntry
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

    # Agents' own legs are not recorded yet, so they see no calls.
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
