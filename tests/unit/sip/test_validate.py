import pytest

from telportal.sip import (
    Accept,
    Drop,
    HeaderProblem,
    Reject,
    Rejection,
    Request,
    ServerPolicy,
    check_mandatory,
    check_request,
    parse_message,
    screen_datagram,
)
from tests.unit.sip.samples import BYE, INVITE, OK_TO_INVITE, REALISTIC

OPTIONS_LINES = [
    b"OPTIONS sip:user@example.com SIP/2.0",
    b"Via: SIP/2.0/UDP host.example.com;branch=z9hG4bKkdjuw",
    b"To: <sip:user@example.com>",
    b"From: <sip:caller@example.net>;tag=34525",
    b"Call-ID: check.dj0234sxdfl3",
    b"CSeq: 8 OPTIONS",
    b"Max-Forwards: 70",
]


def options(*, drop: str = "", extra: tuple[bytes, ...] = (), body: bytes = b"") -> bytes:
    lines = [line for line in OPTIONS_LINES if not (drop and line.startswith(drop.encode()))]
    return b"\r\n".join([*lines, *extra]) + b"\r\n\r\n" + body


def request(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


@pytest.mark.parametrize("name", sorted(REALISTIC))
def test_realistic_messages_pass(name: str) -> None:
    assert check_mandatory(parse_message(REALISTIC[name])) is None


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("To", "To header: missing"),
        ("From", "From header: missing"),
        ("CSeq", "CSeq header: missing"),
        ("Call-ID", "Call-ID header: missing"),
        ("Via", "Via header: missing"),
    ],
)
def test_missing_mandatory_header(header: str, detail: str) -> None:
    assert check_mandatory(request(options(drop=header + ":"))) == HeaderProblem(header, detail)


def test_max_forwards_may_be_missing_unless_required() -> None:
    without = request(options(drop="Max-Forwards:"))
    assert check_mandatory(without) is None
    assert check_mandatory(without, require_max_forwards=True) == HeaderProblem(
        "Max-Forwards", "Max-Forwards header: missing"
    )
    assert check_request(without, ServerPolicy(require_max_forwards=True)) == Rejection(
        400, "Max-Forwards header: missing", "Max-Forwards header: missing"
    )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (
            b"Max-Forwards: 256",
            HeaderProblem("Max-Forwards", "Max-Forwards header: appears 2 times"),
        ),
        (b"To: <sip:other@example.net>", HeaderProblem("To", "To header: appears 2 times")),
        (b"Via: SIP/2.0/UDP ;", HeaderProblem("Via", "Via header: missing sent-by")),
        (
            b"l: 1\r\nContent-Length: 2",
            HeaderProblem("Content-Length", "Content-Length header: appears 2 times"),
        ),
        (b"Contact: <sip:a@b", HeaderProblem("Contact", "Contact header: missing '>'")),
        (b"Route: sip:a@b;;", HeaderProblem("Route", "Route header: empty parameter")),
        (
            b"Record-Route: <sip: a@b>",
            HeaderProblem(
                "Record-Route", "Record-Route header: bad URI 'sip: a@b': whitespace inside the URI"
            ),
        ),
    ],
)
def test_bad_header(extra: bytes, problem: HeaderProblem) -> None:
    assert check_mandatory(request(options(extra=(extra,)))) == problem


def test_cseq_method_must_match() -> None:
    mismatch = request(options().replace(b"CSeq: 8 OPTIONS", b"CSeq: 8 INVITE"))
    assert check_mandatory(mismatch) == HeaderProblem(
        "CSeq", "CSeq header: method INVITE does not match request method OPTIONS"
    )


def test_responses_are_checked_without_method_or_max_forwards() -> None:
    ok = parse_message(OK_TO_INVITE)
    assert check_mandatory(ok) is None
    broken = parse_message(OK_TO_INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: x"))
    assert check_mandatory(broken) == HeaderProblem("CSeq", "CSeq header: bad value 'x'")


def test_acceptable_request() -> None:
    assert check_request(request(INVITE)) is None
    assert check_request(request(BYE)) is None


def test_unknown_method_is_501_known_but_not_served_is_405() -> None:
    unknown = request(options().replace(b"OPTIONS", b"NEWMETHOD"))
    assert check_request(unknown) == Rejection(
        501, "Not Implemented", "method NEWMETHOD not supported"
    )
    policy = ServerPolicy(methods=frozenset({"INVITE", "ACK", "BYE", "CANCEL"}))
    rejection = check_request(request(options()), policy)
    assert rejection == Rejection(
        405,
        "Method Not Allowed",
        "method OPTIONS not supported",
        (("Allow", "ACK, BYE, CANCEL, INVITE"),),
    )


def test_syntax_comes_before_method() -> None:
    # RFC 4475 3.1.2.13: an unknown method with a CSeq mismatch is a 400, not a 501
    data = options().replace(b"OPTIONS sip", b"NEWMETHOD sip")
    rejection = check_request(request(data))
    assert rejection is not None
    assert rejection.status == 400
    assert rejection.reason == "CSeq header: method OPTIONS does not match request method NEWMETHOD"


def test_unsupported_uri_scheme() -> None:
    data = options().replace(
        b"OPTIONS sip:user@example.com", b"OPTIONS soap.beep://192.0.2.103:3002"
    )
    assert check_request(request(data)) == Rejection(
        416, "Unsupported URI Scheme", "Request-URI scheme soap.beep not supported"
    )
    assert check_request(request(data), ServerPolicy(uri_schemes=frozenset({"soap.beep"}))) is None


def test_require_lists_unsupported_extensions() -> None:
    data = options(extra=(b"Require: 100rel, foo", b"Proxy-Require: bar"))
    assert check_request(request(data)) == Rejection(
        420,
        "Bad Extension",
        "unsupported extensions: 100rel, foo",
        (("Unsupported", "100rel, foo"),),
    )
    policy = ServerPolicy(option_tags=frozenset({"100rel", "foo"}))
    assert check_request(request(data), policy) is None
    # ACK and CANCEL cannot be refused for it
    cancel = data.replace(b"OPTIONS", b"CANCEL")
    assert check_request(request(cancel)) is None


def test_unknown_body_type_or_encoding() -> None:
    unknown = options(extra=(b"Content-Type: application/unknownformat",), body=b"<audio/>")
    assert check_request(request(unknown)) == Rejection(
        415,
        "Unsupported Media Type",
        "content type application/unknownformat not supported",
        (("Accept", "application/sdp, multipart/alternative, multipart/mixed, text/plain"),),
    )
    gzip = options(extra=(b"Content-Type: application/sdp", b"e: gzip"), body=b"\x1f\x8b")
    assert check_request(request(gzip)) == Rejection(
        415,
        "Unsupported Media Type",
        "content encoding gzip not supported",
        (("Accept-Encoding", "identity"),),
    )
    # without a body, Content-Type says nothing
    empty = options(extra=(b"Content-Type: application/unknownformat",))
    assert check_request(request(empty)) is None


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (b"Accept: text/nobodyKnowsThis", 406),
        (b"Accept: application/sdp;q=0", 406),
        (b"Accept: text/html, application/*", None),
        (b"Accept: */*", None),
        (b"Accept: application/SDP;q=0.5", None),
    ],
)
def test_invite_accept_must_allow_an_answer(accept: bytes, status: int | None) -> None:
    data = INVITE.replace(b"Content-Type:", accept + b"\r\nContent-Type:")
    rejection = check_request(request(data))
    assert (rejection.status if rejection else None) == status


def test_screen_accepts_and_rejects_with_a_response() -> None:
    assert isinstance(screen_datagram(INVITE, to_tag="t1"), Accept)
    verdict = screen_datagram(
        INVITE.replace(b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE"), to_tag="t1"
    )
    assert isinstance(verdict, Reject)
    response = parse_message(bytes(verdict.response))
    assert bytes(response) == bytes(verdict.response)
    assert response.start_line == (
        "SIP/2.0 400 CSeq header: method BYE does not match request method INVITE"
    )
    assert response.to.tag == "t1"
    assert response.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert [via.branch for via in response.vias] == ["z9hG4bKnashds8"]


def test_screen_answers_an_unparseable_request_from_its_raw_lines() -> None:
    data = INVITE.replace(
        b"INVITE sip:bob@biloxi.example.com", b"INVITE <sip:bob@biloxi.example.com>"
    )
    verdict = screen_datagram(data, to_tag="t2")
    assert isinstance(verdict, Reject)
    assert verdict.rejection.status == 400
    assert verdict.rejection.detail.startswith("request line: bad Request-URI")
    assert verdict.response.to.tag == "t2"
    assert verdict.response.cseq.method == "INVITE"


def test_screen_answers_another_version_with_505() -> None:
    data = options().replace(b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1)
    verdict = screen_datagram(data, to_tag="t3")
    assert isinstance(verdict, Reject)
    assert verdict.rejection == Rejection(
        505, "Version Not Supported", "request line: bad SIP version 'SIP/7.0'"
    )


def test_screen_answers_an_oversized_request_with_513() -> None:
    data = options(extra=(b"Content-Type: text/plain",), body=b"x" * 2000)
    verdict = screen_datagram(data, to_tag="t5", policy=ServerPolicy(max_message_size=1500))
    assert isinstance(verdict, Reject)
    assert verdict.rejection == Rejection(
        513, "Message Too Large", f"message of {len(data)} bytes exceeds the limit of 1500 bytes"
    )
    assert verdict.response.call_id == "check.dj0234sxdfl3"
    assert isinstance(screen_datagram(data, to_tag="t5"), Accept)


def test_screen_keeps_a_broken_to_header_as_it_was() -> None:
    data = options().replace(
        b"To: <sip:user@example.com>", b'To: "Mr. J. User <sip:j.user@example.com>'
    )
    verdict = screen_datagram(data, to_tag="t4")
    assert isinstance(verdict, Reject)
    assert verdict.response.headers.get("To") == '"Mr. J. User <sip:j.user@example.com>'


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"garbage",
        OK_TO_INVITE.replace(b"SIP/2.0 200 OK", b"SIP/2.0 2000 OK"),  # responses are never answered
        OK_TO_INVITE.replace(b"Call-ID:", b"X-Call-ID:"),
        options().replace(b"OPTIONS", b"ACK", 1),  # nor is an ACK
        options(drop="Via:").replace(
            b"SIP/2.0\r\n", b"SIP/7.0\r\n", 1
        ),  # no Via: nowhere to answer
        b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nno colon here\r\n\r\n",
    ],
)
def test_screen_drops_what_cannot_be_answered(data: bytes) -> None:
    assert isinstance(screen_datagram(data, to_tag="t"), Drop)
