"""SIPp scenarios for the call tests, built from shared pieces.

`[authentication ...]` answers the 401 of the first INVITE; the ACK of that 401
reuses the INVITE's Via (`[last_Via:]`) so it matches the server transaction.
"""

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="{name}">
"""

FROM = 'From: "Caller" <sip:1001@[remote_ip]>;tag=[pid]SIPpTag00[call_number]'
TO = "To: <sip:1002@[remote_ip]:[remote_port]>"
OFFER = """v=0
o=caller 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""


def invite(cseq: int, auth: bool) -> str:
    credentials = "[authentication username=1001 password=PASSWORD]\n" if auth else ""
    return f"""  <send retrans="500"><![CDATA[
INVITE sip:1002@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{FROM}
{TO}
Call-ID: [call_id]
CSeq: {cseq} INVITE
Contact: <sip:1001@[local_ip]:[local_port];transport=[transport]>
{credentials}Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{OFFER}]]></send>
"""


AUTHENTICATED_INVITE = (
    invite(1, auth=False)
    + """  <recv response="100" optional="true"/>
  <recv response="401" auth="true"/>
  <send><![CDATA[
ACK sip:1002@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
"""
    + FROM
    + "\n"
    + TO
    + """[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
"""
    + invite(2, auth=True)
    + """  <recv response="100" optional="true"/>
"""
)


# The 200 OK to the request just received, from its own headers.
OK_TO_REQUEST = """  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""


def hung_up_by_server(timeout_ms: int | None = 40000) -> str:
    """Wait for the server's BYE (without a timeout: as long as SIPp's own) and answer it."""
    timeout = "" if timeout_ms is None else f' timeout="{timeout_ms}"'
    return f'  <recv request="BYE"{timeout}/>\n' + OK_TO_REQUEST


def in_dialog(method: str, cseq: int) -> str:
    return f"""  <send{' retrans="500"' if method != "ACK" else ""}><![CDATA[
{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
{FROM}
{TO}[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Max-Forwards: 70
Content-Length: 0

]]></send>
"""


# Answered, then the caller never ACKs: the B2BUA retransmits its 2xx and, after
# 64*T1, gives up and hangs up both legs (BYE to the caller and to the callee).
NO_ACK_CALLER = (
    HEAD.format(name="caller that never ACKs")
    + AUTHENTICATED_INVITE
    + """  <recv response="180" optional="true"/>
  <recv response="200"/>
"""
    + hung_up_by_server(None)
    + "</scenario>\n"
)

# The caller gives up while the callee rings: CANCEL, 200, 487, ACK.
CANCEL_CALLER = (
    HEAD.format(name="caller that cancels")
    + AUTHENTICATED_INVITE
    + """  <recv response="180"/>
  <send><![CDATA[
CANCEL sip:1002@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
"""
    + FROM
    + "\n"
    + TO
    + """
Call-ID: [call_id]
CSeq: 2 CANCEL
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
  <recv response="487"/>
  <send><![CDATA[
ACK sip:1002@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
"""
    + FROM
    + "\n"
    + TO
    + """[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
</scenario>
"""
)

# A callee that rings until cancelled.
RINGING_CALLEE = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="callee that only rings">
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:1002@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
  <recv request="CANCEL"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]callee[call_number]
[last_Call-ID:]
CSeq: [cseq] INVITE
Content-Length: 0

]]></send>
  <recv request="ACK"/>
</scenario>
"""
