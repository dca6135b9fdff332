"""Calls through the ACD with real SIP peers and a real HTTP/WebSocket server.

- An agent who does not answer is skipped: agent 1001 (SIPp, only rings) is offered
  the call first, the ring timeout passes, 1001 goes not ready ("no-answer") and the
  call goes to 1002 (SIPp, answers). Each offered agent gets the screen pop on their
  own desktop socket, and 1002's arrives before its phone sees the INVITE.
- With no agent ready, the caller hears their position and the callback offer,
  presses * and is hung up; when agent 1001's phone registers, 1001 is rung first
  and then the customer is called back through the tenant's trunk.
"""

import asyncio
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import select

from telportal.events import AgentStatus, QueueStatus
from telportal.media import Playlist, PlaySpeech
from telportal.signaling.music import BUILTIN_MUSIC
from telportal.store.schema import CallDetailRecord
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling import sipp_scenarios
from tests.integration.signaling.conftest import Api, Edge, free_port
from tests.integration.signaling.sipp_scenarios import RINGING_CALLEE
from tests.integration.signaling.test_ivr_call import CALLER, PCAP
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import free_media_port

PRESS_1 = str(PCAP).replace("dtmf_2833_9", "dtmf_2833_1")
PRESS_STAR = str(PCAP).replace("dtmf_2833_9", "dtmf_2833_star")
CUSTOMER = "13800138000"


def caller_scenario(
    *, hold_ms: int, callback: bool = False, hung_up_by_server: bool = False
) -> str:
    """The demo caller: press 1 (sales), maybe * (callback) later, then hang up or be hung up."""
    head = CALLER.replace("PCAP", PRESS_1).split('  <recv request="BYE"')[0]
    if callback:
        head += '  <pause milliseconds="12000"/>\n'  # past the announcements, into the music
        head += f'  <nop><action><exec play_pcap_audio="{PRESS_STAR}"/></action></nop>\n'
    if hung_up_by_server:
        return (
            head
            + sipp_scenarios.hung_up_by_server(30000)
            + """</scenario>
"""
        )
    return (
        head
        + f"""  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[
BYE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{CUSTOMER}@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""
    )


# The customer's carrier, when we call them back: answer, talk 2 s, hang up.
CARRIER_ANSWERS = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="customer answers the callback">
  <recv request="INVITE" rrs="true">
    <action>
      <ereg regexp="^INVITE sip:CUSTOMER@" search_in="msg" check_it="true" assign_to="ruri"/>
      <ereg regexp=";tag=([^;> \r\n]+)" search_in="hdr" header="From:" check_it="true"
            assign_to="fromtag_all,fromtag"/>
    </action>
  </recv>
  <Reference variables="ruri,fromtag_all"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]cust[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:CUSTOMER@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=customer 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK"/>
  <pause milliseconds="2000"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:CUSTOMER@[local_ip]>;tag=[pid]cust[call_number]
To: <sip:agent@127.0.0.1>;tag=[$fromtag]
Call-ID: [call_id]
CSeq: 1 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
""".replace("CUSTOMER", CUSTOMER)


async def add_trunk(edge: Edge, port: int) -> None:
    """Acme's carrier: trusted for inbound calls from 127.0.0.1, and the way out."""
    platform = edge.platform
    assert platform.sip is not None
    acme = platform.sip.directory.tenant_for_domain("acme")
    assert acme is not None
    async with platform.db.write(Scope.cli()) as uow:
        await platform.resources["trunks"].create(
            uow,
            s.TrunkCreate(
                tenant_id=acme.tenant_id, name="carrier", host="127.0.0.1", port=port,
                inbound_addresses=["127.0.0.1/32"], keepalive=False,
            ),
        )  # fmt: skip
    await platform.sip.directory.load()


async def start_sipp(tmp_path: Path, name: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sipp(), *args, "-i", "127.0.0.1", "-nostdin", "-timeout", "90s", "-timeout_error",
        "-trace_err", "-error_file", str(tmp_path / f"{name}.err"),
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finished(proc: asyncio.subprocess.Process, tmp_path: Path, name: str) -> None:
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    log = tmp_path / f"{name}.err"
    assert proc.returncode == 0, (
        f"{name}: {err.decode()}\n{log.read_text() if log.exists() else ''}"
    )


async def agent_state(api: Api, token: str, agent: str = "me") -> dict[str, Any]:
    r = await api.client.get(
        f"/api/v1/agents/{agent}", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def until_state(api: Api, token: str, state: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while (body := await agent_state(api, token))["state"] != state:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    return body


class Desktop:
    """An agent's event socket; keeps every screen pop with the time it arrived."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pops: list[tuple[float, dict[str, Any]]] = []
        self.other: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def _run(self) -> None:
        async with websockets.connect(self.url) as ws:
            hello = json.loads(await ws.recv())
            assert hello["type"] == "hello"
            self.ready.set()
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "screenpop":
                    self.pops.append((time.time(), message))
                else:
                    self.other.append(message)

    async def __aenter__(self) -> "Desktop":
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.ready.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def invite_times(trace: Path) -> list[float]:
    """Wall-clock times at which SIPp received INVITEs, from its -trace_msg log."""
    text = trace.read_text(errors="replace")
    stamps = re.findall(
        r"-{10,} (\d{4}-\d\d-\d\d)\s+(\d\d:\d\d:\d\d\.\d+)[^\n]*\n"
        r"UDP message received[^\n]*\n\s*\nINVITE ",
        text,
    )
    return [datetime.strptime(f"{d} {t}", "%Y-%m-%d %H:%M:%S.%f").timestamp() for d, t in stamps]


async def test_an_agent_who_does_not_answer_is_skipped_and_pops_come_first(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    sip, acd = edge.platform.sip, edge.platform.acd
    assert sip is not None and acd is not None
    await add_trunk(edge, free_port())
    supervisor = await api.token("supervisor@acme")
    sup = {"Authorization": f"Bearer {supervisor}"}
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    sales = acd.queue(acme.tenant_id, "sales")
    assert sales is not None
    async with edge.platform.db.write(Scope.cli()) as uow:  # the tenant admin's change
        await edge.platform.resources["queues"].update(
            uow, sales.queue_id, s.QueueUpdate(ring_timeout_seconds=5)
        )
    async with asyncio.timeout(5):
        while (q := acd.queue(acme.tenant_id, "sales")) is None or q.ring_timeout != 5:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    bus = edge.platform.bus.subscribe()

    # 1001 only rings; 1002 answers. 1001 registers first: the longest idle.
    t1001, t1002 = await api.token("1001@acme"), await api.token("1002@acme")
    port_1001, port_1002 = free_port(), free_port()
    (tmp_path / "ringing.xml").write_text(RINGING_CALLEE)
    ringer = await start_sipp(tmp_path, "a1001", "-sf", "ringing.xml", "-p", str(port_1001),
                              "-m", "1")  # fmt: skip
    answerer = await start_sipp(tmp_path, "a1002", "-sn", "uas", "-p", str(port_1002), "-m", "1",
                                "-trace_msg", "-message_file", "a1002.msg")  # fmt: skip
    try:
        await _register_callee(edge, port_1001, extension="1001")
        assert (await until_state(api, t1001, "ready"))["reachable"] is True
        await asyncio.sleep(0.05)
        await _register_callee(edge, port_1002, extension="1002")
        await until_state(api, t1002, "ready")
        listed = (await api.client.get("/api/v1/agents", headers=sup)).json()
        states = {a["extension"]: a["state"] for a in listed}
        assert states == {"1001": "ready", "1002": "ready", "1003": "signed_out"}
        # An agent changes only their own state.
        r = await api.client.post(
            f"/api/v1/agents/{listed[1]['agent_id']}/not-ready",
            json={"reason": "lunch"},
            headers={"Authorization": f"Bearer {t1001}"},
        )
        assert r.status_code == 403, r.text

        # The caller is a known customer: the pop says who, and how important.
        r = await api.client.post(
            "/api/v1/customers",
            json={"name": "Wang Fang", "importance": 4, "tags": ["gold"],
                  "identities": [{"kind": "phone", "value": f"+86 {CUSTOMER}"}]},
            headers={"Authorization": f"Bearer {t1002}"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        ws = api.base.replace("http://", "ws://") + "/api/v1/events?token="
        async with Desktop(ws + t1001) as desk_1001, Desktop(ws + t1002) as desk_1002:
            (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=12000))
            caller = await start_sipp(
                tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
                "-p", str(free_port()), "-mp", str(free_media_port()),
            )  # fmt: skip
            await finished(caller, tmp_path, "caller")
            await finished(ringer, tmp_path, "a1001")  # it was CANCELled after 5 s
            await finished(answerer, tmp_path, "a1002")
            await asyncio.sleep(0.2)
        # Each agent offered the call got its screen pop, on their own socket only.
        assert len(desk_1001.pops) == 1 and len(desk_1002.pops) == 1
        (_, pop_1001), (popped_at, pop) = desk_1001.pops[0], desk_1002.pops[0]
        assert pop_1001["call_id"] == pop["call_id"]
        assert pop["agent_id"] == listed[1]["agent_id"] and pop["queue"] == "sales"
        assert pop["caller"] == CUSTOMER and pop["called"] == "4008001000"
        assert pop["ivr_path"][-1] == "sales" and "main_menu" in pop["ivr_path"]
        assert pop["waited_seconds"] >= 4.5  # it waited out 1001's ring timeout
        assert pop["customer"]["name"] == "Wang Fang" and pop["importance"] == 4
        assert pop["customer"]["tags"] == ["gold"]
        assert not any(m["type"] == "screenpop" for m in desk_1001.other + desk_1002.other)
        invites = invite_times(tmp_path / "a1002.msg")
        assert len(invites) == 1, (tmp_path / "a1002.msg").read_text()[:2000]
        assert popped_at < invites[0], (popped_at, invites[0])
    finally:
        for proc in (ringer, answerer):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    after = {
        a["extension"]: a for a in (await api.client.get("/api/v1/agents", headers=sup)).json()
    }
    assert (after["1001"]["state"], after["1001"]["reason"]) == ("not_ready", "no-answer")
    assert after["1001"]["missed"] == 1 and after["1002"]["answered"] == 1
    await edge.records_written()
    async with edge.platform.db.read() as session:
        row = (await session.execute(select(CallDetailRecord))).scalars().one()
    assert (row.queue, row.agent_extension, row.hangup_by) == ("sales", "1002", "caller")
    assert row.wait_seconds is not None and row.wait_seconds >= 4.5
    assert row.routing is not None and row.routing["screen_pop_desktops"] == 1
    assert row.routing["screen_pop_ms"] < 500
    states_seen = [
        (e.extension, e.state, e.reason) for e in _drain(bus) if isinstance(e, AgentStatus)
    ]
    assert ("1001", "ringing", None) in states_seen
    assert ("1001", "not_ready", "no-answer") in states_seen
    assert ("1002", "talking", None) in states_seen
    status = (await api.client.get("/api/v1/queues-status", headers=sup)).json()
    sales_now = next(q for q in status if q["name"] == "sales")
    assert (sales_now["entered"], sales_now["answered"], sales_now["waiting"]) == (1, 1, 0)


async def test_nobody_ready_the_caller_asks_for_a_callback_and_is_called_back(
    edge: Edge, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sip, acd = edge.platform.sip, edge.platform.acd
    assert sip is not None and acd is not None and sip.media is not None
    carrier_port = free_port()
    await add_trunk(edge, carrier_port)
    bus = edge.platform.bus.subscribe()
    played: list[Playlist] = []  # what the caller is played, noted on the real engine
    real_play = sip.media.play

    async def play(endpoint_id: str, playlist: Playlist, *, barge_in: bool = True) -> str:
        played.append(playlist)
        return await real_play(endpoint_id, playlist, barge_in=barge_in)

    monkeypatch.setattr(sip.media, "play", play)
    # Nobody is signed in: the caller hears their place and the offer, presses *.
    (tmp_path / "caller.xml").write_text(
        caller_scenario(hold_ms=0, callback=True, hung_up_by_server=True)
    )
    caller = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    await finished(caller, tmp_path, "caller")
    spoken = [i.text for p in played for i in p.items if isinstance(i, PlaySpeech)]
    assert "You are number 1 in the queue." in spoken
    assert any("press star" in text for text in spoken)  # the callback offer
    assert any(p.loop and p.items == BUILTIN_MUSIC for p in played)  # queue music
    assert any(text.startswith("Thank you. We will call you back") for text in spoken)
    supervisor = await api.token("supervisor@acme")
    sup = {"Authorization": f"Bearer {supervisor}"}
    status = (await api.client.get("/api/v1/queues-status", headers=sup)).json()
    sales = next(q for q in status if q["name"] == "sales")
    assert (sales["callbacks"], sales["waiting"], sales["abandoned"]) == (1, 1, 0)

    # Agent 1001's phone registers: the ACD rings 1001 first, then calls the customer.
    (tmp_path / "carrier.xml").write_text(CARRIER_ANSWERS)
    carrier = await start_sipp(tmp_path, "carrier", "-sf", "carrier.xml", "-p", str(carrier_port),
                               "-m", "1")  # fmt: skip
    agent_port = free_port()
    agent = await start_sipp(tmp_path, "a1001", "-sn", "uas", "-p", str(agent_port), "-m", "1")
    try:
        await _register_callee(edge, agent_port, extension="1001")
        await finished(carrier, tmp_path, "carrier")
        await finished(agent, tmp_path, "a1001")
    finally:
        for proc in (carrier, agent):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                rows = (
                    (await session.execute(select(CallDetailRecord).order_by(
                        CallDetailRecord.started_at)))
                    .scalars()
                    .all()
                )  # fmt: skip
            if len(rows) == 2 and all(r.ended_at for r in rows):
                break
            await asyncio.sleep(0.1)
    original, callback = rows
    assert original.outcome == "queue sales: callback requested"
    assert original.agent_id is None and original.queue == "sales"
    assert (callback.direction, callback.caller, callback.called) == ("outbound", "1001", CUSTOMER)
    assert (callback.queue, callback.agent_extension) == ("sales", "1001")
    assert callback.outcome == "callback answered by 1001" and callback.hangup_by == "caller"
    assert callback.talk_seconds is not None and callback.talk_seconds >= 1.5
    assert callback.recording is not None
    assert (edge.platform.config.data_dir / callback.recording).is_file()
    status = (await api.client.get("/api/v1/queues-status", headers=sup)).json()
    sales = next(q for q in status if q["name"] == "sales")
    assert (sales["waiting"], sales["answered"]) == (0, 1)
    await asyncio.sleep(1.2)  # queue figures go out at most once a second
    figures = [e for e in _drain(bus) if isinstance(e, QueueStatus) and e.queue == "sales"]
    assert figures and figures[-1].answered == 1


def _drain(sub: Any) -> list[Any]:
    events = []
    while (event := sub.get_nowait()) is not None:
        events.append(event)
    return events
