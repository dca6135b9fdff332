"""A small world of two tenants, each with one of every object, built through the API."""

from dataclasses import dataclass, field

import httpx

from telportal.app import Platform
from telportal.calls_store import CallRecords
from tests.integration.api_helpers import PASSWORD, create, login


def flow_text(tenant: str, greeting: str = "Welcome.", *, last: str = "bye") -> str:
    """A small valid flow for the tenant with this slug."""
    return f"""flow: main
version: 1
tenant: {tenant}
steps:
  hello:
    type: play
    prompt: {greeting}
    next: {last}
  {last}:
    type: hangup
"""


@dataclass
class TenantWorld:
    slug: str
    tenant_id: str
    ids: dict[str, str] = field(default_factory=dict)
    admin: dict[str, str] = field(default_factory=dict)
    supervisor: dict[str, str] = field(default_factory=dict)
    agent: dict[str, str] = field(default_factory=dict)


async def build_tenant(
    client: httpx.AsyncClient, op: dict[str, str], slug: str, number: str
) -> TenantWorld:
    tenant = await create(client, op, "tenants", {"slug": slug, "name": slug.title()})
    w = TenantWorld(slug, tenant["id"])
    w.ids["tenants"] = tenant["id"]
    tid = tenant["id"]
    admin = await create(
        client,
        op,
        "users",
        {"tenant_id": tid, "username": "boss", "role": "tenant_admin", "password": PASSWORD},
    )
    w.admin = await login(client, f"boss@{slug}")
    # From here on the tenant's own admin builds the tenant, as in real use.
    a = w.admin
    center = await create(client, a, "business-centers", {"name": f"{slug} center"})
    service = await create(
        client,
        a,
        "services",
        {"code": "hotline", "name": "Hotline", "business_center_id": center["id"]},
    )
    dept = await create(client, a, "departments", {"name": "Care"})
    skill = await create(client, a, "skills", {"name": "billing"})
    sup = await create(
        client,
        a,
        "users",
        {
            "username": "sup",
            "role": "supervisor",
            "agent_kinds": ["supervisor"],
            "password": PASSWORD,
        },
    )
    agent = await create(
        client,
        a,
        "users",
        {
            "username": "1001",
            "role": "agent",
            "agent_kinds": ["ordinary", "mobile"],
            "extension": "1001",
            "mobile_number": "13800000000",
            "department_id": dept["id"],
            "password": PASSWORD,
            "sip_password": "sip-secret-1",
            "skills": [{"skill_id": skill["id"], "level": 7}],
        },
    )
    queue = await create(
        client,
        a,
        "queues",
        {"service_id": service["id"], "name": "billing", "member_ids": [agent["id"]]},
    )
    key = await create(client, a, "api-keys", {"name": "crm", "role": "supervisor"})
    trunk = await create(
        client,
        a,
        "trunks",
        {
            "name": "carrier",
            "host": "sip.carrier.example",
            "inbound_addresses": ["198.51.100.0/24"],
            "username": slug,
            "auth_realm": "carrier.example",
            "password": "trunk-secret-1",
        },
    )
    customer = await create(
        client,
        a,
        "customers",
        {
            "name": f"{slug} customer",
            "importance": 3,
            "identities": [{"kind": "phone", "value": "+86 139 0000 0000"}],
        },
    )
    # A rule no customer of the world meets (nobody has the tag): levels stay as set.
    rule = await create(
        client, a, "importance-rules", {"name": "press", "level": 4, "any_tags": ["press"]}
    )
    num = await create(client, op, "numbers", {"number": number})
    link = await create(
        client,
        op,
        "number-links",
        {"number_id": num["id"], "tenant_id": tid, "service_id": service["id"]},
    )
    w.ids.update(
        {
            "business-centers": center["id"],
            "services": service["id"],
            "departments": dept["id"],
            "skills": skill["id"],
            "users": agent["id"],
            "queues": queue["id"],
            "api-keys": key["id"],
            "numbers": num["id"],
            "number-links": link["id"],
            "trunks": trunk["id"],
            "customers": customer["id"],
            "importance-rules": rule["id"],
        }
    )
    flow = await create(
        client, a, f"services/{service['id']}/flows", {"yaml": flow_text(slug), "note": "first"}
    )
    w.ids["flows"] = flow["id"]
    w.ids["admin_user"] = admin["id"]
    w.ids["supervisor_user"] = sup["id"]
    w.supervisor = await login(client, f"sup@{slug}")
    w.agent = await login(client, f"1001@{slug}")
    return w


async def record_call(
    platform: Platform, w: TenantWorld, call_id: str = "call-1", caller: str = "13900000000"
) -> str:
    """A finished call to the tenant's service, recorded as the call layer records it."""
    calls = CallRecords(platform.db)
    record_id = await calls.start(
        w.tenant_id,
        call_id,
        site="site-1",
        direction="inbound",
        caller=caller,
        called="4008000000",
        service_id=w.ids["services"],
    )
    await calls.finish(w.tenant_id, call_id, end_reason="caller hung up")
    w.ids["calls"] = record_id
    return record_id
