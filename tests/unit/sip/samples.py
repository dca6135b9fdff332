"""Realistic SIP messages, byte for byte, in the shape deployed user agents send them.

Modelled on RFC 3261 section 24 and RFC 3665; hosts use the documentation ranges.
"""

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    b"s=Session SDP\r\n"
    b"c=IN IP4 pc33.atlanta.example.com\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

ANSWER = (
    b"v=0\r\n"
    b"o=bob 2890844527 2890844527 IN IP4 192.0.2.4\r\n"
    b"s=Session SDP\r\n"
    b"c=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\n"
    b"m=audio 3456 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

INVITE = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b'From: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>\r\n"
    b"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    b"Supported: replaces, timer\r\n"
    b"User-Agent: Telportal/0.1 (test)\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 172\r\n"
    b"\r\n" + OFFER
)

REGISTER = (
    b"REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP [2001:db8::9:1]:5060;branch=z9hG4bKnashd92\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=ja743ks76zlflH\r\n"
    b"Call-ID: 1j9FpLxk3uxtm8tn@[2001:db8::9:1]\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:bob@[2001:db8::9:1]:5060;transport=tcp>;expires=3600;q=0.7\r\n"
    b'Authorization: Digest username="bob", realm="biloxi.example.com",'
    b' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:registrar.biloxi.example.com",'
    b' response="6629fae49393a05397450978507c4ef1", algorithm=MD5\r\n'
    b"Content-Length: 0\r\n"
    b"\r\n"
)

OK_TO_INVITE = (
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n"
    b"Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1"
    b";received=192.0.2.2\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.1"
    b";rport=5060\r\n"
    b"Record-Route: <sip:server10.biloxi.example.com;lr>,"
    b" <sip:bigbox3.site3.atlanta.example.com;lr>\r\n"
    b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b'From: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:bob@192.0.2.4>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 139\r\n"
    b"\r\n" + ANSWER
)

BYE = (
    b"BYE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\r\n"
    b"Max-Forwards: 70\r\n"
    b"Route: <sip:bigbox3.site3.atlanta.example.com;lr>\r\n"
    b"From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    b'To: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 231 BYE\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)

# The same kind of request written the way terse user agents write it.
COMPACT_OPTIONS = (
    b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n"
    b"Max-Forwards: 70\r\n"
    b"t: <sip:carol@chicago.example.com>\r\n"
    b"f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"i: a84b4c76e66710\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b"m: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"k: replaces\r\n"
    b"c: application/sdp\r\n"
    b"l: 0\r\n"
    b"\r\n"
)

REALISTIC = {
    "invite": INVITE,
    "register": REGISTER,
    "ok": OK_TO_INVITE,
    "bye": BYE,
    "compact": COMPACT_OPTIONS,
}
