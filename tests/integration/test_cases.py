"""Cases through the API: from a call, through the lifecycle, SLA alerts across a restart."""

import httpx

from telportal.app import Platform
from telportal.calls_store import CallRecords
from telportal.clock import FakeClock
from telportal.crm.cases import CaseDesk
from telportal.events import CaseAlert
from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld


async def test_a_case_opened_from_a_call_links_the_call_and_the_customer(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    calls = CallRecords(platform.db)
    record_id = await calls.start(
        acme.tenant_id, "call-77@carrier", site="s", direction="inbound",
        caller="13900000000", called="4008001000", service_id=acme.ids["services"],
    )  # fmt: skip
    # The world's customer owns +86 139 0000 0000: the caller.
    r = await client.post(
        "/api/v1/cases",
        json={"subject": "Card blocked", "category": "cards", "urgency": "high",
              "call_id": "call-77@carrier"},
        headers=acme.agent,
    )  # fmt: skip
    assert r.status_code == 201, r.text
    case = r.json()
    assert (case["number"], case["state"], case["channel"]) == (1, "new", "voice")
    assert case["call_record_id"] == record_id
    assert case["customer_id"] == acme.ids["customers"]
    assert case["service_id"] == acme.ids["services"]
    timeline = (
        await client.get(f"/api/v1/customers/{acme.ids['customers']}/timeline", headers=acme.agent)
    ).json()
    kinds = {e["kind"]: e for e in timeline}
    assert kinds["case"]["ref"] == case["id"] and "Card blocked" in kinds["case"]["summary"]
    assert kinds["call"]["ref"] == record_id
    r = await client.post("/api/v1/cases", json={"subject": "x", "call_id": "nope"},
                          headers=acme.agent)  # fmt: skip
    assert_error(r, 422, "invalid")

    # The caller rings again about it: the agent notes the new call on the open case.
    again = await calls.start(
        acme.tenant_id, "call-78@carrier", site="s", direction="inbound",
        caller="13900000000", called="4008001000",
    )  # fmt: skip
    note = f"/api/v1/cases/{case['id']}/note"
    r = await client.post(note, json={"text": "Called again", "call_id": "call-78@carrier"},
                          headers=acme.agent)  # fmt: skip
    assert r.status_code == 200, r.text
    history = (await client.get(f"/api/v1/cases/{case['id']}/history", headers=acme.agent)).json()
    assert history[-1]["details"] == {"text": "Called again", "call_record_id": again}
    r = await client.post(note, json={"text": "x", "call_id": "nope"}, headers=acme.agent)
    assert_error(r, 422, "invalid")
    r = await client.post(f"/api/v1/cases/{case['id']}/start",
                          json={"call_id": "call-78@carrier"}, headers=acme.agent)  # fmt: skip
    assert_error(r, 422, "invalid")


async def test_lifecycle_history_and_isolation(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    agent = acme.agent
    case = (await client.post("/api/v1/cases", json={"subject": "Refund"}, headers=agent)).json()
    base = f"/api/v1/cases/{case['id']}"
    steps = [
        ("assign", {"assignee": "1001"}, "assigned"),
        ("start", None, "in_progress"),
        ("respond", {"text": "We are on it"}, "in_progress"),
        ("wait", {"reason": "bank statement"}, "waiting_on_customer"),
        ("customer-replied", {"channel": "email"}, "in_progress"),
        ("resolve", {"resolution": "Refunded"}, "resolved"),
        ("feedback", {"score": 5, "outcome": "happy"}, "feedback_received"),
        ("close", None, "closed"),
    ]
    for name, body, state in steps:
        r = await client.post(f"{base}/{name}", json=body, headers=agent)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["state"] == state, name
    final = r.json()
    assert final["satisfaction"] == 5 and final["first_response_at"] is not None
    assert_error(await client.post(f"{base}/start", headers=agent), 409, "illegal_transition")
    r = await client.post(f"{base}/feedback", json={}, headers=agent)
    assert_error(r, 422, "invalid")
    history = (await client.get(f"{base}/history", headers=agent)).json()
    assert [h["event"] for h in history] == [
        "create", "assign", "start", "respond", "wait_for_customer", "customer_replied",
        "resolve", "record_feedback", "close",
    ]  # fmt: skip
    assert history[1]["details"]["assignee"] == "1001" and history[0]["from_state"] is None
    found = (await client.get("/api/v1/cases?state=closed&q=refund", headers=agent)).json()
    assert [c["id"] for c in found["items"]] == [case["id"]]
    # `me`: the signed-in agent's own cases (1001's), not the supervisor's.
    mine = (await client.get("/api/v1/cases?assignee=me", headers=agent)).json()
    assert [c["id"] for c in mine["items"]] == [case["id"]]
    theirs = (await client.get("/api/v1/cases?assignee=me", headers=acme.supervisor)).json()
    assert theirs["items"] == []
    # Another tenant's case does not exist for bravo, on every route.
    for path in (base, f"{base}/history"):
        assert_error(await client.get(path, headers=bravo.supervisor), 404, "not_found")
    r = await client.post(f"{base}/reopen", json={}, headers=bravo.supervisor)
    assert_error(r, 404, "not_found")
    assert (await client.get("/api/v1/cases", headers=bravo.supervisor)).json()["total"] == 0


async def test_sla_alerts_fire_once_each_even_across_a_restart(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    acme, _ = tenants
    r = await client.put(
        "/api/v1/case-settings",
        json={"sla_policies": [{"id": "std", "first_response_minutes": 30,
                                "resolution_minutes": 120, "warning_share": 0.5}]},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    bad = await client.put(
        "/api/v1/case-settings", json={"sla_policies": [{"id": "x"}]}, headers=acme.admin
    )
    assert_error(bad, 422, "invalid")
    assert_error(
        await client.put("/api/v1/case-settings", json={}, headers=acme.agent), 403, "forbidden"
    )
    case = (await client.post("/api/v1/cases", json={"subject": "Late"}, headers=acme.agent)).json()
    assert [(t["target"], t["level"]) for t in case["sla"]] == [
        ("first_response", "warning"), ("first_response", "breach"),
        ("resolution", "warning"), ("resolution", "breach"),
    ]  # fmt: skip
    events = platform.bus.subscribe("case")
    desk = platform.cases
    assert desk is not None
    await desk.stop()  # this test fires the timers itself, at the moments it chooses
    clock.advance(20 * 60)
    assert await desk.fire_due() == 1  # the first-response warning at 15 min
    # The site goes down for three hours; a new desk on the same store starts up.
    clock.advance(3 * 3600)
    restarted = CaseDesk(platform.db, clock, platform.bus)
    assert await restarted.fire_due() == 3
    assert await restarted.fire_due() == 0  # each key once
    alerts = []
    while (event := events.get_nowait()) is not None:
        assert isinstance(event, CaseAlert)
        alerts.append((event.target, event.level, event.late_seconds > 3600))
    assert alerts == [
        ("first_response", "warning", False),
        ("first_response", "breach", True),
        ("resolution", "warning", True),
        ("resolution", "breach", True),
    ]
    breached = (await client.get("/api/v1/cases?breached=true", headers=acme.agent)).json()
    assert [c["id"] for c in breached["items"]] == [case["id"]]
    fresh = (await client.get(f"/api/v1/cases/{case['id']}", headers=acme.agent)).json()
    assert fresh["sla"] == []  # nothing left to fire


async def test_new_cases_are_dispatched_by_rule_to_the_least_loaded(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, _ = tenants
    r = await client.put(
        "/api/v1/case-settings",
        json={"dispatch": {
            "rules": [{"id": "refunds", "department": "billing", "assignees": ["1001", "1002"],
                       "keywords": ["退款", "refund"]}],
            "default_department": "front-desk",
        }},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    opened = []
    for subject in ("我要退款", "Refund for order 9", "Where is my parcel?"):
        r = await client.post("/api/v1/cases", json={"subject": subject}, headers=acme.agent)
        assert r.status_code == 201, r.text
        opened.append(r.json())
    assert [(c["state"], c["department"], c["assignee"]) for c in opened] == [
        ("assigned", "billing", "1001"),  # nobody has cases yet: the first listed
        ("assigned", "billing", "1002"),  # 1001 has one open: the other one
        ("new", "front-desk", ""),  # no rule matched: the default department
    ]
    for case in opened:  # inserted, then assigned in the same transaction: as stored
        read = await client.get(f"/api/v1/cases/{case['id']}", headers=acme.agent)
        assert read.json() == case
    bad = await client.put(
        "/api/v1/case-settings",
        json={"dispatch": {"rules": [{"id": "a"}, {"id": "a"}]}},
        headers=acme.admin,
    )
    assert_error(bad, 422, "invalid")


async def test_escalation_chains_step_as_configured_and_land_in_the_inbox(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    """Unassigned for 10 min: tell the supervisor; 20 min later: hand it to 'sup'."""
    acme, _ = tenants
    desk = platform.cases
    assert desk is not None
    await desk.stop()  # the test moves time and runs the desk itself
    r = await client.put(
        "/api/v1/case-settings",
        json={"escalations": [{"id": "orphans", "trigger": "unassigned", "steps": [
            {"after_minutes": 10, "notify": "supervisor"},
            {"after_minutes": 20, "notify": "sup", "reassign": True},
        ]}]},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    bad = await client.put(
        "/api/v1/case-settings",
        json={"escalations": [{"id": "x", "trigger": "sometimes", "steps": []}]},
        headers=acme.admin,
    )
    assert bad.status_code == 422
    events = platform.bus.subscribe("case")
    case = (await client.post("/api/v1/cases", json={"subject": "Lost"}, headers=acme.agent)).json()
    assert await desk.escalate_due() == 0
    clock.advance(11 * 60)
    assert await desk.escalate_due() == 1
    assert await desk.escalate_due() == 0  # once
    clock.advance(21 * 60)
    assert await desk.escalate_due() == 1
    steps = []
    while (event := events.get_nowait()) is not None:
        steps.append((event.level, event.notify))  # type: ignore[attr-defined]
    assert steps == [(1, "supervisor"), (2, "sup")]
    now = (await client.get(f"/api/v1/cases/{case['id']}", headers=acme.agent)).json()
    assert (now["state"], now["assignee"]) == ("assigned", "sup")  # the last step reassigned
    inbox = (await client.get("/api/v1/case-escalations", headers=acme.supervisor)).json()
    assert [(e["case_number"], e["level"]) for e in inbox] == [(1, 2), (1, 1)]
    assert_error(await client.get("/api/v1/case-escalations", headers=acme.agent), 403, "forbidden")
    history = (await client.get(f"/api/v1/cases/{case['id']}/history", headers=acme.agent)).json()
    assert history[-1]["actor"] == "escalation" and history[-1]["event"] == "assign"


async def test_bulk_updates_report_each_case(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    ids = [
        (await client.post("/api/v1/cases", json={"subject": f"c{i}"}, headers=acme.agent)).json()[
            "id"
        ]
        for i in range(3)
    ]
    theirs = (
        await client.post("/api/v1/cases", json={"subject": "b"}, headers=bravo.agent)
    ).json()["id"]
    for step in ("assign", "resolve"):  # a resolved case cannot be assigned
        body = {"assignee": "1002"} if step == "assign" else {}
        r = await client.post(f"/api/v1/cases/{ids[2]}/{step}", json=body, headers=acme.agent)
        assert r.status_code == 200, r.text
    r = await client.post(
        "/api/v1/cases/bulk",
        json={"case_ids": [*ids, theirs], "event": "assign", "body": {"assignee": "1001"}},
        headers=acme.supervisor,
    )
    assert r.status_code == 200, r.text
    results = r.json()
    assert [(x["ok"], x["state"]) for x in results[:2]] == [(True, "assigned")] * 2
    assert results[2]["ok"] is False and "resolved: cannot assign" in results[2]["error"]
    assert results[3] == {"case_id": theirs, "ok": False, "state": None, "error": "case not found"}
    still = (await client.get(f"/api/v1/cases/{theirs}", headers=bravo.agent)).json()
    assert still["assignee"] == ""  # another tenant's case was not touched


async def test_a_resolution_creates_a_follow_up_call_that_feedback_completes(
    client: httpx.AsyncClient, clock: FakeClock, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    acme, bravo = tenants
    r = await client.put(
        "/api/v1/case-settings",
        json={"follow_ups": [{"id": "complaints", "after_minutes": 60,
                              "categories": ["complaint"]}]},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    ids = []
    for category in ("complaint", "question"):
        case = (
            await client.post(
                "/api/v1/cases",
                json={"subject": "x", "category": category, "customer_id": acme.ids["customers"]},
                headers=acme.agent,
            )
        ).json()
        for step, body in (("assign", {"assignee": "1001"}), ("resolve", {})):
            r = await client.post(f"/api/v1/cases/{case['id']}/{step}", json=body,
                                  headers=acme.agent)  # fmt: skip
            assert r.status_code == 200, r.text
        ids.append(case["id"])
    pending = (await client.get("/api/v1/follow-ups", headers=acme.agent)).json()
    # Only the complaint needs one (and a case without a customer would have nobody to call).
    assert [f["case_id"] for f in pending] == [ids[0]]
    assert pending[0]["channel"] == "call" and pending[0]["rule_id"] == "complaints"
    assert (await client.get("/api/v1/follow-ups", headers=bravo.agent)).json() == []
    r = await client.post(f"/api/v1/cases/{ids[0]}/feedback", json={"score": 4},
                          headers=acme.agent)  # fmt: skip
    assert r.status_code == 200, r.text
    assert (await client.get("/api/v1/follow-ups", headers=acme.agent)).json() == []
    done = (await client.get("/api/v1/follow-ups?state=completed", headers=acme.agent)).json()
    assert [f["case_id"] for f in done] == [ids[0]]


async def test_opening_a_case_answers_from_one_transaction_and_honours_idempotency_keys(
    platform: Platform, client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    """The answer is made from the rows as written (no second read), and matches what a
    read gives; a retry with the same Idempotency-Key gets it back, with one case, one
    history entry and one audit entry in the store."""
    acme, _ = tenants
    r = await client.put(
        "/api/v1/case-settings",
        json={"sla_policies": [{"id": "std", "first_response_minutes": 30,
                                "resolution_minutes": 120}],
              "calendar": {"timezone": "Asia/Shanghai", "weekly": {"mon-fri": "09:00-18:00"}}},
        headers=acme.admin,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    body = {"subject": "Card blocked", "urgency": "high"}
    key = {**acme.agent, "Idempotency-Key": "open-1"}
    first = await client.post("/api/v1/cases", json=body, headers=key)
    assert first.status_code == 201, first.text
    case = first.json()
    assert len(case["sla"]) == 4
    read = await client.get(f"/api/v1/cases/{case['id']}", headers=acme.agent)
    assert read.json() == case
    again = await client.post("/api/v1/cases", json=body, headers=key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == case
    other = await client.post("/api/v1/cases", json={**body, "urgency": "low"}, headers=key)
    assert_error(other, 422, "idempotency_key_reused")
    found = (await client.get("/api/v1/cases", headers=acme.agent)).json()
    assert found["total"] == 1
    history = (await client.get(f"/api/v1/cases/{case['id']}/history", headers=acme.agent)).json()
    assert [(h["version"], h["event"], h["to_state"]) for h in history] == [(1, "create", "new")]
    audit = (
        await client.get(f"/api/v1/audit?entity=case&entity_id={case['id']}", headers=acme.admin)
    ).json()
    assert [(a["action"], a["actor_name"]) for a in audit["items"]] == [
        ("created", case["created_by"])
    ]


async def test_new_case_settings_apply_to_the_very_next_case(
    client: httpx.AsyncClient, tenants: tuple[TenantWorld, TenantWorld]
) -> None:
    """The desk keeps each tenant's rules for a few seconds; a change through the API
    clears them at once."""
    acme, _ = tenants
    before = await client.post("/api/v1/cases", json={"subject": "a"}, headers=acme.agent)
    assert before.status_code == 201 and before.json()["sla"] == []
    r = await client.put(
        "/api/v1/case-settings",
        json={"sla_policies": [{"id": "std", "resolution_minutes": 60}]},
        headers=acme.admin,
    )
    assert r.status_code == 200, r.text
    after = await client.post("/api/v1/cases", json={"subject": "b"}, headers=acme.agent)
    assert [(t["target"], t["level"]) for t in after.json()["sla"]] == [
        ("resolution", "warning"), ("resolution", "breach"),
    ]  # fmt: skip
