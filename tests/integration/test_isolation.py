"""Tenants never see or touch each other's objects (on SQLite and on PostgreSQL).

Tenant B's users, with every role, aim at tenant A's ids, lists, updates and
deletes: all are refused as if A's objects did not exist, and A's objects are
unchanged afterwards. Flows live under their service and have a test of their own.
"""

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from telportal.app import Platform
from telportal.ivr.publishing import FlowRepository
from telportal.store.schema import CallDetailRecord, CurrentFlow, FlowVersion
from tests.integration.api_helpers import assert_error, create, login, make_operator
from tests.integration.world import TenantWorld, build_tenant, flow_text, record_call

RESOURCES = [
    "tenants",
    "business-centers",
    "services",
    "departments",
    "skills",
    "users",
    "queues",
    "api-keys",
    "numbers",
    "number-links",
    "trunks",
    "customers",
    "importance-rules",
    "calls",
]
# Records of what happened: read-only, so changing or deleting them has no route.
READ_ONLY = {"calls"}

# A harmless, valid change for each resource that has PATCH.
PATCHES: dict[str, dict[str, Any]] = {
    "tenants": {"name": "Hijacked"},
    "business-centers": {"name": "Hijacked"},
    "services": {"name": "Hijacked"},
    "departments": {"name": "Hijacked"},
    "skills": {"description": "hijacked"},
    "users": {"display_name": "Hijacked"},
    "queues": {"priority": 99},
    "numbers": {"description": "hijacked"},
    "number-links": {"caller_prefix": "0"},
    "trunks": {"host": "evil.example"},
    "customers": {"notes": "hijacked"},
    "importance-rules": {"level": 5, "any_tags": []},
}


@pytest.fixture
async def world(
    platform: Platform, client: httpx.AsyncClient
) -> tuple[dict[str, str], TenantWorld, TenantWorld]:
    await make_operator(platform)
    op = await login(client, "root")
    a = await build_tenant(client, op, "alpha", "4008000001")
    b = await build_tenant(client, op, "bravo", "4008000002")
    for w in (a, b):
        await record_call(platform, w)
    return op, a, b


async def _snapshot(
    client: httpx.AsyncClient, op: dict[str, str], w: TenantWorld
) -> dict[str, Any]:
    snap = {}
    for path in RESOURCES:
        r = await client.get(f"/api/v1/{path}/{w.ids[path]}", headers=op)
        assert r.status_code == 200, r.text
        snap[path] = r.json()
    return snap


async def test_other_tenants_objects_are_not_found_for_every_role(
    client: httpx.AsyncClient, world: tuple[dict[str, str], TenantWorld, TenantWorld]
) -> None:
    op, a, b = world
    before = await _snapshot(client, op, a)
    for who, headers in (("admin", b.admin), ("supervisor", b.supervisor), ("agent", b.agent)):
        for path in RESOURCES:
            target = f"/api/v1/{path}/{a.ids[path]}"
            r = await client.get(target, headers=headers)
            # api-keys are admin-only: lower roles are refused before any lookup.
            if path == "api-keys" and who != "admin":
                assert_error(r, 403, "forbidden")
            else:
                assert_error(r, 404, "not_found")
            if path in PATCHES:
                r = await client.patch(target, json=PATCHES[path], headers=headers)
                assert r.status_code in (403, 404), f"{who} PATCH {path}: {r.status_code} {r.text}"
            r = await client.delete(target, headers=headers)
            if path in READ_ONLY:
                assert_error(r, 405, "method_not_allowed")
            else:
                assert r.status_code in (403, 404), f"{who} DELETE {path}: {r.text}"
    # Tenant admins may change their own objects, so for them the answer is
    # always 404: the role check would pass, only isolation stops them.
    for path in RESOURCES:
        target = f"/api/v1/{path}/{a.ids[path]}"
        if path in PATCHES and path not in ("tenants", "numbers"):
            r = await client.patch(target, json=PATCHES[path], headers=b.admin)
            assert_error(r, 404, "not_found")
        if path not in ("tenants", "numbers", "number-links", *READ_ONLY):
            r = await client.delete(target, headers=b.admin)
            assert_error(r, 404, "not_found")
    assert await _snapshot(client, op, a) == before


async def test_lists_show_only_own_objects(
    client: httpx.AsyncClient, world: tuple[dict[str, str], TenantWorld, TenantWorld]
) -> None:
    op, a, b = world
    a_ids = {v for v in a.ids.values()} | {a.tenant_id}
    for headers in (b.admin, b.supervisor, b.agent):
        for path in RESOURCES:
            r = await client.get(f"/api/v1/{path}?limit=500", headers=headers)
            if r.status_code == 403:
                continue
            assert r.status_code == 200, r.text
            page = r.json()
            assert page["total"] == len(page["items"])
            for item in page["items"]:
                assert item["id"] not in a_ids, f"{path} leaked {item}"
                assert item.get("tenant_id") in (None, b.tenant_id), f"{path} leaked {item}"
                for link in item.get("links", []):
                    assert link["tenant_id"] == b.tenant_id
        flows = (
            await client.get(f"/api/v1/services/{b.ids['services']}/flows", headers=headers)
        ).json()
        assert [f["tenant_id"] for f in flows["items"]] == [b.tenant_id]
        assert flows["items"][0]["id"] == b.ids["flows"]
        # A platform operator's tenant filter is not a way in for tenant users.
        for path in ("services", "calls"):
            r = await client.get(f"/api/v1/{path}?tenant_id={a.tenant_id}", headers=headers)
            assert r.json()["items"] == []
    r = await client.get("/api/v1/services?limit=500", headers=op)
    assert {i["tenant_id"] for i in r.json()["items"]} == {a.tenant_id, b.tenant_id}


async def test_other_tenants_flows_are_not_found_for_every_role(
    platform: Platform,
    client: httpx.AsyncClient,
    world: tuple[dict[str, str], TenantWorld, TenantWorld],
) -> None:
    op, a, b = world
    base = f"/api/v1/services/{a.ids['services']}/flows"
    before = (await client.get(f"{base}/current", headers=op)).json()
    body = {"yaml": flow_text("alpha", "Hijacked.")}
    for headers in (b.admin, b.supervisor, b.agent):
        for target in (base, f"{base}/current", f"{base}/1", f"{base}/1?limit=5"):
            assert_error(await client.get(target, headers=headers), 404, "not_found")
        # Lower roles are refused for their role first, which tells nothing either.
        expected = (404, "not_found") if headers is b.admin else (403, "forbidden")
        assert_error(await client.post(base, json=body, headers=headers), *expected)
        assert_error(await client.post(f"{base}/1/rollback", headers=headers), *expected)
    # Publishing a flow that names another tenant into one's own service is refused.
    r = await client.post(f"/api/v1/services/{b.ids['services']}/flows", json=body, headers=b.admin)
    assert_error(r, 422, "invalid_flow")
    assert (await client.get(f"{base}/current", headers=op)).json() == before
    assert (await client.get(f"{base}", headers=op)).json()["total"] == 1
    # The call layer asks for a tenant's service: another tenant's is not there.
    repo = FlowRepository(platform.db)
    assert await repo.current(b.tenant_id, a.ids["services"]) is None
    mine = await repo.current(a.tenant_id, a.ids["services"])
    assert mine is not None and mine.flow.tenant == "alpha"


async def test_references_to_other_tenants_objects_are_refused(
    client: httpx.AsyncClient, world: tuple[dict[str, str], TenantWorld, TenantWorld]
) -> None:
    op, a, b = world
    attempts: list[tuple[str, dict[str, Any], str]] = [
        (
            "services",
            {"code": "x1", "name": "X", "business_center_id": a.ids["business-centers"]},
            "business_center_id",
        ),
        ("departments", {"name": "X", "parent_id": a.ids["departments"]}, "parent_id"),
        (
            "users",
            {"username": "x", "role": "agent", "department_id": a.ids["departments"]},
            "department_id",
        ),
        (
            "users",
            {
                "username": "y",
                "role": "agent",
                "skills": [{"skill_id": a.ids["skills"], "level": 3}],
            },
            "skills.0.skill_id",
        ),
        ("queues", {"service_id": a.ids["services"], "name": "x"}, "service_id"),
        (
            "queues",
            {"service_id": b.ids["services"], "name": "y", "member_ids": [a.ids["users"]]},
            "member_ids.0",
        ),
        ("skills", {"tenant_id": a.tenant_id, "name": "planted"}, "tenant_id"),
    ]
    for path, body, field in attempts:
        r = await client.post(f"/api/v1/{path}", json=body, headers=b.admin)
        err = assert_error(r, 422, "invalid")
        assert err["message"].startswith(field + ":"), err
    # Moving one's own object under another tenant's parent is refused the same way.
    r = await client.patch(
        f"/api/v1/services/{b.ids['services']}",
        json={"business_center_id": a.ids["business-centers"]},
        headers=b.admin,
    )
    assert_error(r, 422, "invalid")
    r = await client.patch(
        f"/api/v1/number-links/{b.ids['number-links']}",
        json={"service_id": a.ids["services"]},
        headers=b.admin,
    )
    assert_error(r, 422, "invalid")
    # Even a platform operator cannot tie one tenant's object to another's.
    r = await client.post(
        "/api/v1/services",
        json={
            "tenant_id": b.tenant_id,
            "code": "x2",
            "name": "X",
            "business_center_id": a.ids["business-centers"],
        },
        headers=op,
    )
    assert_error(r, 422, "invalid")
    r = await client.get("/api/v1/skills?limit=500", headers=op)
    assert "planted" not in {s["name"] for s in r.json()["items"]}


async def test_audit_log_and_revisions_are_per_tenant(
    client: httpx.AsyncClient, world: tuple[dict[str, str], TenantWorld, TenantWorld]
) -> None:
    _, a, b = world
    r = await client.get("/api/v1/audit?limit=500", headers=b.admin)
    assert r.status_code == 200
    entries = r.json()["items"]
    assert entries, "b's own changes are audited"
    assert {e["tenant_id"] for e in entries} == {b.tenant_id}
    assert not {e["entity_id"] for e in entries} & set(a.ids.values())
    rev_a = (await client.get("/api/v1/config/revision", headers=a.admin)).json()
    rev_b = (await client.get("/api/v1/config/revision", headers=b.admin)).json()
    assert rev_a["scope"] == a.tenant_id and rev_b["scope"] == b.tenant_id
    await create(client, b.admin, "skills", {"name": "more"})
    assert (await client.get("/api/v1/config/revision", headers=a.admin)).json() == rev_a
    after = (await client.get("/api/v1/config/revision", headers=b.admin)).json()
    assert after["revision"] == rev_b["revision"] + 1


async def test_api_key_of_one_tenant_cannot_reach_another(
    client: httpx.AsyncClient, world: tuple[dict[str, str], TenantWorld, TenantWorld]
) -> None:
    _, a, b = world
    r = await client.post(
        "/api/v1/api-keys", json={"name": "bot", "role": "tenant_admin"}, headers=b.admin
    )
    key = r.json()["key"]
    bot = {"Authorization": f"Bearer {key}"}
    for path in RESOURCES:
        r = await client.get(f"/api/v1/{path}/{a.ids[path]}", headers=bot)
        assert_error(r, 404, "not_found")
    r = await client.get(f"/api/v1/services/{b.ids['services']}", headers=bot)
    assert r.status_code == 200


async def test_deleting_a_tenant_removes_everything_it_owns(
    platform: Platform,
    client: httpx.AsyncClient,
    world: tuple[dict[str, str], TenantWorld, TenantWorld],
) -> None:
    op, a, b = world
    r = await client.delete(f"/api/v1/tenants/{a.tenant_id}", headers=op)
    assert r.status_code == 204, r.text
    for path in RESOURCES:
        r = await client.get(f"/api/v1/{path}/{a.ids[path]}", headers=op)
        if path == "numbers":
            # The number is the platform's; only its link to the tenant goes.
            assert r.status_code == 200 and r.json()["links"] == []
        else:
            assert_error(r, 404, "not_found")
    async with platform.db.read() as session:
        for model in (FlowVersion, CurrentFlow, CallDetailRecord):
            left = await session.scalar(
                select(func.count()).select_from(model).where(model.tenant_id == a.tenant_id)
            )
            assert left == 0, model.__tablename__
    # A's tokens die with it; B is untouched.
    assert_error(await client.get("/api/v1/me", headers=a.admin), 401, "unauthorized")
    assert (
        await client.get(f"/api/v1/services/{b.ids['services']}", headers=b.admin)
    ).status_code == 200
