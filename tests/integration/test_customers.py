"""Customers: identities in any format, lookups, timelines, merges, and their isolation."""

import httpx
import pytest
from sqlalchemy import func, select

from telportal.app import Platform
from telportal.calls_store import CallRecords
from telportal.clock import FakeClock
from telportal.crm.identities import IdentityKind, normalize
from telportal.errors import Invalid
from telportal.events import DataChanged
from telportal.store.schema import AuditEntry
from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld


@pytest.mark.parametrize(
    ("kind", "raw", "stored"),
    [
        (IdentityKind.PHONE, "+86 138-0013-8000", "+8613800138000"),
        (IdentityKind.PHONE, "008613800138000", "+8613800138000"),
        (IdentityKind.PHONE, "13800138000", "+8613800138000"),
        (IdentityKind.PHONE, "sip:13800138000@carrier.example;user=phone", "+8613800138000"),
        (IdentityKind.PHONE, "010 8888 6666", "+861088886666"),
        (IdentityKind.PHONE, "+1 (415) 555-0100", "+14155550100"),
        (IdentityKind.EMAIL, " Wang.Fang@Example.COM ", "wang.fang@example.com"),
        (IdentityKind.CHAT, "wechat:wxid_abc", "wechat:wxid_abc"),
    ],
)
def test_identities_are_normalised(kind: IdentityKind, raw: str, stored: str) -> None:
    assert normalize(kind, raw) == stored


@pytest.mark.parametrize(
    ("kind", "raw"), [(IdentityKind.PHONE, "call me"), (IdentityKind.EMAIL, "not-an-email")]
)
def test_bad_identities_are_refused(kind: IdentityKind, raw: str) -> None:
    with pytest.raises(Invalid, match="is not"):
        normalize(kind, raw)


async def test_lookup_timeline_merge_and_who_may_do_what(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    acme, bravo = tenants
    agent, sup = acme.agent, acme.supervisor
    events = platform.bus.subscribe("data")
    async with platform.db.read() as session:
        audited = await session.scalar(select(func.count()).select_from(AuditEntry))
    rev = (await client.get("/api/v1/config/revision", headers=acme.admin)).json()["revision"]

    r = await client.post(
        "/api/v1/customers",
        json={
            "name": "Wang Fang",
            "external_id": "CRM-0042",
            "importance": 4,
            "tags": ["gold"],
            "identities": [
                {"kind": "phone", "value": "+86 138 0013 8000"},
                {"kind": "email", "value": "Wang.Fang@Example.com"},
            ],
        },
        headers=agent,  # agents create customers as they work
    )
    assert r.status_code == 201, r.text
    wang = r.json()
    assert {(i["kind"], i["value"]) for i in wang["identities"]} == {
        ("phone", "+8613800138000"),
        ("email", "wang.fang@example.com"),
    }
    # Data, not configuration: audited and announced, but the revision stays.
    assert (await client.get("/api/v1/config/revision", headers=acme.admin)).json()[
        "revision"
    ] == rev
    async with platform.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == audited + 1
    event = events.get_nowait()
    assert isinstance(event, DataChanged) and event.entity == "customer"
    assert event.entity_id == wang["id"] and event.subject == f"data.{acme.tenant_id}.customer"

    for query in ("phone=13800138000", "phone=%2B8613800138000", "email=WANG.FANG@example.com",
                  "external_id=CRM-0042"):  # fmt: skip
        r = await client.get(f"/api/v1/customers/lookup?{query}", headers=agent)
        assert r.status_code == 200 and r.json()["id"] == wang["id"], (query, r.text)
    assert_error(
        await client.get("/api/v1/customers/lookup?phone=13999999999", headers=agent),
        404,
        "not_found",
    )
    assert_error(await client.get("/api/v1/customers/lookup", headers=agent), 422, "invalid")
    # The same number on another customer of the tenant is a conflict; another tenant
    # may know the same person independently.
    r = await client.post(
        "/api/v1/customers",
        json={"identities": [{"kind": "phone", "value": "13800138000"}]},
        headers=agent,
    )
    assert_error(r, 409, "conflict")
    r = await client.post(
        "/api/v1/customers",
        json={"name": "Wang F.", "identities": [{"kind": "phone", "value": "13800138000"}]},
        headers=bravo.agent,
    )
    assert r.status_code == 201
    bravo_wang = r.json()["id"]

    # A duplicate record from another channel, with its own history.
    dup = (
        await client.post(
            "/api/v1/customers",
            json={"name": "F. Wang", "tags": ["wechat"],
                  "identities": [{"kind": "chat", "value": "wechat:wxid_wf"},
                                 {"kind": "phone", "value": "13900001111"}]},
            headers=agent,
        )
    ).json()  # fmt: skip
    r = await client.post(
        f"/api/v1/customers/{dup['id']}/interactions",
        json={"kind": "purchase", "channel": "web", "summary": "Order 77 paid",
              "data": {"amount": 129.5}},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    calls = CallRecords(platform.db)
    await calls.start(acme.tenant_id, "c-1", site="s", direction="inbound",
                      caller="13800138000", called="4008001000")  # fmt: skip
    clock.advance(60)
    await calls.start(acme.tenant_id, "c-2", site="s", direction="inbound",
                      caller="13900001111", called="4008001000")  # fmt: skip

    merge_url = f"/api/v1/customers/{wang['id']}/merge"
    r = await client.post(merge_url, json={"duplicate_id": dup["id"]}, headers=agent)
    assert r.status_code == 403
    r = await client.post(
        f"/api/v1/customers/{wang['id']}/merge", json={"duplicate_id": dup["id"]}, headers=sup
    )
    assert r.status_code == 200, r.text
    merged = r.json()
    assert {i["value"] for i in merged["identities"]} >= {"wechat:wxid_wf", "+8613900001111"}
    assert merged["tags"] == ["gold", "wechat"]
    r = await client.get("/api/v1/customers/lookup?chat=wechat:wxid_wf", headers=agent)
    assert r.json()["id"] == wang["id"]  # the duplicate's identity now finds the survivor
    timeline = (await client.get(f"/api/v1/customers/{wang['id']}/timeline", headers=agent)).json()
    # Both records' histories: the survivor's call, the duplicate's call and purchase.
    assert sorted(e["kind"] for e in timeline) == ["call", "call", "purchase"], timeline
    assert timeline[0]["kind"] == "call" and "13900001111" in timeline[0]["summary"]
    purchase = next(e for e in timeline if e["kind"] == "purchase")
    assert purchase["data"] == {"amount": 129.5} and purchase["channel"] == "web"
    r = await client.post(
        f"/api/v1/customers/{wang['id']}/merge", json={"duplicate_id": dup["id"]}, headers=sup
    )
    assert_error(r, 409, "conflict")  # already merged

    # Another tenant's customer does not exist for acme, on every route.
    for path in (f"/api/v1/customers/{bravo_wang}", f"/api/v1/customers/{bravo_wang}/timeline"):
        assert_error(await client.get(path, headers=sup), 404, "not_found")
    r = await client.post(
        f"/api/v1/customers/{bravo_wang}/interactions", json={"kind": "note"}, headers=sup
    )
    assert_error(r, 404, "not_found")
    r = await client.post(
        f"/api/v1/customers/{wang['id']}/merge", json={"duplicate_id": bravo_wang}, headers=sup
    )
    assert_error(r, 404, "not_found")
    r = await client.get("/api/v1/customers/lookup?phone=13800138000", headers=bravo.agent)
    assert r.json()["id"] == bravo_wang
    # Agents do not delete customers.
    assert_error(await client.delete(f"/api/v1/customers/{wang['id']}", headers=agent), 403,
                 "forbidden")  # fmt: skip
