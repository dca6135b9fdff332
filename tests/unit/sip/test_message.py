import re

import pytest

from telportal.sip import (
    STAR,
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    parse_message,
    parse_sip_uri,
)
from tests.unit.sip.samples import BYE, COMPACT_OPTIONS, INVITE, OFFER, REALISTIC, REGISTER


def parse_request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def parse_response(data: bytes) -> Response:
    message = parse_message(data)
    assert isinstance(message, Response)
    return message


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_messages_round_trip_byte_for_byte(name: str) -> None:
    data = REALISTIC[name]
    message = parse_message(data)
    assert bytes(message) == data
    assert message.to_bytes() == data
    assert parse_message(bytes(message)) == message


def test_invite_fields() -> None:
    invite = parse_request(INVITE)
    assert invite.method == "INVITE"
    assert invite.uri == parse_sip_uri("sip:bob@biloxi.example.com")
    assert invite.version == "SIP/2.0"
    assert invite.body == OFFER
    assert invite.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert (invite.cseq.number, invite.cseq.method) == (314159, "INVITE")
    assert invite.max_forwards == 70
    assert invite.content_length == len(OFFER)
    assert invite.content_type == "application/sdp"
    assert invite.expires is None
    assert invite.from_.display_name == "Alice, the caller"
    assert invite.from_.tag == "1928301774"
    assert invite.to.tag is None
    assert invite.top_via.branch == "z9hG4bKnashds8"
    assert invite.top_via.wants_rport
    contacts = invite.contacts
    assert contacts != STAR
    assert [str(contact.uri) for contact in contacts] == [
        "sip:alice@pc33.atlanta.example.com;transport=udp"
    ]
    assert invite.headers.get_all("Allow") == [
        "INVITE", "ACK", "CANCEL", "OPTIONS", "BYE", "REFER", "NOTIFY"
    ]  # fmt: skip
    assert invite.routes == []


def test_register_fields() -> None:
    register = parse_request(REGISTER)
    assert register.top_via.host == "[2001:db8::9:1]"
    assert register.top_via.port == 5060
    contacts = register.contacts
    assert contacts != STAR
    [contact] = contacts
    assert isinstance(contact.uri, SipUri)
    assert (contact.uri.host, contact.uri.port) == ("[2001:db8::9:1]", 5060)
    assert contact.params.get("expires") == "3600"
    # Authorization is not a list field: the commas of its digest parameters stay
    assert len(register.headers.get_all("Authorization")) == 1


def test_response_fields() -> None:
    ok = parse_response(REALISTIC["ok"])
    assert (ok.status, ok.reason, ok.is_provisional) == (200, "OK", False)
    assert [via.received for via in ok.vias] == ["192.0.2.3", "192.0.2.2", "192.0.2.1"]
    assert ok.vias[2].rport == 5060
    assert [str(route.uri) for route in ok.record_routes] == [
        "sip:server10.biloxi.example.com;lr",
        "sip:bigbox3.site3.atlanta.example.com;lr",
    ]
    assert ok.to.tag == "a6c85cf"


def test_compact_forms() -> None:
    options = parse_request(COMPACT_OPTIONS)
    assert options.call_id == "a84b4c76e66710"
    assert options.top_via.branch == "z9hG4bKhjhs8ass877"
    assert str(options.to.uri) == "sip:carol@chicago.example.com"
    assert options.from_.tag == "1928301774"
    assert options.content_length == 0
    assert options.content_type == "application/sdp"
    assert options.headers.get_all("Supported") == ["replaces"]
    assert options.headers.lines("Content-Length") == [("l", "0")]


def test_folding_is_unfolded() -> None:
    data = (
        b"OPTIONS sip:user@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKkdjuw\r\n"
        b"To: sip:user@example.com\r\n"
        b"From: sip:caller@example.org\r\n  ;tag=33242\r\n"
        b"Call-ID: semiuri.0ha0isndaksdj\r\n"
        b"CSeq: 8\r\n\tOPTIONS\r\n"
        b"Accept: application/sdp, application/pkcs7-mime,\r\n"
        b"        multipart/mixed, multipart/signed,\r\n"
        b"        message/sip, message/sipfrag\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    options = parse_request(data)
    assert options.from_.tag == "33242"
    assert options.cseq.method == "OPTIONS"
    assert options.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]
    assert b"CSeq: 8 OPTIONS\r\n" in bytes(options)


def test_values_of_one_field_across_lines_and_commas_combine() -> None:
    data = (
        b"BYE sip:user@host.example.net SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,"
        b" SIP/2.0/TCP b.example.com;branch=z9hG4bK2\r\n"
        b"v: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bK3\r\n"
        b"VIA : SIP/2.0/SCTP d.example.com;branch=z9hG4bK4\r\n"
        b'Route: <sip:p1.example.com;lr>, "Proxy, two" <sip:p2.example.com;lr>\r\n'
        b"\r\n"
    )
    bye = parse_request(data)
    assert [via.branch for via in bye.vias] == [f"z9hG4bK{n}" for n in range(1, 5)]
    assert [via.transport for via in bye.vias] == ["UDP", "TCP", "UDP", "SCTP"]
    assert [route.display_name for route in bye.routes] == [None, "Proxy, two"]


def test_body_rules_for_datagrams() -> None:
    head = b"MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
    # no Content-Length: the rest of the datagram
    assert parse_message(head + b"\r\nhello\r\n").body == b"hello\r\n"
    # octets past Content-Length are ignored
    assert parse_message(head + b"Content-Length: 5\r\n\r\nhello, extra").body == b"hello"
    # conflicting lengths: the rest, for validation to refuse
    message = parse_message(head + b"l: 2\r\nContent-Length: 5\r\n\r\nhello!")
    assert message.body == b"hello!"
    with pytest.raises(SipParseError, match=r"^Content-Length header: appears 2 times$"):
        _ = message.content_length
    with pytest.raises(SipParseError, match=r"^Content-Length 9999 exceeds body of 5 bytes$"):
        parse_message(head + b"Content-Length: 9999\r\n\r\nhello")


def test_multipart_body_is_kept_intact() -> None:
    body = (
        b"--7a9cbec02ceef655\r\n"
        b"Content-Type: text/plain\r\n\r\nHello\r\n"
        b"--7a9cbec02ceef655\r\n"
        b"Content-Type: application/octet-stream\r\n\r\n\x00\xff\r\n\r\n\x82\x01\r\n"
        b"--7a9cbec02ceef655--\r\n"
    )
    data = (
        b"MESSAGE sip:kumiko@example.org SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543;rport\r\n"
        b"Content-Type: multipart/mixed;boundary=7a9cbec02ceef655\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    message = parse_message(data)
    assert message.body == body
    assert bytes(message) == data


def test_leading_crlf_and_bare_lf_are_tolerated() -> None:
    assert bytes(parse_message(b"\r\n\r\n" + BYE)) == BYE
    lf_only = BYE.replace(b"\r\n", b"\n")
    assert bytes(parse_message(lf_only)) == BYE


def test_non_utf8_octets_survive_a_round_trip() -> None:
    data = b"SIP/2.0 200 \xd0\xbe\xff\r\nSubject: \xfe\xfd\r\nContent-Length: 0\r\n\r\n"
    response = parse_response(data)
    assert bytes(response) == data


def test_built_messages_serialize_identically_every_time() -> None:
    def build() -> Request:
        headers = Headers()
        headers.add("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9")
        headers.add("Max-Forwards", "70")
        headers.add("From", '"Telportal" <sip:ivr@pbx.example.com>;tag=9fxced76sl')
        headers.add("To", "<sip:1001@pbx.example.com>")
        headers.add("Call-ID", "3848276298220188511@pbx.example.com")
        headers.add("CSeq", "1 INVITE")
        headers.add("Content-Type", "application/sdp")
        return Request("INVITE", parse_sip_uri("sip:1001@192.0.2.20:5060"), headers, OFFER)

    first = build().to_bytes()
    assert first == build().to_bytes()
    assert first.endswith(b"Content-Length: 172\r\n\r\n" + OFFER)
    assert bytes(parse_message(first)) == first


def test_content_length_always_follows_the_body() -> None:
    bye = parse_request(BYE)
    bye.body = b"abc"
    assert b"Content-Length: 3\r\n" in bytes(bye)
    bye.headers.add("l", "99")
    assert bytes(bye).count(b"Content-Length") == 1
    assert b"l: 99" not in bytes(bye)
    response = Response(180, "Ringing")
    assert bytes(response) == b"SIP/2.0 180 Ringing\r\nContent-Length: 0\r\n\r\n"


def test_response_to_a_request() -> None:
    ok_request = parse_request(INVITE)
    ok = make_response(
        ok_request, 200, to_tag="a6c85cf", headers=[("Contact", "<sip:bob@192.0.2.4>")]
    )
    assert ok.reason == "OK"
    assert bytes(ok) == (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;rport\r\n"
        b'From: "Alice, the caller" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
        b"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
        b"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        b"CSeq: 314159 INVITE\r\n"
        b"Contact: <sip:bob@192.0.2.4>\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


def test_response_copies_every_via_and_keeps_an_existing_tag() -> None:
    request = parse_request(
        b"BYE sip:a@b SIP/2.0\r\n"
        b"v: SIP/2.0/UDP one;branch=z9hG4bK1, SIP/2.0/UDP two;branch=z9hG4bK2\r\n"
        b"Via: SIP/2.0/UDP three;branch=z9hG4bK3\r\n"
        b"t: <sip:a@b>;tag=old\r\nf: <sip:c@d>;tag=x\r\ni: id\r\nCSeq: 2 BYE\r\n"
        b"Timestamp: 54\r\n\r\n"
    )
    response = make_response(request, 486, to_tag="new")
    assert response.reason == "Busy Here"
    assert response.headers.lines("Via") == [
        ("Via", "SIP/2.0/UDP one;branch=z9hG4bK1, SIP/2.0/UDP two;branch=z9hG4bK2"),
        ("Via", "SIP/2.0/UDP three;branch=z9hG4bK3"),
    ]
    assert response.to.tag == "old"
    assert response.call_id == "id"
    assert "Timestamp" not in response.headers
    trying = make_response(request, 100, "Trying", to_tag="new")
    assert trying.headers.get("Timestamp") == "54"


def test_100_trying_gets_no_tag() -> None:
    trying = make_response(parse_request(INVITE), 100, to_tag="abc")
    assert trying.to.tag is None


def test_accessor_errors_name_the_header() -> None:
    message = parse_request(
        b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nCSeq: 2 OPTIONS\r\n\r\n"
    )
    with pytest.raises(SipParseError, match=r"^CSeq header: appears 2 times$"):
        _ = message.cseq
    with pytest.raises(SipParseError, match=r"^Call-ID header: missing$"):
        _ = message.call_id
    with pytest.raises(SipParseError, match=r"^To header: missing$"):
        _ = message.to
    with pytest.raises(SipParseError, match=r"^Via header: missing$"):
        _ = message.top_via
    assert message.vias == []
    assert message.max_forwards is None
    star = parse_request(b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nExpires: 0\r\n\r\n")
    assert star.contacts == STAR
    assert star.expires == 0
    mixed = parse_request(b"REGISTER sip:r SIP/2.0\r\nContact: *, <sip:a@b>\r\n\r\n")
    with pytest.raises(SipParseError, match=r"^Contact header: '\*' must be the only value$"):
        _ = mixed.contacts


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: x\r\n",
            "header section not terminated by an empty line",
        ),
        (b" \r\n\r\n", "request line: empty"),
        (
            b"INVITE  sip:user@example.com  SIP/2.0\r\n\r\n",
            "request line: elements not separated by single SP:"
            " 'INVITE  sip:user@example.com  SIP/2.0'",
        ),
        (
            b"INVITE\tsip:user@example.com SIP/2.0\r\n\r\n",
            "request line: elements not separated by single SP:"
            " 'INVITE\\tsip:user@example.com SIP/2.0'",
        ),
        (
            b"INVITE sip:user@example.com; lr SIP/2.0\r\n\r\n",
            "request line: expected Method SP Request-URI SP SIP-Version, found 4 elements"
            " in 'INVITE sip:user@example.com; lr SIP/2.0'",
        ),
        (
            b"INVITE sip:user@example.com\r\n\r\n",
            "request line: expected Method SP Request-URI SP SIP-Version, found 2 elements"
            " in 'INVITE sip:user@example.com'",
        ),
        (b"IN/VITE sip:a@b SIP/2.0\r\n\r\n", "request line: bad method 'IN/VITE'"),
        (b"OPTIONS sip:a@b SIP/7.0\r\n\r\n", "request line: bad SIP version 'SIP/7.0'"),
        (b"OPTIONS sip:a@b HTTP/1.1\r\n\r\n", "request line: bad SIP version 'HTTP/1.1'"),
        (
            b"INVITE <sip:user@example.com> SIP/2.0\r\n\r\n",
            "request line: bad Request-URI '<sip:user@example.com>': forbidden character '<'",
        ),
        (
            b"REGISTER sip:2001:db8::10 SIP/2.0\r\n\r\n",
            "request line: bad Request-URI 'sip:2001:db8::10':"
            " IPv6 address '2001:db8::10' must be in brackets",
        ),
        (b"SIP/2.0 4294967301 Big\r\n\r\n", "status line: bad status code '4294967301'"),
        (b"SIP/2.0 099 Low\r\n\r\n", "status line: bad status code '099'"),
        (b"SIP/2.0 700 High\r\n\r\n", "status line: bad status code '700'"),
        (b"SIP/2.0 2OO OK\r\n\r\n", "status line: bad status code '2OO'"),
        (b"SIP/3.0 200 OK\r\n\r\n", "status line: bad SIP version 'SIP/3.0'"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\n Via: x\r\n\r\n",
            "header section starts with a continuation line",
        ),
        (b"OPTIONS sip:a@b SIP/2.0\r\nVia x\r\n\r\n", "header line without a colon: 'Via x'"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nV\xc3\xada: x\r\n\r\n", "bad header name 'V\u00eda'"),
        (b"OPTIONS sip:a@b SIP/2.0\r\nSubject: a\rb\r\n\r\n", "bare CR in header section"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: -999\r\n\r\n",
            "Content-Length header: bad value '-999'",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 10\r\n\r\nshort",
            "Content-Length 10 exceeds body of 5 bytes",
        ),
    ],
)
def test_parse_errors_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(SipParseError, match=f"^{re.escape(message)}$"):
        parse_message(data)


def test_trailing_spaces_after_the_version_are_tolerated() -> None:
    # RFC 4475 3.1.2.6 allows either answer; being liberal costs nothing here
    request = parse_request(b"OPTIONS sip:a@b SIP/2.0  \r\n\r\n")
    assert request.start_line == "OPTIONS sip:a@b SIP/2.0"


def test_empty_reason_phrase() -> None:
    response = parse_response(b"SIP/2.0 100 \r\nContent-Length: 0\r\n\r\n")
    assert (response.status, response.reason) == (100, "")
    assert bytes(response).startswith(b"SIP/2.0 100 \r\n")
