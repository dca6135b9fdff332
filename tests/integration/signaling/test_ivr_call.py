"""An IVR flow on a live call: SIPp calls the demo number and presses 9 with RFC 4733."""

import asyncio
from pathlib import Path

from sqlalchemy import select

from telportal.ivr import load_demo_flow
from telportal.ivr.flow import Flow
from telportal.store.schema import CallDetailRecord
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.sipp_scenarios import hung_up_by_server
from tests.integration.signaling.test_sipp_register import sipp
from tests.ports import free_media_port

PCAP = Path("/usr/share/sip-tester/dtmf_2833_9.pcap")

CALLER = (
    """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller who presses 9">
  <send retrans="500"><![CDATA[
INVITE sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:13800138000@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rtd="true"/>
  <send><![CDATA[
ACK sip:4008001000@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:13800138000@[local_ip]>;tag=[call_number]
To: <sip:4008001000@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="2500"/>
  <nop><action><exec play_pcap_audio="PCAP"/></action></nop>
"""
    + hung_up_by_server(40000)
    + """</scenario>
"""
)


async def add_carrier_trunk(edge: Edge) -> str:
    """Trust 127.0.0.1 as acme's carrier, so SIPp's calls need no credentials."""
    platform = edge.platform
    assert platform.sip is not None
    acme = platform.sip.directory.tenant_for_domain("acme")
    assert acme is not None
    async with platform.db.write(Scope.cli()) as uow:
        await platform.resources["trunks"].create(
            uow,
            s.TrunkCreate(
                tenant_id=acme.tenant_id,
                name="carrier",
                host="127.0.0.1",
                inbound_addresses=["127.0.0.1/32"],
                keepalive=False,
            ),
        )
    await platform.sip.directory.load()
    return acme.tenant_id


async def test_caller_presses_9_hears_the_announcement_and_is_hung_up(
    edge: Edge, tmp_path: Path
) -> None:
    assert PCAP.is_file(), "sip-tester's pcaps are missing: make setup installs sip-tester"  # noqa: ASYNC240
    sip = edge.platform.sip
    assert sip is not None and sip.media is not None
    tenant_id = await add_carrier_trunk(edge)
    # The demo seed published the demo flow as version 1 of the hotline service.
    demo: Flow = load_demo_flow()
    scenario = tmp_path / "caller.xml"
    scenario.write_text(CALLER.replace("PCAP", str(PCAP)))
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
        f"sipp failed: {err.decode()}\n{errors.read_text() if errors.exists() else ''}"
    )
    async with asyncio.timeout(10):
        while not sip.call_records:  # noqa: ASYNC110 - the call task finishes on its own
            await asyncio.sleep(0.05)
    record = sip.call_records[-1]
    assert record.version == demo.version and record.flow == demo.name
    assert record.digits == ("9",)
    assert [v.step for v in record.path] == ["greeting", "main_menu", "self_service", "goodbye"]
    assert record.outcome.startswith("hangup")
    # ... and the stored call record says the same, with the published version.
    await edge.records_written()
    async with edge.platform.db.read() as session:
        row = (
            await session.execute(
                select(CallDetailRecord).where(CallDetailRecord.call_id == record.call_id)
            )
        ).scalar_one()
    assert (row.tenant_id, row.called, row.flow_version) == (tenant_id, "4008001000", 1)
    assert row.digits == ["9"] and row.ended_at is not None
    assert [v["step"] for v in row.ivr_path] == [v.step for v in record.path]
