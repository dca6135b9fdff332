"""Answering from the desktop: `POST /agents/me/answer` while the agent's phone rings.

The phone is SIPp playing a desk phone that honours auto-answer requests (RFC 5373
`Answer-Mode: Auto`, which Yealink, Polycom and Snom phones can be set to obey): the
first INVITE rings until it is CANCELled; the second, which must carry the request
(SIPp fails the call otherwise), is answered at once. The caller (SIPp) presses 1 for
sales, talks and hangs up.
"""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.conftest import Api, Edge, free_port
from tests.integration.signaling.test_acd_calls import (
    add_trunk,
    agent_state,
    caller_scenario,
    finished,
    start_sipp,
    until_state,
)
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.ports import free_media_port

_RESPONSE_HEAD = """SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]phone[call_number]
[last_Call-ID:]
[last_CSeq:]"""

_TERMINATED = _RESPONSE_HEAD.format(status="487 Request Terminated").replace(
    "[last_CSeq:]", "CSeq: [cseq] INVITE"
)

AUTO_ANSWER_PHONE = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="desk phone that honours auto-answer">
  <recv request="INVITE">
    <action>
      <ereg regexp="Answer-Mode: Auto" search_in="msg" check_it="false" assign_to="auto"/>
    </action>
  </recv>
  <nop next="answer" test="auto"/>
  <send><![CDATA[
{_RESPONSE_HEAD.format(status="180 Ringing")}
Contact: <sip:1001@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
{_RESPONSE_HEAD.format(status="200 OK")}
Content-Length: 0

]]></send>
  <send><![CDATA[
{_TERMINATED}
Content-Length: 0

]]></send>
  <recv request="ACK" next="done"/>
  <label id="answer"/>
  <send><![CDATA[
{_RESPONSE_HEAD.format(status="200 OK")}
Contact: <sip:1001@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=phone 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send><![CDATA[
{_RESPONSE_HEAD.format(status="200 OK")}
Content-Length: 0

]]></send>
  <label id="done"/>
</scenario>
"""


async def test_the_desktop_answers_a_ringing_desk_phone(
    edge: Edge, api: Api, tmp_path: Path
) -> None:
    acd = edge.platform.acd
    assert acd is not None
    await add_trunk(edge, free_port())  # the caller comes from the carrier's address
    token = await api.token("1001@acme")
    me = {"Authorization": f"Bearer {token}"}
    port = free_port()
    (tmp_path / "phone.xml").write_text(AUTO_ANSWER_PHONE)
    phone = await start_sipp(tmp_path, "phone", "-sf", "phone.xml", "-p", str(port), "-m", "2",
                             "-trace_msg", "-message_file", "phone.msg")  # fmt: skip
    try:
        await _register_callee(edge, port, extension="1001")
        await until_state(api, token, "ready")

        # Nothing rings yet: a clear refusal, nothing changes.
        r = await api.client.post("/api/v1/agents/me/answer", headers=me)
        assert r.status_code == 409, r.text
        assert "nothing is ringing" in r.json()["message"]

        (tmp_path / "caller.xml").write_text(caller_scenario(hold_ms=4000))
        caller = await start_sipp(
            tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", "caller.xml", "-m", "1",
            "-p", str(free_port()), "-mp", str(free_media_port()),
        )  # fmt: skip
        await until_state(api, token, "ringing")
        # Another user (the supervisor) may not answer 1001's phone.
        sup = {"Authorization": f"Bearer {await api.token('supervisor@acme')}"}
        agent_id = (await agent_state(api, token))["agent_id"]
        r = await api.client.post(f"/api/v1/agents/{agent_id}/answer", headers=sup)
        assert r.status_code == 403, r.text

        r = await api.client.post("/api/v1/agents/me/answer", headers=me)
        assert r.status_code == 200, r.text
        await until_state(api, token, "talking")
        await finished(caller, tmp_path, "caller")
        await finished(phone, tmp_path, "phone")
    finally:
        if phone.returncode is None:
            phone.kill()
            await phone.wait()

    trace = (tmp_path / "phone.msg").read_text(errors="replace")
    invites = [part for part in trace.split("\n\n") if part.lstrip().startswith("INVITE ")]
    assert len(invites) == 2, trace[:3000]
    assert "Answer-Mode: Auto" not in invites[0]  # a normal offer rings
    assert "Answer-Mode: Auto" in invites[1] and "answer-after=0" in invites[1]
    async with asyncio.timeout(10):
        while True:
            async with edge.platform.db.read() as session:
                row = (await session.execute(select(CallDetailRecord))).scalars().first()
            if row is not None and row.ended_at is not None:
                break
            await asyncio.sleep(0.1)
    assert (row.queue, row.agent_extension, row.hangup_by) == ("sales", "1001", "caller")
    assert row.connected_at is not None
    # Once the call is over there is nothing to answer again.
    r = await api.client.post("/api/v1/agents/me/answer", headers=me)
    assert r.status_code == 409, r.text
