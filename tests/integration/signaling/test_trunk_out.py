"""A phone dials an outside number: out through the tenant's trunk, answering its digest.

The carrier is a SIPp UAS that challenges the first INVITE with 401 and checks the
second one's credentials with its own digest code (`verifyauth`); a wrong answer gets
403, which the calling SIPp does not expect, so the call fails loudly.
"""

import asyncio
import secrets
from pathlib import Path

from telportal.net import Peer, SipTransportLayer, Transport
from telportal.signaling.directory import SipTrunk
from telportal.sip import Response
from telportal.tenancy import schemas as s
from telportal.tenancy.roles import Scope
from tests.integration.signaling.conftest import Edge, free_port
from tests.integration.signaling.sipp_scenarios import hung_up_by_server
from tests.integration.signaling.test_sipp_call import CALLER, _finished, _sipp

NUMBER = "01099998888"
CARRIER_REALM = "carrier.example"
CARRIER_USER = "acme-out"
CARRIER_PASSWORD = "carrier-secret-1"

CARRIER = (
    """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carrier that wants digest">
  <recv request="INVITE">
    <action>
      <ereg regexp="^INVITE sip:NUMBER@" search_in="msg" check_it="true" assign_to="ruri"/>
    </action>
  </recv>
  <Reference variables="ruri"/>
  <send><![CDATA[
SIP/2.0 401 Unauthorized
[last_Via:]
[last_From:]
[last_To:];tag=[pid]c[call_number]
[last_Call-ID:]
[last_CSeq:]
WWW-Authenticate: Digest realm="REALM", nonce="4f1a9c3e5d", qop="auth"
Content-Length: 0

]]></send>
  <recv request="ACK"/>
  <recv request="INVITE">
    <action>
      <verifyauth assign_to="authvalid" username="USER" password="PASSWORD"/>
    </action>
  </recv>
  <nop hide="true" test="authvalid" next="good"/>
  <send next="end"><![CDATA[
SIP/2.0 403 Forbidden
[last_Via:]
[last_From:]
[last_To:];tag=[pid]c[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="good"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]d[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]d[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:carrier@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=carrier 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]></send>
  <recv request="ACK">
    <action>
      <!-- 13.2.2.4: the ACK carries the INVITE's credentials. -->
      <ereg regexp="Authorization: Digest .*username=.USER." search_in="msg"
            check_it="true" assign_to="ackauth"/>
    </action>
  </recv>
  <Reference variables="ackauth"/>
"""
    + hung_up_by_server(None)
    + """  <label id="end"/>
</scenario>
"""
)


async def _add_trunk(edge: Edge, port: int, *, password: str, max_channels: int | None) -> None:
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
                port=port,
                username=CARRIER_USER,
                auth_realm=CARRIER_REALM,
                password=password,
                max_channels=max_channels,
                keepalive=False,
            ),
        )
    await platform.sip.directory.load()


async def _dial_out(edge: Edge, tmp_path: Path, *, password: str) -> tuple[int | None, str]:
    """Run the carrier and a phone (1001) dialling NUMBER; the caller's exit code and log."""
    carrier_port = free_port()
    await _add_trunk(edge, carrier_port, password=password, max_channels=None)
    carrier_xml = tmp_path / "carrier.xml"
    carrier_xml.write_text(
        CARRIER.replace("NUMBER", NUMBER)
        .replace("REALM", CARRIER_REALM)
        .replace("USER", CARRIER_USER)
        .replace("PASSWORD", CARRIER_PASSWORD)
    )
    carrier = await _sipp(
        tmp_path, "carrier", "-sf", str(carrier_xml), "-i", "127.0.0.1",
        "-p", str(carrier_port), "-m", "1", "-timeout", "30s", "-timeout_error",
    )  # fmt: skip
    try:
        caller_xml = tmp_path / "caller.xml"
        caller_xml.write_text(
            CALLER.replace("1002@", f"{NUMBER}@").replace("PASSWORD", "phone-pass-1")
        )
        caller = await _sipp(
            tmp_path, "caller", f"127.0.0.1:{edge.port}", "-sf", str(caller_xml), "-m", "1",
            "-i", "127.0.0.1", "-p", str(free_port()), "-timeout", "30s", "-timeout_error",
        )  # fmt: skip
        _, err = await asyncio.wait_for(caller.communicate(), 60)
        log = tmp_path / "caller.err"
        text = err.decode() + (log.read_text() if log.exists() else "")
        await _finished(carrier, tmp_path, "carrier")  # its scenario ran to the end
        return caller.returncode, text
    finally:
        if carrier.returncode is None:
            carrier.kill()
            await carrier.wait()


async def test_phone_calls_out_through_the_trunk_with_its_stored_ha1(
    edge: Edge, tmp_path: Path
) -> None:
    code, log = await _dial_out(edge, tmp_path, password=CARRIER_PASSWORD)
    assert code == 0, log
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(10):
        while sip.active_dialogs or sip.trunk_channels:  # noqa: ASYNC110 - state we watch
            await asyncio.sleep(0.05)


async def test_wrong_trunk_password_fails_the_call_not_the_server(
    edge: Edge, tmp_path: Path
) -> None:
    code, log = await _dial_out(edge, tmp_path, password="not-the-carrier-secret")
    assert code != 0
    # The carrier refused our answer with 403; the caller hears the general 480.
    assert "received 'SIP/2.0 480 Temporarily Unavailable" in log
    sip = edge.platform.sip
    assert sip is not None
    async with asyncio.timeout(10):
        while sip.trunk_channels:  # noqa: ASYNC110 - state we watch
            await asyncio.sleep(0.05)


async def test_call_from_a_trunk_is_never_sent_back_out(edge: Edge) -> None:
    """A carrier's caller dialling an outside number gets 404, not our trunk (toll fraud)."""
    sip = edge.platform.sip
    assert sip is not None
    acme = sip.directory.tenant_for_domain("acme")
    assert acme is not None
    async with edge.platform.db.write(Scope.cli()) as uow:
        await edge.platform.resources["trunks"].create(
            uow,
            s.TrunkCreate(
                tenant_id=acme.tenant_id,
                name="carrier",
                host="127.0.0.1",
                port=free_port(),
                inbound_addresses=["127.0.0.1/32"],
                max_channels=1,
                keepalive=False,
            ),
        )
    await sip.directory.load()
    async with SipTransportLayer() as layer:
        listener = await layer.listen(Transport.UDP, "127.0.0.1", 0)
        server = Peer(Transport.UDP, "127.0.0.1", edge.port)
        lines = [
            f"INVITE sip:{NUMBER}@127.0.0.1:{edge.port} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{listener.port};branch=z9hG4bK{secrets.token_hex(6)}",
            "Max-Forwards: 70",
            "From: <sip:5550100@127.0.0.1>;tag=f1",
            f"To: <sip:{NUMBER}@127.0.0.1>",
            f"Call-ID: {secrets.token_hex(8)}",
            "CSeq: 1 INVITE",
            f"Contact: <sip:5550100@127.0.0.1:{listener.port}>",
        ]
        await layer.send(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode(), server)
        statuses: list[int] = []
        while not statuses or statuses[-1] < 200:
            message = (await asyncio.wait_for(layer.receive(), 10)).message
            assert isinstance(message, Response)
            statuses.append(message.status)
    assert statuses[-1] == 404
    async with asyncio.timeout(10):
        while sip.trunk_channels:  # noqa: ASYNC110 - the inbound channel is given back
            await asyncio.sleep(0.05)


def test_trunk_channels_are_counted_and_limited(edge: Edge) -> None:
    sip = edge.platform.sip
    assert sip is not None
    trunk = SipTrunk("t1", None, "carrier", "127.0.0.1", 5060, "udp", (), False, max_channels=2)
    assert sip.seize_channel(trunk) and sip.seize_channel(trunk)
    assert not sip.seize_channel(trunk)  # both channels in use
    sip.release_channel(trunk)
    assert sip.trunk_channels == {"t1": 1}
    assert sip.seize_channel(trunk)
    sip.release_channel(trunk)
    sip.release_channel(trunk)
    assert sip.trunk_channels == {}
