"""SIPp calls SIPp through the B2BUA: authentication, ringing, answer, ACK, BYE."""

import asyncio
import secrets
from pathlib import Path

from telportal.net import Peer, SipTransportLayer, Transport
from telportal.sip import Response
from tests.integration.signaling.conftest import PASSWORD, Edge, free_port
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


async def _register_callee(edge: Edge, contact_port: int) -> None:
    """Register 1002 with a Contact pointing at the SIPp UAS beside us."""
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
                "From: <sip:1002@127.0.0.1>;tag=r1",
                "To: <sip:1002@127.0.0.1>",
                f"Call-ID: {call_id}",
                f"CSeq: {cseq} REGISTER",
                f"Contact: <sip:1002@127.0.0.1:{contact_port}>",
                "Expires: 300",
            ] + ([f"Authorization: {auth}"] if auth else [])
            return ("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode()

        await layer.send(register(1, None), server)
        first = (await asyncio.wait_for(layer.receive(), 10)).message
        assert isinstance(first, Response) and first.status == 401
        challenge = first.headers.get_all("WWW-Authenticate")[0]
        auth = answer_challenge(
            challenge, "REGISTER", f"sip:127.0.0.1:{edge.port}", "1002", PASSWORD, "c1", 1
        )
        await layer.send(register(2, auth), server)
        ok = (await asyncio.wait_for(layer.receive(), 10)).message
        assert isinstance(ok, Response) and ok.status == 200


async def test_sipp_to_sipp_call_through_the_b2bua(edge: Edge, tmp_path: Path) -> None:
    uas_port = free_port()
    callee = await asyncio.create_subprocess_exec(
        sipp(),
        "-sn",
        "uas",
        "-i",
        "127.0.0.1",
        "-p",
        str(uas_port),
        "-m",
        "1",
        "-timeout",
        "30s",
        "-timeout_error",
        "-nostdin",
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await _register_callee(edge, uas_port)
        scenario = tmp_path / "caller.xml"
        scenario.write_text(CALLER.replace("PASSWORD", PASSWORD))
        caller = await asyncio.create_subprocess_exec(
            sipp(),
            f"127.0.0.1:{edge.port}",
            "-sf",
            str(scenario),
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-timeout",
            "30s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
            "-error_file",
            str(tmp_path / "caller-errors.log"),
            cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, caller_err = await asyncio.wait_for(caller.communicate(), 60)
        errors = tmp_path / "caller-errors.log"
        assert caller.returncode == 0, (
            f"caller failed: {caller_err.decode()}\n{errors.read_text() if errors.exists() else ''}"
        )
        _, callee_err = await asyncio.wait_for(callee.communicate(), 60)
        assert callee.returncode == 0, f"callee failed: {callee_err.decode()}"
    finally:
        if callee.returncode is None:
            callee.kill()
            await callee.wait()
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(5):
        while sip.calls_ended < 1:  # noqa: ASYNC110 - the call task ends on its own
            await asyncio.sleep(0.05)
    assert sip.active_dialogs == 0  # both legs forgotten once the call ended
