"""Bad requests get clear JSON errors and leave everything else working."""

import httpx
import pytest

from telportal.app import Platform
from telportal.clock import FakeClock
from tests.integration.api_helpers import assert_error, create, login, make_operator


@pytest.fixture
async def op(platform: Platform, client: httpx.AsyncClient) -> dict[str, str]:
    await make_operator(platform)
    return await login(client, "root")


async def test_malformed_bodies(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    h = {**op, "Content-Type": "application/json"}
    r = await client.post("/api/v1/tenants", content=b'{"slug": "a",', headers=h)
    body = assert_error(r, 422, "invalid_request")
    assert "not valid JSON" in body["message"]
    r = await client.post("/api/v1/tenants", content=b"[1, 2]", headers=h)
    assert_error(r, 422, "invalid_request")
    r = await client.post(
        "/api/v1/tenants", json={"slug": "Bad Slug!", "name": "x", "colour": "red"}, headers=op
    )
    body = assert_error(r, 422, "invalid_request")
    fields = {d["field"] for d in body["details"]}
    assert fields == {"slug", "colour"}
    assert "colour: unknown field" in body["message"]
    r = await client.post(
        "/api/v1/tenants", json={"slug": "ok", "name": "x", "enabled": "maybe"}, headers=op
    )
    assert assert_error(r, 422, "invalid_request")["details"][0]["field"] == "enabled"


async def test_bad_query_parameters(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    for q in ("limit=0", "limit=501", "limit=abc", "offset=-1"):
        r = await client.get(f"/api/v1/tenants?{q}", headers=op)
        body = assert_error(r, 422, "invalid_request")
        assert body["details"][0]["field"] in ("limit", "offset")


async def test_unknown_route_method_and_id(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    assert_error(await client.get("/api/v1/nothing-here", headers=op), 404, "not_found")
    assert_error(await client.put("/api/v1/tenants", headers=op), 405, "method_not_allowed")
    r = await client.get("/api/v1/tenants/00000000-0000-0000-0000-000000000000", headers=op)
    assert assert_error(r, 404, "not_found")["message"] == "tenant not found"


async def test_authentication_errors(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/tenants")
    assert_error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"
    for bad in ("Bearer nonsense", "Bearer tpt_forged", "Bearer tpk_forged", "Basic abc"):
        assert_error(
            await client.get("/api/v1/tenants", headers={"Authorization": bad}), 401, "unauthorized"
        )
    r = await client.post(
        "/api/v1/auth/token", content=b"x", headers={"Content-Type": "text/plain"}
    )
    assert_error(r, 415, "unsupported_media_type")
    r = await client.post("/api/v1/auth/token", json={"username": "x"})
    assert "password" in assert_error(r, 422, "invalid_request")["message"]


async def test_conflicts_and_still_working(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    r = await client.post("/api/v1/tenants", json={"slug": "acme", "name": "Again"}, headers=op)
    assert_error(r, 409, "conflict")
    # The failed write left nothing half-done, and the next write works.
    tenants = (await client.get("/api/v1/tenants", headers=op)).json()
    assert [t["name"] for t in tenants["items"]] == ["Acme"]
    await create(client, op, "tenants", {"slug": "beta", "name": "Beta"})


async def test_in_use_objects_cannot_be_deleted(
    client: httpx.AsyncClient, op: dict[str, str]
) -> None:
    t = await create(client, op, "tenants", {"slug": "acme", "name": "Acme"})
    bc = await create(client, op, "business-centers", {"tenant_id": t["id"], "name": "BC"})
    await create(
        client,
        op,
        "services",
        {"tenant_id": t["id"], "code": "s", "name": "S", "business_center_id": bc["id"]},
    )
    r = await client.delete(f"/api/v1/business-centers/{bc['id']}", headers=op)
    assert "still in use" in assert_error(r, 409, "conflict")["message"]


async def test_operator_must_name_the_tenant(client: httpx.AsyncClient, op: dict[str, str]) -> None:
    r = await client.post("/api/v1/skills", json={"name": "x"}, headers=op)
    assert assert_error(r, 422, "invalid")["message"].startswith("tenant_id:")
    r = await client.post("/api/v1/skills", json={"name": "x", "tenant_id": "nope"}, headers=op)
    assert assert_error(r, 422, "invalid")["message"] == "tenant_id: no such tenant"


async def test_pagination(client: httpx.AsyncClient, op: dict[str, str], clock: FakeClock) -> None:
    for i in range(7):
        await create(client, op, "tenants", {"slug": f"t{i}", "name": f"T{i}"})
        clock.advance(1)
    for i in range(7, 12):  # created in the same instant: order among them is by id
        await create(client, op, "tenants", {"slug": f"t{i}", "name": f"T{i}"})
    seen = []
    for offset in (0, 5, 10):
        page = (await client.get(f"/api/v1/tenants?limit=5&offset={offset}", headers=op)).json()
        assert page["total"] == 12 and page["limit"] == 5 and page["offset"] == offset
        seen += [t["slug"] for t in page["items"]]
    assert seen[:7] == [f"t{i}" for i in range(7)]
    assert sorted(seen[7:]) == sorted(f"t{i}" for i in range(7, 12))
    assert len(seen) == 12


async def test_openapi_and_health(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    assert doc["info"]["title"] == "Telportal API"
    for path in (
        "/api/v1/auth/token",
        "/api/v1/tenants",
        "/api/v1/services/{item_id}",
        "/api/v1/audit",
    ):
        assert path in doc["paths"]
    assert "UserCreate" in doc["components"]["schemas"]
    assert "password" not in doc["components"]["schemas"]["UserOut"]["properties"]
    r = await client.get("/healthz")
    assert r.status_code == 200 and r.json()["database"] == "ok"
