"""SIPp calls SIPp through the B2BUA: authentication, ringing, answer, ACK, BYE."""

import asyncio
import secrets
from pathlib import Path

import pytest

from telportal.net import Peer, SipTransportLayer, Transport
from telportal.sip import Response
from tests.integration.signaling.conftest import PASSWORD, Edge, free_port
from tests.integration.signaling.sipp_scenarios import CANCEL_CALLER, NO_ACK_CALLER, RINGING_CALLEE
from tests.integration.signaling.test_sipp_register import sipp

CALLER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="authenticated caller">
  <send retrans="500"><![CDATA[
INVITE sip:1002@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:1001@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[
ACK sip:1002@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
INVITE sip:1002@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:1001@[local_ip]:[local_port]>
[authentication username=1001 password=PASSWORD]
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="500"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:1002@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


async def _register_callee(edge: Edge, contact_port: int, extension: str = "1002") -> None:
    """Register an extension with a Contact pointing at the SIPp UAS beside us."""
    from telportal.sip.digest import answer_challenge

    async with SipTransportLayer() as layer:
        listener = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        server = Peer(Transport.UDP, "127.0.0.1", edge.port)
        call_id = secrets.token_hex(8)

        def register(cseq: int, auth: str | None) -> bytes:
            lines = [
                f"REGISTER sip:127.0.0.1:{edge.port} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{listener.port};branch=z9hG4bK{secrets.token_hex(6)}",
                "Max-Forwards: 70",
                f"From: <sip:{extension}@127.0.0.1>;tag=r1",
                f"To: <sip:{extension}@127.0.0.1>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:{extension}@127.0.0.1:{contact_port}>",
                "Expires: 300",
            ] + ([f"Authorization: {auth}"] if auth else [])
            return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

        await layer.send(register(1, None), server)
        first = (await asyncio.wait_for(layer.receive(), 10)).message
        assert isinstance(first, Response) and first.status == 401
        challenge = first.headers.get_all("WWW-Authenticate")[0]
        auth = answer_challenge(
            challenge, "REGISTER", f"sip:127.0.0.1:{edge.port}", extension, PASSWORD, "c1", 1
        )
        await layer.send(register(2, auth), server)
        ok = (await asyncio.wait_for(layer.receive(), 10)).message
        assert isinstance(ok, Response) and ok.status == 200


async def _sipp(tmp_path: Path, name: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sipp(),
        *args,
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(tmp_path / f"{name}.err"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _finished(proc: asyncio.subprocess.Process, tmp_path: Path, name: str) -> None:
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    log = tmp_path / f"{name}.err"
    assert proc.returncode == 0, (
        f"{name} failed: {err.decode()}\n{log.read_text() if log.exists() else ''}"
    )


async def _call(
    edge: Edge, tmp_path: Path, caller_xml: str, callee: list[str], transport: str = "u1"
) -> None:
    """Run a SIPp callee registered as 1002 and a SIPp caller (1001) against the edge."""
    uas_port = free_port()
    callee_proc = await _sipp(
        tmp_path,
        "callee",
        *callee,
        "-i",
        "127.0.0.1",
        "-p",
        str(uas_port),
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
    )
    try:
        await _register_callee(edge, uas_port)
        scenario = tmp_path / "caller.xml"
        scenario.write_text(caller_xml.replace("PASSWORD", PASSWORD))
        caller = await _sipp(
            tmp_path,
            "caller",
            f"127.0.0.1:{edge.port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-t",
            transport,
            "-timeout",
            "30s",
            "-timeout_error",
        )
        await _finished(caller, tmp_path, "caller")
        await _finished(callee_proc, tmp_path, "callee")
    finally:
        if callee_proc.returncode is None:
            callee_proc.kill()
            await callee_proc.wait()
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(10):
        while sip.calls_ended < 1 or sip.active_dialogs:  # noqa: ASYNC110 - state we watch
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("transport", ["u1", "t1"])
async def test_sipp_to_sipp_call_through_the_b2bua(
    edge: Edge, tmp_path: Path, transport: str
) -> None:
    await _call(edge, tmp_path, CALLER, ["-sn", "uas"], transport)


@pytest.mark.parametrize("edge", [{"t1": 0.05}], indirect=True)
async def test_caller_that_never_acks_is_cleaned_up(edge: Edge, tmp_path: Path) -> None:
    # SIPp's uas ends on the BYE the B2BUA sends once it gives up on the caller's ACK.
    await _call(edge, tmp_path, NO_ACK_CALLER, ["-sn", "uas"])
    sip = edge.platform.sip
    assert sip is not None
    assert sip.retransmitter.next_deadline() is None  # nothing left retransmitting


async def test_cancel_before_answer(edge: Edge, tmp_path: Path) -> None:
    callee = tmp_path / "callee.xml"
    callee.write_text(RINGING_CALLEE)
    await _call(edge, tmp_path, CANCEL_CALLER, ["-sf", str(callee)])
