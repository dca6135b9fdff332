"""Finding customers by part of their name, as agents do when a caller gives a name."""

import httpx

from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld


async def test_search_by_name(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    ids = {}
    for name in ("Wang Fang", "Fang Li", "王芳", "Li_Lei", "LiXLei"):
        r = await client.post("/api/v1/customers", json={"name": name}, headers=acme.agent)
        assert r.status_code == 201, r.text
        ids[name] = r.json()["id"]
    await client.post("/api/v1/customers", json={"name": "Fang Bravo"}, headers=bravo.agent)

    async def names(q: str, headers: dict[str, str]) -> list[str]:
        r = await client.get("/api/v1/customers/search", params={"q": q}, headers=headers)
        assert r.status_code == 200, r.text
        return [c["name"] for c in r.json()]

    # Names that start with it first, any case; never another tenant's.
    assert await names("fang", acme.agent) == ["Fang Li", "Wang Fang"]
    assert await names("王", acme.agent) == ["王芳"]
    assert await names("i_l", acme.agent) == ["Li_Lei"]  # "_" is a character, not a wildcard
    assert await names("fang", bravo.agent) == ["Fang Bravo"]
    # A merged duplicate is not offered.
    merge = f"/api/v1/customers/{ids['Wang Fang']}/merge"
    r = await client.post(merge, json={"duplicate_id": ids["Fang Li"]}, headers=acme.supervisor)
    assert r.status_code == 200, r.text
    assert await names("fang", acme.agent) == ["Wang Fang"]
    r = await client.get("/api/v1/customers/search", params={"q": " "}, headers=acme.agent)
    assert_error(r, 422, "invalid")
