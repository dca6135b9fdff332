"""A mobile agent, with no phone registered, is reached on their mobile through the trunk
and must press 1 before the caller is put through (so voicemail cannot take the call)."""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.store.schema import CallDetailRecord
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import AgentKind, Scope
from tests.integration.signaling.conftest import Api, Edge, free_port
from tests.integration.signaling.sipp_scenarios import hung_up_by_server
from tests.integration.signaling.test_acd_calls import (
    add_trunk,
    agent_state,
    caller_scenario,
    finished,
    start_sipp,
)
from tests.integration.signaling.test_ivr_call import PCAP
from tests.ports import free_media_port

MOBILE = "13900001111"
PRESS_1 = str(PCAP).replace("dtmf_2833_9", "dtmf_2833_1")

# The agent's mobile, as the carrier delivers it: answers, hears the prompt, presses
# 1 (or not), and later receives our BYE.
MOBILE_PHONE = (
    """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="mobile agent">
  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:MOBILE@" search_in="msg" check_it="true" assign_to="ruri"/>
    </action>
  </recv>
  <Reference variables="ruri"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]m[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:MOBILE@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=mobile 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv request="ACK"/>
  <pause milliseconds="2500"/>
  PRESS
"""
    + hung_up_by_server(40000)
    + "</scenario>\n"
).replace("MOBILE", MOBILE)


async def _mobile_agent(edge: Edge, api: Api, carrier_port: int) -> str:
    """Make 1001 a mobile agent with no phone, signed in and ready; their token."""
    platform, acd, sip = edge.platform, edge.platform.acd, edge.platform.sip
    assert acd is not None and sip is not None
    await add_trunk(edge, carrier_port)
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    user = sip.directory.user(acme.tenant_id, "1001")
    assert user is not None
    async with platform.db.write(Scope.cli()) as uow:
        await platform.resources["users"].update(
            uow,
            user.user_id,
            s.UserUpdate(mobile_number=MOBILE, agent_kinds=[AgentKind.MOBILE]),
        )
    async with asyncio.timeout(5):  # the ACD reloads the changed user
        while True:
            info = acd.agent_info(acme.tenant_id, user.user_id)
            if info is not None and "mobile" in info.kinds:
                break
            await asyncio.sleep(0.02)
    token = await api.token("1001@acme")
    auth = {"Authorization": f"Bearer {token}"}
    for step in ("sign-in", "ready"):
        r = await api.client.post(f"/api/v1/agents/me/{step}", headers=auth)
        assert r.status_code == 200, r.text
    state = await agent_state(api, token)
    assert (state["state"], state["reachable"]) == ("ready", True)  # no phone, but a mobile
    return token


async def test_mobile_agent_presses_1_and_takes_the_call(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    carrier_port = free_port()
    await _mobile_agent(edge, api, carrier_port)
    press = f'<nop><action><exec play_pcap_audio="{PRESS_1}"/></action></nop>'
    (tmp_path / "mobile.xml").write_text(MOBILE_PHONE.replace("PRESS", press))
    mobile = await start_sipp(
        tmp_path, "mobile", "-sf", "mobile.xml", "-p", str(carrier_port),
        "-mp", str(free_media_port()), "-m", "1",
    )  # fmt: skip
    (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=14000))
    caller = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    try:
        await finished(caller, tmp_path, "caller")
        await finished(mobile, tmp_path, "mobile")
    finally:
        for proc in (caller, mobile):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().one()
            if row.ended_at is not None:
                break
            await asyncio.sleep(0.05)
    assert row.agent_extension == "1001" and row.connected_at is not None
    assert row.talk_seconds is not None and row.talk_seconds > 3
    assert row.hangup_by == "caller"
    sip = edge.platform.sip
    assert sip is not None and sip.trunk_channels == {}


async def test_a_mobile_that_does_not_press_1_does_not_get_the_call(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    carrier_port = free_port()
    token = await _mobile_agent(edge, api, carrier_port)
    (tmp_path / "mobile.xml").write_text(MOBILE_PHONE.replace("PRESS", ""))
    mobile = await start_sipp(
        tmp_path, "mobile", "-sf", "mobile.xml", "-p", str(carrier_port),
        "-mp", str(free_media_port()), "-m", "1",
    )  # fmt: skip
    (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=16000))
    caller = await start_sipp(
        tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
        "-p", str(free_port()), "-mp", str(free_media_port()),
    )  # fmt: skip
    try:
        await finished(mobile, tmp_path, "mobile")  # answered, then hung up by us
        await finished(caller, tmp_path, "caller")
    finally:
        for proc in (caller, mobile):
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    state = await agent_state(api, token)
    assert (state["state"], state["reason"]) == ("not_ready", "no-answer")
    await edge.records_written()
    async with edge.platform.db.read() as session:
        row = (await session.execute(select(CallDetailRecord))).scalars().one()
    assert row.agent_id is None and row.connected_at is None
