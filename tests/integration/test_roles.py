"""Role-based access: each role does what it should and nothing more."""

import httpx
import pytest

from telportal.app import Platform
from tests.integration.api_helpers import assert_error, login, make_operator
from tests.integration.world import TenantWorld, build_tenant


@pytest.fixture
async def acme(platform: Platform, client: httpx.AsyncClient) -> tuple[dict[str, str], TenantWorld]:
    await make_operator(platform)
    op = await login(client, "root")
    return op, await build_tenant(client, op, "acme", "4008001000")


async def test_agents_and_supervisors_do_not_configure(
    client: httpx.AsyncClient, acme: tuple[dict[str, str], TenantWorld]
) -> None:
    _, w = acme
    for h in (w.agent, w.supervisor):
        assert_error(
            await client.post("/api/v1/skills", json={"name": "x"}, headers=h), 403, "forbidden"
        )
        r = await client.patch(
            f"/api/v1/services/{w.ids['services']}", json={"name": "x"}, headers=h
        )
        assert_error(r, 403, "forbidden")
        assert_error(
            await client.delete(f"/api/v1/queues/{w.ids['queues']}", headers=h), 403, "forbidden"
        )
        assert_error(await client.get("/api/v1/audit", headers=h), 403, "forbidden")
        assert (
            await client.get(f"/api/v1/services/{w.ids['services']}", headers=h)
        ).status_code == 200


async def test_agent_sees_only_themself_supervisor_sees_all(
    client: httpx.AsyncClient, acme: tuple[dict[str, str], TenantWorld]
) -> None:
    _, w = acme
    users = (await client.get("/api/v1/users", headers=w.agent)).json()["items"]
    assert [u["username"] for u in users] == ["1001"]
    assert users[0]["skills"][0]["level"] == 7 and users[0]["has_sip_password"]
    r = await client.get(f"/api/v1/users/{w.ids['supervisor_user']}", headers=w.agent)
    assert_error(r, 404, "not_found")
    names = {
        u["username"]
        for u in (await client.get("/api/v1/users", headers=w.supervisor)).json()["items"]
    }
    assert names == {"boss", "sup", "1001"}


async def test_tenant_admin_limits(
    client: httpx.AsyncClient, acme: tuple[dict[str, str], TenantWorld]
) -> None:
    op, w = acme
    a = w.admin
    r = await client.post(
        "/api/v1/users", json={"username": "evil", "role": "platform_operator"}, headers=a
    )
    assert_error(r, 403, "forbidden")
    for path, body in (
        ("tenants", {"slug": "x", "name": "X"}),
        ("sites", {"name": "x", "roles": ["access"], "region": "r"}),
        ("numbers", {"number": "4000000000"}),
    ):
        assert_error(await client.post(f"/api/v1/{path}", json=body, headers=a), 403, "forbidden")
    # The admin routes their own number but cannot take it elsewhere or remove it.
    r = await client.patch(
        f"/api/v1/number-links/{w.ids['number-links']}", json={"ivr_digit": "1"}, headers=a
    )
    assert r.status_code == 200 and r.json()["ivr_digit"] == "1"
    assert_error(
        await client.delete(f"/api/v1/number-links/{w.ids['number-links']}", headers=a),
        403,
        "forbidden",
    )
    # Shared business centers are visible to tenants but only the operator changes them.
    shared = (
        await client.post("/api/v1/business-centers", json={"name": "National"}, headers=op)
    ).json()
    assert shared["tenant_id"] is None
    seen = {
        c["id"] for c in (await client.get("/api/v1/business-centers", headers=a)).json()["items"]
    }
    assert shared["id"] in seen
    r = await client.patch(
        f"/api/v1/business-centers/{shared['id']}", json={"name": "Mine"}, headers=a
    )
    assert_error(r, 403, "forbidden")
    # ... and a tenant's service may run in a shared center.
    r = await client.post(
        "/api/v1/services",
        json={"code": "x", "name": "X", "business_center_id": shared["id"]},
        headers=a,
    )
    assert r.status_code == 201


async def test_shared_number_between_tenants(
    platform: Platform, client: httpx.AsyncClient, acme: tuple[dict[str, str], TenantWorld]
) -> None:
    op, a = acme
    b = await build_tenant(client, op, "bravo", "4008009999")
    number_id = a.ids["numbers"]
    # One number serves a second tenant, told apart by the calling number.
    r = await client.post(
        "/api/v1/number-links",
        json={
            "number_id": number_id,
            "tenant_id": b.tenant_id,
            "service_id": b.ids["services"],
            "caller_prefix": "010",
        },
        headers=op,
    )
    assert r.status_code == 201, r.text
    # The same selector twice could never be told apart.
    r = await client.post(
        "/api/v1/number-links",
        json={"number_id": number_id, "tenant_id": b.tenant_id, "caller_prefix": "010"},
        headers=op,
    )
    assert_error(r, 409, "conflict")
    full = (await client.get(f"/api/v1/numbers/{number_id}", headers=op)).json()
    assert {link["tenant_id"] for link in full["links"]} == {a.tenant_id, b.tenant_id}
    for w in (a, b):
        seen = (await client.get(f"/api/v1/numbers/{number_id}", headers=w.admin)).json()
        assert [link["tenant_id"] for link in seen["links"]] == [w.tenant_id]


async def test_department_cycles_refused(
    client: httpx.AsyncClient, acme: tuple[dict[str, str], TenantWorld]
) -> None:
    _, w = acme
    parent = (
        await client.post("/api/v1/departments", json={"name": "Parent"}, headers=w.admin)
    ).json()
    child = (
        await client.post(
            "/api/v1/departments",
            json={"name": "Child", "parent_id": parent["id"]},
            headers=w.admin,
        )
    ).json()
    r = await client.patch(
        f"/api/v1/departments/{parent['id']}", json={"parent_id": child["id"]}, headers=w.admin
    )
    assert_error(r, 422, "invalid")
