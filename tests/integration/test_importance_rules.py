"""Customers' importance set by the tenant's rules (issue 7), through the API.

Rules are configuration (`/importance-rules`); a customer's `importance` is the
effective level, `importance_manual` the level set by hand (a floor) and
`importance_rule` what gave the level. Purchases pushed as interactions make the
yearly spend.
"""

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.crm.identities import IdentityKind
from telportal.crm.importance import BATCH
from telportal.crm.lookup import CustomerLookup
from telportal.events import ConfigChanged, DataChanged
from telportal.store.schema import AuditEntry, Customer
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.api_helpers import assert_error, create, login
from tests.integration.world import TenantWorld

CUSTOMERS = "/api/v1/customers"
RULES = "/api/v1/importance-rules"


async def _customer(client: httpx.AsyncClient, who: dict[str, str], cid: str) -> dict[str, Any]:
    r = await client.get(f"{CUSTOMERS}/{cid}", headers=who)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def _level(client: httpx.AsyncClient, who: dict[str, str], cid: str) -> tuple[Any, ...]:
    c = await _customer(client, who, cid)
    return c["importance"], c["importance_rule"], c["importance_manual"]


async def _purchase(
    client: httpx.AsyncClient, who: dict[str, str], cid: str, amount: Any, **extra: Any
) -> None:
    r = await client.post(
        f"{CUSTOMERS}/{cid}/interactions",
        json={"kind": "purchase", "summary": "order", "data": {"amount": amount}, **extra},
        headers=who,
    )
    assert r.status_code == 201, r.text


async def test_a_spend_rule_raises_a_customer_once_their_purchases_reach_it(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    acme, bravo = tenants
    rule = await create(
        client, acme.admin, "importance-rules",
        {"name": "big spenders", "level": 4, "min_yearly_spend": 10000},
    )  # fmt: skip
    assert (rule["level"], rule["min_yearly_spend"], rule["any_tags"]) == (4, 10000, [])
    assert rule["enabled"] is True and rule["tenant_id"] == acme.tenant_id
    wang = await create(
        client, acme.agent, "customers",
        {"name": "Wang Fang", "identities": [{"kind": "phone", "value": "13800138000"}]},
    )  # fmt: skip
    assert (wang["importance"], wang["importance_rule"], wang["importance_manual"]) == (0, "", None)
    # The same person at bravo buys just as much; bravo has no such rule.
    bravo_wang = await create(client, bravo.agent, "customers", {"name": "Wang Fang"})

    # A purchase older than a year, other kinds of interaction and malformed amounts
    # are not yearly spend.
    year_ago = clock.now() - timedelta(days=366)
    await _purchase(client, acme.admin, wang["id"], 50_000, at=year_ago.isoformat())
    await _purchase(client, acme.admin, wang["id"], "a lot")
    r = await client.post(
        f"{CUSTOMERS}/{wang['id']}/interactions",
        json={"kind": "complaint", "data": {"amount": 99_999}},
        headers=acme.admin,
    )
    assert r.status_code == 201
    await _purchase(client, acme.admin, wang["id"], 6000)
    await _purchase(client, bravo.admin, bravo_wang["id"], 20_000)
    assert await _level(client, acme.agent, wang["id"]) == (0, "", None)

    events = platform.bus.subscribe("data")
    await _purchase(client, acme.admin, wang["id"], "4000.00")  # money often comes as text
    assert await _level(client, acme.agent, wang["id"]) == (4, rule["id"], None)
    # Announced and audited like any change to a customer...
    seen = []
    while (event := events.get_nowait()) is not None:
        seen.append(event)
    assert any(
        isinstance(e, DataChanged) and e.entity == "customer" and e.entity_id == wang["id"]
        for e in seen
    ), seen
    async with platform.db.read() as session:
        audits = (
            await session.execute(
                select(AuditEntry.changes).where(
                    AuditEntry.entity == "customer", AuditEntry.entity_id == wang["id"]
                )
            )
        ).scalars()
        assert {"importance": 4, "importance_rule": rule["id"]} in [a.get("after") for a in audits]
    # ... and on the customer's timeline, with the rule's name.
    timeline = (await client.get(f"{CUSTOMERS}/{wang['id']}/timeline", headers=acme.agent)).json()
    entry = next(e for e in timeline if e["kind"] == "importance")
    assert entry["data"] == {"from": 0, "to": 4, "by": rule["id"], "rule_name": "big spenders"}
    assert "big spenders" in entry["summary"]

    # What the screen pop and the ACD read (the lookup by the caller's number) is the
    # level the rule gave.
    r = await client.get(f"{CUSTOMERS}/lookup?phone=+8613800138000", headers=acme.agent)
    assert r.json()["importance"] == 4
    # Bravo's customer spent as much, but acme's rule is not bravo's.
    assert await _level(client, bravo.agent, bravo_wang["id"]) == (0, "", None)

    # A duplicate's purchases count for the record it is merged into.
    li = await create(client, acme.agent, "customers", {"name": "Li Lei"})
    li_dup = await create(client, acme.agent, "customers", {"name": "Li L."})
    await _purchase(client, acme.admin, li["id"], 5000)
    await _purchase(client, acme.admin, li_dup["id"], 5000)
    assert (await _level(client, acme.agent, li["id"]))[0] == 0
    r = await client.post(
        f"{CUSTOMERS}/{li['id']}/merge", json={"duplicate_id": li_dup["id"]},
        headers=acme.supervisor,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["importance"], r.json()["importance_rule"]) == (4, rule["id"])

    # A year on, the purchases have left the window: the next recompute lowers them
    # (a change of the rules recomputes every customer).
    clock.advance(366 * 86400)
    admin = await login(client, "boss@acme")  # the tokens expired meanwhile
    r = await client.patch(f"{RULES}/{rule['id']}", json={"name": "top"}, headers=admin)
    assert r.status_code == 200, r.text
    assert await _level(client, admin, wang["id"]) == (0, "", None)
    assert await _level(client, admin, li["id"]) == (0, "", None)


async def test_tag_rules_and_levels_set_by_hand(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    agent = acme.agent
    press = await create(
        client, acme.admin, "importance-rules",
        {"name": "journalists", "level": 3, "any_tags": ["journalist", "regulator"]},
    )  # fmt: skip

    tagged = await create(client, agent, "customers", {"name": "A", "tags": ["journalist"]})
    assert (tagged["importance"], tagged["importance_rule"]) == (3, press["id"])
    # A level 5 set by hand is not lowered by a rule of 3...
    vip = await create(
        client, agent, "customers", {"name": "B", "importance": 5, "tags": ["regulator"]}
    )
    assert (vip["importance"], vip["importance_rule"], vip["importance_manual"]) == (5, "manual", 5)
    # ... a level 1 is raised, and comes back when the rule no longer applies.
    low = await create(
        client, agent, "customers", {"name": "C", "importance": 1, "tags": ["journalist"]}
    )
    assert (low["importance"], low["importance_rule"], low["importance_manual"]) == (
        3, press["id"], 1,
    )  # fmt: skip
    r = await client.patch(f"{CUSTOMERS}/{low['id']}", json={"tags": []}, headers=agent)
    assert (r.json()["importance"], r.json()["importance_rule"]) == (1, "manual")
    # Tagging a customer later raises them.
    plain = await create(client, agent, "customers", {"name": "D"})
    assert plain["importance"] == 0
    r = await client.patch(
        f"{CUSTOMERS}/{plain['id']}", json={"tags": ["vip", "regulator"]}, headers=agent
    )
    assert (r.json()["importance"], r.json()["importance_rule"]) == (3, press["id"])
    # Clearing the hand-set level hands the customer to the rules; setting one
    # above the rules' wins.
    r = await client.patch(f"{CUSTOMERS}/{vip['id']}", json={"importance": None}, headers=agent)
    assert await _level(client, agent, vip["id"]) == (3, press["id"], None)
    r = await client.patch(f"{CUSTOMERS}/{vip['id']}", json={"importance": 4}, headers=agent)
    assert await _level(client, agent, vip["id"]) == (4, "manual", 4)
    # The importance fields other than `importance` are the server's to keep.
    r = await client.patch(
        f"{CUSTOMERS}/{vip['id']}", json={"importance_rule": "manual"}, headers=agent
    )
    assert_error(r, 422, "invalid_request")
    timeline = (await client.get(f"{CUSTOMERS}/{vip['id']}/timeline", headers=agent)).json()
    moves = [(e["data"]["from"], e["data"]["to"]) for e in timeline if e["kind"] == "importance"]
    assert moves == [(3, 4), (5, 3)]  # newest first


async def test_changing_or_deleting_a_rule_recomputes_only_that_tenants_customers(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    mine = [
        (await create(client, acme.agent, "customers", {"name": f"gold {i}", "tags": ["gold"]}))[
            "id"
        ]
        for i in range(3)
    ]
    theirs = (await create(client, bravo.agent, "customers", {"name": "b", "tags": ["gold"]}))["id"]
    world_customer = acme.ids["customers"]  # importance 3, set by hand
    rev = (await client.get("/api/v1/config/revision", headers=acme.admin)).json()["revision"]
    configs = platform.bus.subscribe("config")

    rule = await create(
        client, acme.admin, "importance-rules", {"name": "gold", "level": 2, "any_tags": ["gold"]}
    )
    assert [await _level(client, acme.agent, c) for c in mine] == [(2, rule["id"], None)] * 3
    # Configuration: the revision moves and a config event goes out.
    assert (await client.get("/api/v1/config/revision", headers=acme.admin)).json()[
        "revision"
    ] == rev + 1
    event = configs.get_nowait()
    assert isinstance(event, ConfigChanged) and event.entity == "importance_rule"

    r = await client.patch(f"{RULES}/{rule['id']}", json={"level": 5}, headers=acme.admin)
    assert r.status_code == 200 and r.json()["level"] == 5
    assert [(await _level(client, acme.agent, c))[0] for c in mine] == [5, 5, 5]
    assert await _level(client, acme.agent, world_customer) == (3, "manual", 3)  # not gold

    r = await client.patch(f"{RULES}/{rule['id']}", json={"enabled": False}, headers=acme.admin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert [await _level(client, acme.agent, c) for c in mine] == [(0, "", None)] * 3
    r = await client.patch(
        f"{RULES}/{rule['id']}", json={"enabled": True, "any_tags": ["gold", "gold", "silver"]},
        headers=acme.admin,
    )  # fmt: skip
    assert r.json()["any_tags"] == ["gold", "silver"]
    assert [(await _level(client, acme.agent, c))[0] for c in mine] == [5, 5, 5]

    # Another tenant's admin can neither see nor change nor delete the rule.
    for method in ("GET", "PATCH", "DELETE"):
        body = {"level": 1} if method == "PATCH" else None
        r = await client.request(method, f"{RULES}/{rule['id']}", json=body, headers=bravo.admin)
        assert_error(r, 404, "not_found")
    listed = (await client.get(RULES, headers=bravo.admin)).json()["items"]
    assert rule["id"] not in {x["id"] for x in listed}
    # Bravo's own rule for the same tag touches only bravo's customers.
    await create(
        client, bravo.admin, "importance-rules", {"name": "gold", "level": 1, "any_tags": ["gold"]}
    )
    assert (await _level(client, bravo.agent, theirs))[0] == 1
    assert [(await _level(client, acme.agent, c))[0] for c in mine] == [5, 5, 5]

    r = await client.delete(f"{RULES}/{rule['id']}", headers=acme.admin)
    assert r.status_code == 204
    assert [await _level(client, acme.agent, c) for c in mine] == [(0, "", None)] * 3
    assert await _level(client, acme.agent, world_customer) == (3, "manual", 3)
    assert (await _level(client, bravo.agent, theirs))[0] == 1


async def test_many_customers_are_recomputed_in_batches(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    """More customers than one batch: every one is reached, each exactly once."""
    acme, _ = tenants
    count = BATCH * 2 + 7
    async with platform.db.write(Scope.system("test")) as uow:
        customers = platform.resource("customers")
        for i in range(count):
            await customers.create(
                uow,
                s.CustomerCreate(
                    tenant_id=acme.tenant_id, name=f"c{i}", tags=["gold"] if i % 2 else []
                ),
            )
    rule = await create(
        client, acme.admin, "importance-rules", {"name": "gold", "level": 2, "any_tags": ["gold"]}
    )
    async with platform.db.read() as session:
        levels = dict(
            (
                await session.execute(
                    select(Customer.name, Customer.importance).where(
                        Customer.tenant_id == acme.tenant_id, Customer.name.like("c%")
                    )
                )
            ).all()
        )
    assert len(levels) == count
    assert all(level == (2 if int(name[1:]) % 2 else 0) for name, level in levels.items())
    async with platform.db.read() as session:
        audited = (
            (
                await session.execute(
                    select(AuditEntry.entity_id).where(
                        AuditEntry.entity == "customer",
                        AuditEntry.tenant_id == acme.tenant_id,
                        AuditEntry.action == "updated",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(audited) == count // 2 == len(set(audited))
    assert rule["level"] == 2


async def test_bad_rules_are_refused_naming_the_field(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    good = {"name": "ok", "level": 3}
    for change, field in (
        ({"level": 0}, "level"),
        ({"level": 6}, "level"),
        ({"level": "high"}, "level"),
        ({"name": ""}, "name"),
        ({"min_yearly_spend": -1}, "min_yearly_spend"),
        ({"min_yearly_spend": "lots"}, "min_yearly_spend"),
        ({"min_yearly_spend": 10.005}, "min_yearly_spend"),
        ({"any_tags": [""]}, "any_tags.0"),
        ({"any_tags": "gold"}, "any_tags"),
        ({"colour": "red"}, "colour"),
    ):
        r = await client.post(RULES, json={**good, **change}, headers=acme.admin)
        problem = assert_error(r, 422, "invalid_request")
        assert [d["field"] for d in problem["details"]] == [field], problem
        assert problem["message"].startswith(field + ":"), problem
    r = await client.post(RULES, json={"level": 3}, headers=acme.admin)
    assert assert_error(r, 422, "invalid_request")["details"][0]["field"] == "name"
    rule = await create(client, acme.admin, "importance-rules", good)
    for field in ("level", "name", "any_tags", "enabled"):
        r = await client.patch(f"{RULES}/{rule['id']}", json={field: None}, headers=acme.admin)
        assert assert_error(r, 422, "invalid")["message"] == f"{field}: may not be null"
    # The spend criterion may be cleared; decimals are kept exactly.
    r = await client.patch(
        f"{RULES}/{rule['id']}", json={"min_yearly_spend": "12345.67"}, headers=acme.admin
    )
    assert r.json()["min_yearly_spend"] == 12345.67
    r = await client.patch(
        f"{RULES}/{rule['id']}", json={"min_yearly_spend": None}, headers=acme.admin
    )
    assert r.status_code == 200 and r.json()["min_yearly_spend"] is None
    # Names are unique per tenant; rules are a tenant admin's to write.
    assert_error(await client.post(RULES, json=good, headers=acme.admin), 409, "conflict")
    r = await client.post(RULES, json={"name": "x", "level": 2}, headers=acme.supervisor)
    assert_error(r, 403, "forbidden")
    assert (await client.get(RULES, headers=acme.agent)).status_code == 200


async def test_a_customer_looked_up_in_the_enterprise_system_gets_the_rules_level(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    answers = {
        "+8613900000001": {"id": "E-1", "name": "Tagged", "tags": ["gold"]},
        "+8613900000002": {"id": "E-2", "name": "Low", "importance": 1, "tags": ["gold"]},
        "+8613900000003": {"id": "E-3", "name": "High", "importance": 5, "tags": ["gold"]},
    }

    def enterprise(request: httpx.Request) -> httpx.Response:
        found = answers.get(request.url.params["phone"])
        return httpx.Response(200, json=found) if found else httpx.Response(404)

    r = await client.put(
        "/api/v1/crm-settings",
        json={"lookup_url": "https://crm.example/customers?phone={value}"},
        headers=acme.admin,
    )
    assert r.status_code == 200, r.text
    rule = await create(
        client, acme.admin, "importance-rules", {"name": "gold", "level": 4, "any_tags": ["gold"]}
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(enterprise)) as http:
        lookup = CustomerLookup(platform.db, platform.resource("customers"), platform.clock, http)
        got = {}
        for phone in answers:
            found = await lookup.find(acme.tenant_id, IdentityKind.PHONE, phone)
            assert found is not None
            got[found.name] = (found.importance, found.importance_rule, found.importance_manual)
    assert got == {
        "Tagged": (4, rule["id"], None),
        "Low": (4, rule["id"], 1),
        "High": (5, "manual", 5),
    }


async def test_a_level_given_for_spend_falls_once_the_purchases_are_a_year_old(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    """Nothing about the customer changes, only time passes: the sweep finds the
    purchase that left the yearly window and lowers the level; a purchase of a record
    merged into the customer counts for the customer; another tenant is untouched."""
    acme, bravo = tenants
    sweeper = platform.importance
    assert sweeper is not None
    for world in (acme, bravo):
        await create(client, world.admin, "importance-rules",
                     {"name": "big spenders", "level": 4, "min_yearly_spend": 10000})  # fmt: skip
    wang = await create(client, acme.agent, "customers", {"name": "Wang Fang"})
    li = await create(client, acme.agent, "customers", {"name": "Li Lei"})
    dup = await create(client, acme.agent, "customers", {"name": "Li Lei (old record)"})
    other = await create(client, bravo.agent, "customers", {"name": "Wang Fang"})
    # Bought a year ago less an hour: still within the yearly window.
    bought = (clock.now() - timedelta(days=365) + timedelta(hours=1)).isoformat()
    await _purchase(client, acme.admin, wang["id"], 12_000, at=bought)
    await _purchase(client, acme.admin, dup["id"], 15_000, at=bought)
    r = await client.post(f"{CUSTOMERS}/{li['id']}/merge", json={"duplicate_id": dup["id"]},
                          headers=acme.admin)  # fmt: skip
    assert r.status_code == 200, r.text
    await _purchase(client, bravo.admin, other["id"], 20_000, at=bought)
    await _purchase(client, acme.admin, wang["id"], 3_000)  # today, too little on its own
    assert (await _level(client, acme.agent, wang["id"]))[0] == 4
    assert (await _level(client, acme.agent, li["id"]))[0] == 4  # its duplicate's purchase
    assert (await _level(client, bravo.agent, other["id"]))[0] == 4

    assert await sweeper.sweep_due() == []  # nothing aged out yet
    clock.advance(2 * 3600)  # those purchases are now a year and an hour old
    changes = await sweeper.sweep_due()
    assert sorted((c.customer_id, c.before, c.after) for c in changes) == sorted(
        [(wang["id"], 4, 0), (li["id"], 4, 0), (other["id"], 4, 0)]
    )
    assert await _level(client, acme.agent, wang["id"]) == (0, "", None)
    assert await _level(client, acme.agent, li["id"]) == (0, "", None)
    timeline = (await client.get(f"{CUSTOMERS}/{wang['id']}/timeline", headers=acme.agent)).json()
    assert any(e["kind"] == "importance" and "4 -> 0" in e["summary"] for e in timeline)
    # Bravo's customer bought the same day: lowered by the sweep of bravo's own rule.
    assert await _level(client, bravo.agent, other["id"]) == (0, "", None)
    assert await sweeper.sweep_due() == []  # each purchase ages out once
