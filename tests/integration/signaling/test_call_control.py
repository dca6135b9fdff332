"""Call control through REST on a live call with real SIP peers (SIPp phones).

The caller reaches agent 1001 through the demo flow; then, through the API: hold and
unhold, recording pause and resume, DTMF, a supervisor (1009) who listens and then
barges in, a blind transfer to 1002, and a hang-up. Each step is checked in the
call's state, in the `callstate` events, and in the call record.
"""

import asyncio
from asyncio.subprocess import Process
from pathlib import Path
from typing import Any

import httpx

from telportal.events import CallState
from tests.integration.signaling.conftest import Api, Edge, ended_call_record, free_port
from tests.integration.signaling.test_acd_calls import (
    CARRIER_ANSWERS,
    CUSTOMER,
    add_trunk,
    caller_scenario,
    finished,
    start_sipp,
    until_state,
)
from tests.integration.signaling.test_ivr_transfer import BRANCH
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.ports import free_media_port

Bearer = dict[str, str]


async def phones_for(edge: Edge, tmp_path: Path, calls_each: dict[str, str]) -> dict[str, Process]:
    """A SIPp phone registered for each extension, answering that many calls."""
    phones = {}
    for extension, count in calls_each.items():
        port = free_port()
        phones[extension] = await start_sipp(
            tmp_path, f"p{extension}", "-sn", "uas", "-p", str(port), "-m", count
        )
        await _register_callee(edge, port, extension=extension)
    return phones


async def bearer(api: Api, user: str) -> Bearer:
    return {"Authorization": f"Bearer {await api.token(user)}"}


async def busy_elsewhere(api: Api, user: str, reason: str = "meeting") -> Bearer:
    """The agent signs in, becomes ready, then goes not ready: the queue passes them by."""
    token = await api.token(user)
    await until_state(api, token, "ready")
    headers = {"Authorization": f"Bearer {token}"}
    r = await api.client.post("/api/v1/agents/me/not-ready", json={"reason": reason},
                              headers=headers)  # fmt: skip
    assert r.status_code == 200, r.text
    return headers


async def caller_dials_in(edge: Edge, tmp_path: Path) -> Process:
    """A SIPp caller to the demo number; it presses 1 (sales) and waits for our BYE."""
    (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=0, hung_up_by_server=True))
    return await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip


async def live_calls_of(api: Api, headers: Bearer) -> list[dict[str, Any]]:
    """The live calls `headers` can see, once there is one (30 s at most)."""
    async with asyncio.timeout(30):
        while not (calls := (await api.client.get("/api/v1/live-calls", headers=headers)).json()):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return list(calls)


async def stop(*procs: Process) -> None:
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_hold_recording_dtmf_monitor_transfer_and_hangup(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    bus = edge.platform.bus.subscribe()
    phones = await phones_for(edge, tmp_path, {"1001": "1", "1002": "1", "1009": "1"})
    agent = await bearer(api, "1001@acme")
    other_agent = await bearer(api, "1003@acme")
    supervisor = await bearer(api, "supervisor@acme")
    await busy_elsewhere(api, "1002@acme")  # so the queue's call goes to 1001
    caller = await caller_dials_in(edge, tmp_path)
    try:
        (call,) = await live_calls_of(api, agent)
        assert call["agent_extension"] == "1001" and call["queue"] == "sales"
        base = f"/api/v1/live-calls/{call['call_id']}"

        async def post(path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
            return await api.client.post(base + path, json=body, headers=headers)

        assert (await post("/hold", agent)).json()["held"] is True
        r = await post("/hold", agent)
        assert r.status_code == 409 and "already on hold" in r.json()["message"]
        assert (await post("/unhold", agent)).json()["held"] is False
        assert (await post("/recording/pause", agent)).json()["recording_paused"] is True
        assert (await post("/recording/resume", agent)).json()["recording_paused"] is False
        assert (await post("/dtmf", agent, {"digits": "12#"})).status_code == 200
        assert (await post("/dtmf", agent, {"digits": "x"})).status_code == 422
        # Another agent does not see this call; an agent cannot monitor.
        assert (await post("/hold", other_agent)).status_code == 404
        assert (await post("/monitor", agent, {"mode": "listen"})).status_code == 403

        r = await post("/monitor", supervisor, {"mode": "listen"})
        assert r.status_code == 200, r.text
        assert r.json()["monitors"][0]["extension"] == "1009"
        r = await post("/monitor", supervisor, {"mode": "barge"})
        assert r.json()["monitors"][0]["mode"] == "barge"

        r = await post("/transfer", agent, {"to": "1002"})
        assert r.status_code == 200, r.text
        assert r.json()["agent_extension"] == "1002"
        assert r.json()["transfers"] == [{"from": "1001", "to": "1002", "kind": "blind"}]
        await finished(phones["1001"], tmp_path, "p1001")  # its leg got BYE at the transfer
        # 1001 no longer holds the call: it cannot act on it.
        assert (await post("/hold", agent)).status_code == 404

        r = await post("/hangup", supervisor)
        assert r.status_code == 204, r.text
        await finished(caller, tmp_path, "caller")  # the caller got our BYE
        for extension in ("1002", "1009"):
            await finished(phones[extension], tmp_path, f"p{extension}")
    finally:
        await stop(caller, *phones.values())

    async with asyncio.timeout(10):
        while (await api.client.get("/api/v1/live-calls", headers=supervisor)).json():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    row = await ended_call_record(edge)
    assert row.transfers == [{"from": "1001", "to": "1002", "kind": "blind"}]
    assert row.hangup_by == "system" and row.agent_extension == "1001"
    states = []
    while (event := bus.get_nowait()) is not None:
        if isinstance(event, CallState):
            states.append((event.state, event.detail))
    # Events are published as the steps happen, so they come in the steps' order
    # (monitor_left may come whenever the supervisor's leg ends).
    names = [name for name, _ in states if name != "monitor_left"]
    assert names == [
        "talking", "held", "talking", "recording_paused", "recording_resumed", "dtmf",
        "monitor_listen", "monitor_barge", "transferring", "transferred", "ended",
    ], states  # fmt: skip
    assert ("dtmf", "12#") in states and ("transferred", "1002") in states


async def test_attended_transfer_and_a_conference(edge: Edge, api: Api, tmp_path: Path) -> None:
    """1001 consults 1002 and cancels, consults again and completes; then 1002 adds 1003."""
    sip = edge.platform.sip
    assert sip is not None
    await add_trunk(edge, free_port())
    phones = await phones_for(edge, tmp_path, {"1001": "1", "1002": "2", "1003": "1"})
    a1001 = await bearer(api, "1001@acme")
    # Busy with other work, so the queue rings 1001; 1002 is rung twice later.
    a1002 = await busy_elsewhere(api, "1002@acme", "backoffice")
    await busy_elsewhere(api, "1003@acme", "backoffice")
    caller = await caller_dials_in(edge, tmp_path)
    try:
        base = f"/api/v1/live-calls/{(await live_calls_of(api, a1001))[0]['call_id']}"

        r = await api.client.post(base + "/consult", json={"to": "1002"}, headers=a1001)
        assert r.status_code == 200, r.text
        assert (r.json()["consulting"], r.json()["held"]) == ("1002", True)
        r = await api.client.post(base + "/complete-transfer", headers=a1002)
        assert r.status_code == 404  # not 1002's call yet: the agent completes it
        r = await api.client.post(base + "/cancel-consult", headers=a1001)
        assert r.status_code == 200 and r.json()["consulting"] is None
        assert r.json()["held"] is False  # back with the caller
        r = await api.client.post(base + "/complete-transfer", headers=a1001)
        assert r.status_code == 409  # nothing to complete

        r = await api.client.post(base + "/consult", json={"to": "1002"}, headers=a1001)
        assert r.status_code == 200, r.text
        r = await api.client.post(base + "/complete-transfer", headers=a1001)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["agent_extension"], body["held"]) == ("1002", False)
        assert body["transfers"] == [{"from": "1001", "to": "1002", "kind": "attended"}]
        await finished(phones["1001"], tmp_path, "p1001")  # the agent left the call

        r = await api.client.post(base + "/conference", json={"to": "1003"}, headers=a1002)
        assert r.status_code == 200, r.text
        assert r.json()["monitors"] == [
            {"user_id": "conference:1003", "extension": "1003", "mode": "participant"}
        ]
        r = await api.client.post(base + "/conference", json={"to": "1003"}, headers=a1002)
        assert r.status_code == 409
        assert (await api.client.post(base + "/hangup", headers=a1002)).status_code == 204
        await finished(caller, tmp_path, "caller")
        for extension in ("1002", "1003"):
            await finished(phones[extension], tmp_path, f"p{extension}")
    finally:
        await stop(caller, *phones.values())
    row = await ended_call_record(edge)
    assert row.transfers == [{"from": "1001", "to": "1002", "kind": "attended"}]
    assert row.hangup_by == "agent"  # 1002 hung up through the API


async def test_blind_transfer_to_an_outside_number(edge: Edge, api: Api, tmp_path: Path) -> None:
    """The agent hands the caller to a branch office through the trunk; the branch (a SIPp
    carrier) answers, talks 2 s and hangs up, and the caller then gets our BYE."""
    carrier_port = free_port()
    await add_trunk(edge, carrier_port)
    (tmp_path / "carrier.xml").write_text(CARRIER_ANSWERS.replace(CUSTOMER, BRANCH))
    carrier = await start_sipp(
        tmp_path, "carrier", "-sf", "carrier.xml", "-p", str(carrier_port), "-m", "1"
    )
    phone = (await phones_for(edge, tmp_path, {"1001": "1"}))["1001"]
    agent = await bearer(api, "1001@acme")
    caller = await caller_dials_in(edge, tmp_path)
    try:
        base = f"/api/v1/live-calls/{(await live_calls_of(api, agent))[0]['call_id']}/transfer"
        for bad in ({}, {"to": "1002", "number": BRANCH}, {"number": "call me"}):
            assert (await api.client.post(base, json=bad, headers=agent)).status_code == 422
        r = await api.client.post(base, json={"number": BRANCH}, headers=agent)
        assert r.status_code == 200, r.text
        assert r.json()["transfers"] == [{"from": "1001", "to": BRANCH, "kind": "blind-number"}]
        await finished(phone, tmp_path, "p1001")  # the agent's leg got BYE at the transfer
        await finished(carrier, tmp_path, "carrier")
        await finished(caller, tmp_path, "caller")  # the branch hung up: the caller got BYE
    finally:
        await stop(caller, carrier, phone)
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(10):
        while sip.trunk_channels:  # noqa: ASYNC110 - the channel is freed when the leg ends
            await asyncio.sleep(0.05)


async def test_blind_transfer_to_a_queue(edge: Edge, api: Api, tmp_path: Path) -> None:
    """1001 takes a sales call and sends the caller to the support queue: 1001 leaves
    (wrap-up), the caller waits in support and the ACD gives them to 1002."""
    await add_trunk(edge, free_port())
    phones = await phones_for(edge, tmp_path, {"1001": "1", "1002": "1"})
    agent = await bearer(api, "1001@acme")
    supervisor = await bearer(api, "supervisor@acme")
    busy = await busy_elsewhere(api, "1002@acme")  # at first, so the sales call goes to 1001
    caller = await caller_dials_in(edge, tmp_path)
    try:
        base = f"/api/v1/live-calls/{(await live_calls_of(api, agent))[0]['call_id']}"
        r = await api.client.post(f"{base}/transfer", json={"queue": "nope"}, headers=agent)
        assert r.status_code == 404, r.text
        r = await api.client.post(f"{base}/transfer", json={"queue": "support"}, headers=agent)
        assert r.status_code == 200, r.text
        assert r.json()["transfers"] == [{"from": "1001", "to": "support", "kind": "queue"}]
        await finished(phones["1001"], tmp_path, "p1001")  # 1001's leg got BYE
        r = await api.client.post("/api/v1/agents/me/ready", headers=busy)
        assert r.status_code == 200, r.text
        async with asyncio.timeout(30):
            while True:
                live = (await api.client.get("/api/v1/live-calls", headers=supervisor)).json()
                if live and live[0]["agent_extension"] == "1002":
                    break
                await asyncio.sleep(0.1)
        assert live[0]["queue"] == "support"
        r = await api.client.post(f"{base}/hangup", headers=supervisor)
        assert r.status_code == 204, r.text
        await finished(caller, tmp_path, "caller")
        await finished(phones["1002"], tmp_path, "p1002")
    finally:
        await stop(caller, *phones.values())
    row = await ended_call_record(edge)
    assert (row.queue, row.agent_extension) == ("support", "1002")
    assert row.transfers == [{"from": "1001", "to": "support", "kind": "queue"}]
    assert [leg["target"] for leg in row.legs if leg["kind"] == "agent"] == ["1001", "1002"]
