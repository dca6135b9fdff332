"""Pressing 1 reaches a sales agent: the IVR hands the call to a ringing agent phone."""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.store.schema import CallDetailRecord
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.test_ivr_call import CALLER, PCAP, add_carrier_trunk
from tests.integration.signaling.test_sipp_call import _register_callee
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import free_media_port

PRESS_1_THEN_HANG_UP = (
    CALLER.replace("dtmf_2833_9", "dtmf_2833_1").split('  <recv request="BYE"')[0]
    + """  <pause milliseconds="4000"/>
  <send retrans="500"><![CDATA[
BYE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
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


async def test_caller_reaches_an_agent_of_the_sales_queue(edge: Edge, tmp_path: Path) -> None:
    sip = edge.platform.sip
    assert sip is not None
    await add_carrier_trunk(edge)  # the demo flow is published by the seed
    agent_port = free_port()
    agent = await asyncio.create_subprocess_exec(
        sipp(), "-sn", "uas", "-i", "127.0.0.1", "-p", str(agent_port), "-m", "1",
        "-timeout", "60s", "-timeout_error", "-nostdin",
        cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await _register_callee(edge, agent_port, extension="1001")
        scenario = tmp_path / "caller.xml"
        press_1 = str(PCAP).replace("dtmf_2833_9", "dtmf_2833_1")
        scenario.write_text(PRESS_1_THEN_HANG_UP.replace("PCAP", press_1))
        caller = await asyncio.create_subprocess_exec(
            sipp(), f"127.0.0.1:{edge.port}", "-sf", str(scenario), "-m", "1",
            "-i", "127.0.0.1", "-p", str(free_port()), "-mp", str(free_media_port()),
            "-timeout", "60s", "-timeout_error", "-nostdin", "-trace_err",
            "-error_file", str(tmp_path / "errors.log"),
            cwd=tmp_path, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(caller.communicate(), 90)
        errors = tmp_path / "errors.log"
        assert caller.returncode == 0, (
            f"caller failed: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
        )
        _, agent_err = await asyncio.wait_for(agent.communicate(), 60)
        assert agent.returncode == 0, f"the agent's phone failed: {agent_err.decode()}"
    finally:
        if agent.returncode is None:
            agent.kill()
            await agent.wait()
    async with asyncio.timeout(10):
        while not sip.call_records:  # noqa: ASYNC110 - the call task finishes on its own
            await asyncio.sleep(0.05)
    record = sip.call_records[-1]
    assert record.digits == ("1",)
    assert record.outcome == "queue sales"
    # The stored record has the ACD's part: queue, agent, wait, talk, who hung up.
    await edge.records_written()
    async with edge.platform.db.read() as session:
        row = (
            await session.execute(
                select(CallDetailRecord).where(CallDetailRecord.call_id == record.call_id)
            )
        ).scalar_one()
    agent_1001 = sip.directory.user(row.tenant_id, "1001")
    assert agent_1001 is not None
    assert (row.queue, row.agent_extension, row.agent_id) == ("sales", "1001", agent_1001.user_id)
    assert row.connected_at is not None and row.queued_at is not None
    assert row.wait_seconds is not None and 0 <= row.wait_seconds < 10
    assert row.talk_seconds is not None and row.talk_seconds > 1  # the caller talked ~4 s
    assert row.hangup_by == "caller" and row.ended_at is not None
    assert row.outcome == "queue sales: answered by 1001"
    assert row.recording == f"recordings/{record.call_id}-agent-1001.wav"
    assert (edge.platform.config.data_dir / row.recording).is_file()
    assert row.routing is not None
    assert row.routing["agents"] == [agent_1001.user_id] and row.routing["free_agents"] >= 1
    assert row.routing["screen_pop_desktops"] == 0  # no desktop was open
    # The resource view chose this site's center, which had a free agent.
    assert row.routing["center"] == "local"
    assert row.routing["center_reason"] == "local_center_free"
    assert [leg["target"] for leg in row.legs] == ["1001"]
