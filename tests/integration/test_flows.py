"""Publishing IVR flows: versions per service, the version in service, rollback."""

import asyncio
import re
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.events import ConfigChanged
from telportal.events.bus import InProcessBus
from telportal.ivr.publishing import FlowRepository
from telportal.store.database import Database
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope
from tests.integration.api_helpers import assert_error, login, make_operator
from tests.integration.world import TenantWorld, build_tenant, flow_text

BROKEN = """flow: main
version: 1
tenant: acme
steps:
  hello:
    type: play
    prompt: Welcome.
    next: nowhere
  bye:
    type: hangup
    colour: red
"""
PROBLEM = re.compile(r"^hotline\.yaml:\d+:\d+: error: .+")


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> TenantWorld:
    await make_operator(platform)
    op = await login(client, "root")
    # build_tenant publishes version 1 of the hotline's flow.
    return await build_tenant(client, op, "acme", "4008001000")


def _base(w: TenantWorld) -> str:
    return f"/api/v1/services/{w.ids['services']}/flows"


async def _revision(client: httpx.AsyncClient, w: TenantWorld) -> int:
    rev: int = (await client.get("/api/v1/config/revision", headers=w.admin)).json()["revision"]
    return rev


async def test_publish_list_read_and_roll_back(
    platform: Platform, client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w, base = acme, _base(acme)
    sub = platform.bus.subscribe(f"config.{w.tenant_id}.flow")
    rev = await _revision(client, w)
    # JSON body, then raw YAML with the note in the query.
    r = await client.post(
        base, json={"yaml": flow_text("acme", "Hello."), "note": "warmer"}, headers=w.admin
    )
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v2["version"], v2["current"], v2["note"], v2["published_by"]) == (
        2,
        True,
        "warmer",
        "boss@acme",
    )
    text3 = flow_text("acme", "Hi there.")
    r = await client.post(
        f"{base}?note=raw",
        content=text3.encode(),
        headers={**w.admin, "Content-Type": "application/yaml"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 3 and r.json()["note"] == "raw"

    page = (await client.get(f"{base}?limit=2", headers=w.supervisor)).json()
    assert page["total"] == 3 and [v["version"] for v in page["items"]] == [3, 2]
    assert [v["current"] for v in page["items"]] == [True, False]
    assert "yaml" not in page["items"][0]
    current = (await client.get(f"{base}/current", headers=w.agent)).json()
    assert current["version"] == 3 and current["yaml"] == text3
    assert current["made_current_by"] == "boss@acme"
    one = (await client.get(f"{base}/1", headers=w.agent)).json()
    assert one["version"] == 1 and not one["current"] and one["yaml"] == flow_text("acme")
    assert_error(await client.get(f"{base}/9", headers=w.admin), 404, "not_found")

    # Rollback moves the pointer; no new version is made.
    r = await client.post(f"{base}/1/rollback", headers=w.admin)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.json()["current"]
    page = (await client.get(base, headers=w.admin)).json()
    assert page["total"] == 3
    assert [v["version"] for v in page["items"] if v["current"]] == [1]
    assert (await client.get(f"{base}/current", headers=w.admin)).json()["version"] == 1
    assert_error(await client.post(f"{base}/1/rollback", headers=w.admin), 409, "conflict")
    assert_error(await client.post(f"{base}/7/rollback", headers=w.admin), 404, "not_found")
    # ... and forward again.
    assert (await client.post(f"{base}/3/rollback", headers=w.admin)).status_code == 200

    # Each publish and rollback went through the write path once.
    events = [sub.get_nowait() for _ in range(4)]
    assert sub.get_nowait() is None
    assert all(isinstance(e, ConfigChanged) for e in events)
    assert [(e.entity, e.entity_id, e.action) for e in events] == [  # type: ignore[union-attr]
        ("flow", w.ids["services"], action)
        for action in ("created", "created", "updated", "updated")
    ]
    assert await _revision(client, w) == rev + 4
    audit = (
        await client.get(
            f"/api/v1/audit?entity=flow&entity_id={w.ids['services']}", headers=w.admin
        )
    ).json()["items"]
    assert [a["changes"]["version"] for a in audit] == [3, 1, 3, 2, 1]
    assert audit[0]["changes"]["rollback"] and audit[0]["changes"]["previous"] == 1


async def test_malformed_flow_is_refused_and_the_running_version_stays(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w, base = acme, _base(acme)
    rev = await _revision(client, w)
    r = await client.post(base, json={"yaml": BROKEN}, headers=w.admin)
    body = assert_error(r, 422, "invalid_flow")
    problems = [d["problem"] for d in body["details"]]
    assert all(PROBLEM.match(p) for p in problems), problems
    assert [(d["line"], d["column"]) for d in body["details"]] == [(8, 11), (9, 3), (11, 5)]
    assert "nowhere" in body["details"][0]["message"] and "was not published" in body["message"]
    # Raw YAML is refused the same way.
    r = await client.post(
        base, content=BROKEN, headers={**w.admin, "Content-Type": "application/yaml"}
    )
    assert len(assert_error(r, 422, "invalid_flow")["details"]) == 3
    # A flow naming another tenant would never run for this one.
    r = await client.post(base, json={"yaml": flow_text("globex")}, headers=w.admin)
    details = assert_error(r, 422, "invalid_flow")["details"]
    assert [(d["line"], d["column"]) for d in details] == [(3, 9)]
    assert "globex" in details[0]["message"]
    # Bad requests, as opposed to bad flows.
    for content, ctype in (
        (b'{"yaml": ""}', "application/json"),
        (b'{"yaml": "x", "colour": 1}', "application/json"),
        (b"{", "application/json"),
        (b"\xff\xfe", "application/yaml"),
    ):
        r = await client.post(base, content=content, headers={**w.admin, "Content-Type": ctype})
        assert_error(r, 422, "invalid_request")
    r = await client.post(
        base, content=b"flow: x", headers={**w.admin, "Content-Type": "text/plain"}
    )
    assert_error(r, 415, "unsupported_media_type")
    r = await client.post(f"{base}?note=x", json={"yaml": "flow: x"}, headers=w.admin)
    assert_error(r, 422, "invalid_request")

    current = (await client.get(f"{base}/current", headers=w.admin)).json()
    assert current["version"] == 1 and current["yaml"] == flow_text("acme")
    assert (await client.get(base, headers=w.admin)).json()["total"] == 1
    assert await _revision(client, w) == rev


async def test_roles(client: httpx.AsyncClient, acme: TenantWorld) -> None:
    w, base = acme, _base(acme)
    body = {"yaml": flow_text("acme", "Again.")}
    for headers in (w.supervisor, w.agent):
        assert (await client.get(base, headers=headers)).status_code == 200
        assert (await client.get(f"{base}/current", headers=headers)).status_code == 200
        err = assert_error(await client.post(base, json=body, headers=headers), 403, "forbidden")
        assert err["message"] == "your role may not publish flows"
        r = await client.post(f"{base}/1/rollback", headers=headers)
        assert_error(r, 403, "forbidden")
    assert (await client.post(base, json=body, headers=w.admin)).status_code == 201


async def test_a_new_publish_changes_current_while_running_calls_keep_their_flow(
    client: httpx.AsyncClient, platform: Platform, acme: TenantWorld
) -> None:
    w, base = acme, _base(acme)
    repo = FlowRepository(platform.db)
    running = await repo.current(w.tenant_id, w.ids["services"])
    assert running is not None and running.version == 1
    # A second call gets the same parsed flow from the cache.
    again = await repo.current(w.tenant_id, w.ids["services"])
    assert again is not None and again.flow is running.flow

    r = await client.post(base, json={"yaml": flow_text("acme", "Changed.")}, headers=w.admin)
    assert r.status_code == 201
    new = await repo.current(w.tenant_id, w.ids["services"])
    assert new is not None and new.version == 2
    # The call that started before keeps its own flow object, unchanged.
    assert running.version == 1 and running.flow.digest != new.flow.digest
    # A rollback is seen by the next call, and reuses the cached parse of version 1.
    assert (await client.post(f"{base}/1/rollback", headers=w.admin)).status_code == 200
    back = await repo.current(w.tenant_id, w.ids["services"])
    assert back is not None and back.version == 1 and back.flow is running.flow
    # No flow for a service without one, another tenant, or no service at all.
    assert await repo.current("no-such-tenant", w.ids["services"]) is None
    assert await repo.current(w.tenant_id, None) is None


async def test_idempotent_publish_makes_one_version(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w, base = acme, _base(acme)
    h = {**w.admin, "Idempotency-Key": "publish-2"}
    body = {"yaml": flow_text("acme", "Once."), "note": "retry me"}
    first = await client.post(base, json=body, headers=h)
    again = await client.post(base, json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert (await client.get(base, headers=w.admin)).json()["total"] == 2
    r = await client.post(base, json={**body, "note": "other"}, headers=h)
    assert_error(r, 422, "idempotency_key_reused")
    # A refused flow is not remembered: the key works once the flow is fixed.
    h = {**w.admin, "Idempotency-Key": "publish-3"}
    assert_error(await client.post(base, json={"yaml": BROKEN}, headers=h), 422, "invalid_flow")
    r = await client.post(base, json={"yaml": flow_text("acme", "Fixed.")}, headers=h)
    assert r.status_code == 201 and r.json()["version"] == 3


async def test_concurrent_publishes_get_their_own_numbers(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w, base = acme, _base(acme)
    answers = await asyncio.gather(
        *(
            client.post(base, json={"yaml": flow_text("acme", f"Take {i}.")}, headers=w.admin)
            for i in range(5)
        )
    )
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    assert sorted(a.json()["version"] for a in answers) == [2, 3, 4, 5, 6]
    current = (await client.get(f"{base}/current", headers=w.admin)).json()
    assert current["version"] == 6


async def test_deleting_a_service_removes_its_flows(
    client: httpx.AsyncClient, acme: TenantWorld
) -> None:
    w = acme
    # The queue and number link of the world refer to the service: make a bare one.
    center = (await client.get("/api/v1/business-centers", headers=w.admin)).json()["items"][0]
    service = (
        await client.post(
            "/api/v1/services",
            json={"code": "spare", "name": "Spare", "business_center_id": center["id"]},
            headers=w.admin,
        )
    ).json()
    base = f"/api/v1/services/{service['id']}/flows"
    assert_error(await client.get(f"{base}/current", headers=w.admin), 404, "not_found")
    r = await client.post(base, json={"yaml": flow_text("acme")}, headers=w.admin)
    assert r.status_code == 201 and r.json()["version"] == 1
    details = assert_error(
        await client.post(base, json={"yaml": BROKEN}, headers=w.admin), 422, "invalid_flow"
    )["details"]
    assert details[0]["problem"].startswith("spare.yaml:")
    r = await client.delete(f"/api/v1/services/{service['id']}", headers=w.admin)
    assert r.status_code == 204, r.text
    assert_error(await client.get(base, headers=w.admin), 404, "not_found")


async def test_the_call_layer_remembers_the_flow_and_sees_a_publish_here_at_once(
    client: httpx.AsyncClient,
    platform: Platform,
    acme: TenantWorld,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`recheck_seconds` (the SIP service's repository): no database read per call."""
    w, base = acme, _base(acme)
    repo = FlowRepository(platform.db, recheck_seconds=2.0)
    reads = 0
    read = repo._read_current

    async def counted(tenant_id: str, service_id: str) -> object:
        nonlocal reads
        reads += 1
        return await read(tenant_id, service_id)

    monkeypatch.setattr(repo, "_read_current", counted)
    for _ in range(5):
        running = await repo.current(w.tenant_id, w.ids["services"])
        assert running is not None and running.version == 1
    assert reads == 1
    r = await client.post(base, json={"yaml": flow_text("acme", "Changed.")}, headers=w.admin)
    assert r.status_code == 201
    new = await repo.current(w.tenant_id, w.ids["services"])  # no wait: this process's commit
    assert new is not None and new.version == 2
    assert await repo.current("no-such-tenant", w.ids["services"]) is None  # tenants apart


async def test_a_publish_by_another_process_shows_within_the_recheck_interval(
    platform: Platform, acme: TenantWorld, clock: FakeClock
) -> None:
    w = acme
    repo = FlowRepository(platform.db, recheck_seconds=2.0)
    first = await repo.current(w.tenant_id, w.ids["services"])
    assert first is not None and first.version == 1
    elsewhere = Database(platform.db.url, clock, InProcessBus())  # another process: its own pool
    try:
        async with elsewhere.write(Scope.cli()) as uow:
            await FlowRepository(elsewhere).publish(
                uow, w.ids["services"], flow_text("acme", "From the business center.")
            )
    finally:
        await elsewhere.dispose()
    same = await repo.current(w.tenant_id, w.ids["services"])
    assert same is not None and same.version == 1  # not seen yet: nothing told this process
    clock.advance(2.5)
    later = await repo.current(w.tenant_id, w.ids["services"])
    assert later is not None and later.version == 2


async def test_a_read_overtaken_by_a_publish_is_not_remembered(
    platform: Platform, acme: TenantWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = acme
    repo = FlowRepository(platform.db, recheck_seconds=2.0)
    read = repo._read_current
    reads = 0

    async def overtaken(tenant_id: str, service_id: str) -> object:
        nonlocal reads
        reads += 1
        found = await read(tenant_id, service_id)
        repo._committed(cast(UnitOfWork, SimpleNamespace(audited={"flow"})))  # a publish lands
        return found

    monkeypatch.setattr(repo, "_read_current", overtaken)
    await repo.current(w.tenant_id, w.ids["services"])
    await repo.current(w.tenant_id, w.ids["services"])
    assert reads == 2  # the first read may be stale: it was not kept
