"""The agent's wrap-up of a call: a disposition code and notes on the call record."""

import asyncio
from datetime import datetime, timedelta

import httpx

from telportal.app import Platform
from telportal.calls_store import CallRecords
from telportal.clock import FakeClock
from telportal.events import AgentStatus
from tests.integration.api_helpers import assert_error
from tests.integration.world import TenantWorld


async def test_the_agent_who_took_the_call_wraps_it_up(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    acme, bravo = tenants
    calls = CallRecords(platform.db)
    for call_id, agent in (("w-1", acme.ids["users"]), ("w-2", None)):
        await calls.start(acme.tenant_id, call_id, site="sh-1", direction="inbound",
                          caller="13800138000", called="4008001000")  # fmt: skip
        if agent is not None:
            await calls.connected(acme.tenant_id, call_id, agent_id=agent, extension="1001")
        await calls.finish(acme.tenant_id, call_id, end_reason="caller hung up")

    body = {"code": "callback", "notes": "wants a call about the invoice 回访"}
    clock.advance(30)
    r = await client.put("/api/v1/calls/w-1/wrap-up", json=body, headers=acme.agent)
    assert r.status_code == 200, r.text
    saved = r.json()
    assert (saved["wrap_up_code"], saved["wrap_up_notes"]) == ("callback", body["notes"])
    assert saved["wrap_up_at"] is not None
    # By the record's id as well; saving again replaces it.
    r = await client.put(
        f"/api/v1/calls/{saved['id']}/wrap-up", json={"code": "resolved"}, headers=acme.agent
    )
    assert (r.json()["wrap_up_code"], r.json()["wrap_up_notes"]) == ("resolved", "")
    listed = (await client.get("/api/v1/calls", headers=acme.supervisor)).json()["items"]
    assert {c["call_id"]: c["wrap_up_code"] for c in listed} == {"w-1": "resolved", "w-2": None}
    csv_text = (await client.get("/api/v1/calls/export", headers=acme.supervisor)).text
    assert "wrap_up_code" in csv_text.splitlines()[0] and ",resolved," in csv_text

    # A supervisor may correct it; a call nobody took has nothing to wrap up.
    r = await client.put("/api/v1/calls/w-1/wrap-up", json={"code": "complaint"},
                         headers=acme.supervisor)  # fmt: skip
    assert r.status_code == 200 and r.json()["wrap_up_code"] == "complaint"
    assert_error(
        await client.put("/api/v1/calls/w-2/wrap-up", json=body, headers=acme.supervisor),
        409, "conflict",
    )  # fmt: skip
    # Another tenant's user does not find the call; bad codes are named.
    assert_error(
        await client.put("/api/v1/calls/w-1/wrap-up", json=body, headers=bravo.supervisor),
        404, "not_found",
    )  # fmt: skip
    problem = assert_error(
        await client.put("/api/v1/calls/w-1/wrap-up", json={"code": "Not OK!"}, headers=acme.agent),
        422, "invalid_request",
    )  # fmt: skip
    assert problem["details"][0]["field"].endswith("code")


async def test_the_desktop_learns_when_wrap_up_ends(
    platform: Platform,
    client: httpx.AsyncClient,
    clock: FakeClock,
    tenants: tuple[TenantWorld, TenantWorld],
) -> None:
    acme, _ = tenants
    acd = platform.acd
    assert acd is not None
    await acd.load()
    agent_id, queue_id = acme.ids["users"], acme.ids["queues"]
    bus = platform.bus.subscribe(f"agent.{acme.tenant_id}")
    acd.sign_in(acme.tenant_id, agent_id, ready=True)
    acd.phone_changed(acme.tenant_id, agent_id, True)
    inbox = acd.enqueue(acme.tenant_id, "c-1", queue_id)
    offer = await inbox.get()
    acd.accepted(acme.tenant_id, "c-1", offer.agent_id)  # type: ignore[union-attr]
    clock.advance(60)
    acd.ended(acme.tenant_id, "c-1")
    me = (await client.get("/api/v1/agents/me", headers=acme.agent)).json()
    assert me["state"] == "wrap_up"
    ends = datetime.fromisoformat(me["wrap_up_until"])
    assert ends == clock.now() + timedelta(seconds=10)  # the queue's default wrap-up
    await asyncio.sleep(0.05)  # the event is published by a task
    events = []
    while (e := bus.get_nowait()) is not None:
        events.append(e)
    wrapping = [e for e in events if isinstance(e, AgentStatus) and e.state == "wrap_up"]
    assert wrapping and wrapping[-1].wrap_up_until == ends
    acd.end_wrap_up(acme.tenant_id, agent_id)
    me = (await client.get("/api/v1/agents/me", headers=acme.agent)).json()
    assert me["state"] != "wrap_up" and me["wrap_up_until"] is None
