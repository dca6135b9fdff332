"""SIPp scenarios for the tests against a running `telportal serve`.

Callers reuse the in-process tests' scenarios (`tests/integration/signaling`), with
the password filled in. A callee is a SIPp phone that registers itself with digest
authentication (so over TCP the server reaches it on the connection it registered
on, as it would a real phone), answers the call the server places to it with an
out-of-call scenario (`-oocsf`: the INVITE carries a Call-ID SIPp has not seen),
and unregisters once that call is over. The two scenarios of one SIPp process
share the global variable `calldone`: the main scenario waits for it.
"""

from tests.integration.signaling import sipp_scenarios as shared
from tests.integration.signaling.test_sipp_call import CALLER as SHARED_CALLER

HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'


def with_password(scenario: str, password: str) -> str:
    return scenario.replace("password=PASSWORD", f"password={password}")


def _register(user: str, password: str, expires: int, cseq: int) -> str:
    """REGISTER, the 401 answered with digest, 200."""
    contact = f"<sip:{user}@[local_ip]:[local_port];transport=[transport]>"

    def request(n: int, auth: str) -> str:
        return f"""  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[remote_ip]>;tag=[pid]reg[call_number]
To: <sip:{user}@[remote_ip]>
Call-ID: [call_id]
CSeq: {n} REGISTER
Contact: {contact}
{auth}Max-Forwards: 70
Expires: {expires}
User-Agent: SIPp
Content-Length: 0

]]></send>
"""

    auth = f"[authentication username={user} password={password}]\n"
    return (
        request(cseq, "")
        + '  <recv response="401" auth="true"/>\n'
        + request(cseq + 1, auth)
        + '  <recv response="200"/>\n'
    )


def register_and_unregister(user: str, password: str) -> str:
    """A phone that registers for 300 s, then removes its binding again."""
    return (
        HEAD.format(name=f"{user} registers and unregisters")
        + _register(user, password, 300, 1)
        + _register(user, password, 0, 3)
        + "</scenario>\n"
    )


def callee_main(user: str, password: str) -> str:
    """Register, wait until the out-of-call scenario has finished its call, unregister."""
    return (
        HEAD.format(name=f"phone {user}")
        + '  <Global variables="calldone"/>\n'
        + _register(user, password, 300, 1)
        + """  <label id="wait"/>
  <pause milliseconds="100"/>
  <nop><action>
    <test assign_to="done" variable="calldone" compare="equal" value="1"/>
  </action></nop>
  <nop next="over" test="done"/>
  <nop next="wait"/>
  <label id="over"/>
"""
        + _register(user, password, 0, 3)
        + "</scenario>\n"
    )


def _reply(status: str, user: str, sdp: bool = False, retrans: bool = False) -> str:
    body = (
        """Content-Type: application/sdp
Content-Length: [len]

v=0
o=callee 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
        if sdp
        else "Content-Length: 0\n\n"
    )
    return f"""  <send{' retrans="500"' if retrans else ""}><![CDATA[
SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
{body}]]></send>
"""


DONE = '<action><assign assign_to="calldone" value="1"/></action>'
OK_TO_REQUEST = shared.OK_TO_REQUEST


def callee_answers(user: str) -> str:
    """The out-of-call scenario of a phone that rings, answers, and is hung up (BYE)."""
    return (
        HEAD.format(name=f"phone {user} answers")
        + '  <Global variables="calldone"/>\n'
        + '  <recv request="INVITE"/>\n'
        + _reply("180 Ringing", user)
        + _reply("200 OK", user, sdp=True, retrans=True)
        + '  <recv request="ACK"/>\n'
        + f'  <recv request="BYE">{DONE}</recv>\n'
        + OK_TO_REQUEST
        + "</scenario>\n"
    )


def callee_rings(user: str) -> str:
    """The out-of-call scenario of a phone that rings until the call is cancelled."""
    return (
        HEAD.format(name=f"phone {user} rings")
        + '  <Global variables="calldone"/>\n'
        + '  <recv request="INVITE"/>\n'
        + _reply("180 Ringing", user)
        + '  <recv request="CANCEL"/>\n'
        + OK_TO_REQUEST.replace("[last_To:]", "[last_To:];tag=[pid]callee[call_number]")
        + """  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
CSeq: [cseq] INVITE
Content-Length: 0

]]></send>
"""
        + f'  <recv request="ACK">{DONE}</recv>\n'
        + "</scenario>\n"
    )


def _calling(scenario: str, password: str, extension: str) -> str:
    """A shared caller scenario (1001 calls 1002) with our password and callee."""
    return with_password(scenario, password).replace("sip:1002@", f"sip:{extension}@")


def answered_caller(password: str, extension: str = "1002") -> str:
    """1001 calls `extension` with digest: answered, ACK, 500 ms, BYE."""
    return _calling(SHARED_CALLER, password, extension)


def never_acking_caller(password: str, extension: str = "1002") -> str:
    """1001 calls `extension`, gets the 200 and never ACKs; ends on the server's BYE."""
    return _calling(shared.NO_ACK_CALLER, password, extension)


def cancelling_caller(password: str, extension: str = "1002") -> str:
    """1001 calls `extension` and cancels while it rings: 200 to the CANCEL, 487, ACK."""
    return _calling(shared.CANCEL_CALLER, password, extension)


def _offer(port: str) -> str:
    return f"""v=0
o=caller 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [media_ip]
t=0 0
m=audio {port} RTP/AVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
"""


def _from(user: str) -> str:
    return f"From: <sip:{user}@[remote_ip]>;tag=[pid]ivr[call_number]"


def _to(number: str) -> str:
    return f"To: <sip:{number}@[remote_ip]:[remote_port]>"


def ivr_caller(
    user: str, password: str, number: str, middle: str, *, media_port: str = "[media_port]"
) -> str:
    """`user` calls the service number with digest; `middle` runs once the call is up.

    The SDP offers PCMU and RFC 4733 telephone-events on `media_port` (SIPp's own
    media port unless another is given: the test's RTP listener).
    """
    offer = _offer(media_port)

    def invite(cseq: int, auth: str) -> str:
        return f"""  <send retrans="500"><![CDATA[
INVITE sip:{number}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{_from(user)}
{_to(number)}
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:{user}@[local_ip]:[local_port];transport=[transport]>
{auth}Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{offer}]]></send>
"""

    def ack(cseq: int, first_line: str, via: str) -> str:
        return f"""  <send><![CDATA[
ACK {first_line} SIP/2.0
{via}
{_from(user)}
{_to(number)}[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""

    return (
        HEAD.format(name=f"{user} calls {number}")
        + invite(1, "")
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="401" auth="true"/>\n'
        + ack(1, f"sip:{number}@[remote_ip]:[remote_port]", "[last_Via:]")
        + invite(2, f"[authentication username={user} password={password}]\n")
        + '  <recv response="100" optional="true"/>\n'
        + '  <recv response="180" optional="true"/>\n'
        + '  <recv response="183" optional="true"/>\n'
        + '  <recv response="200" rrs="true"/>\n'
        + ack(2, "[next_url]", "Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]")
        + middle.replace("FROM_HEADER", _from(user)).replace("TO_HEADER", _to(number))
        + "</scenario>\n"
    )


def play_pcap(path: str, after_ms: int) -> str:
    """Wait `after_ms`, then send the packets of a pcap from SIPp's media port."""
    return (
        f'  <pause milliseconds="{after_ms}"/>\n'
        f'  <nop><action><exec play_pcap_audio="{path}"/></action></nop>\n'
    )


hung_up_by_server = shared.hung_up_by_server


def hang_up_after(ms: int) -> str:
    """Stay on the line `ms`, then BYE (for `ivr_caller`'s `middle`)."""
    return f"""  <pause milliseconds="{ms}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
FROM_HEADER
TO_HEADER[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
"""
