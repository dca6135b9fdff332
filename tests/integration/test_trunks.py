"""Trunks: carriers and PBXs, with outbound credentials kept only as HA1."""

import hashlib

import httpx
from sqlalchemy import select

from telportal.app import Platform
from telportal.store.schema import AuditEntry, Trunk
from tests.integration.api_helpers import assert_error, login, make_operator
from tests.integration.world import build_tenant


async def test_trunk_secrets_validation_and_visibility(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    await make_operator(platform)
    op = await login(client, "root")
    w = await build_tenant(client, op, "acme", "4008001000")
    trunk = (await client.get(f"/api/v1/trunks/{w.ids['trunks']}", headers=w.admin)).json()
    assert trunk["has_password"] and trunk["inbound_addresses"] == ["198.51.100.0/24"]
    async with platform.db.read() as session:
        row = (await session.execute(select(Trunk))).scalar_one()
        audit = (
            (await session.execute(select(AuditEntry).where(AuditEntry.entity == "trunk")))
            .scalars()
            .all()
        )
    assert (
        row.auth_ha1_md5
        == hashlib.md5(b"acme:carrier.example:trunk-secret-1", usedforsecurity=False).hexdigest()
    )
    assert "trunk-secret-1" not in str([a.changes for a in audit])
    assert row.auth_ha1_md5 not in str([a.changes for a in audit])

    # Changing the realm invalidates the stored HA1 rather than keep a wrong one.
    r = await client.patch(
        f"/api/v1/trunks/{w.ids['trunks']}", json={"auth_realm": "other.example"}, headers=w.admin
    )
    assert r.status_code == 200 and not r.json()["has_password"]

    for body, field in (
        ({"name": "t2", "host": "h", "inbound_addresses": ["not-an-ip"]}, "inbound_addresses.0"),
        ({"name": "t3", "host": "h", "password": "longenough"}, "body"),
        ({"name": "t4", "host": "h", "port": 0}, "port"),
    ):
        r = await client.post("/api/v1/trunks", json=body, headers=w.admin)
        err = assert_error(r, 422, "invalid_request")
        assert err["details"][0]["field"] == field, err

    # A carrier found by DNS: no port, so its SRV records give servers and ports.
    r = await client.post(
        "/api/v1/trunks", json={"name": "srv", "host": "carrier.example", "port": None},
        headers=w.admin,
    )  # fmt: skip
    assert r.status_code == 201 and r.json()["port"] is None, r.text
    by_default = await client.post(
        "/api/v1/trunks", json={"name": "plain", "host": "carrier.example"}, headers=w.admin
    )
    assert by_default.json()["port"] == 5060
    r = await client.patch(
        f"/api/v1/trunks/{by_default.json()['id']}", json={"port": None}, headers=w.admin
    )
    assert r.status_code == 200 and r.json()["port"] is None, r.text
    for made in ("srv", "plain"):
        (trunk_id,) = [
            t["id"]
            for t in (await client.get("/api/v1/trunks", headers=w.admin)).json()["items"]
            if t["name"] == made
        ]
        r = await client.delete(f"/api/v1/trunks/{trunk_id}", headers=w.admin)
        assert r.status_code == 204

    # A platform trunk belongs to the operator: tenants do not see it.
    shared = (
        await client.post(
            "/api/v1/trunks", json={"name": "national", "host": "10.0.0.1"}, headers=op
        )
    ).json()
    assert shared["tenant_id"] is None
    assert_error(
        await client.get(f"/api/v1/trunks/{shared['id']}", headers=w.admin), 404, "not_found"
    )
    names = [
        t["name"] for t in (await client.get("/api/v1/trunks", headers=w.admin)).json()["items"]
    ]
    assert names == ["carrier"]
