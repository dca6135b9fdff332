import pytest

from telportal.sip import MessageFramer, Request, Response, SipParseError, parse_message
from tests.unit.sip.samples import BYE, INVITE, OK_TO_INVITE, REGISTER

STREAM = [INVITE, OK_TO_INVITE, REGISTER, BYE]


def serialized(messages: list[Request | Response]) -> list[bytes]:
    return [bytes(message) for message in messages]


def test_one_message_per_segment() -> None:
    framer = MessageFramer()
    for data in STREAM:
        assert serialized(framer.feed(data)) == [data]
    assert framer.buffered == 0


def test_merged_segments_give_every_message() -> None:
    framer = MessageFramer()
    assert serialized(framer.feed(b"".join(STREAM))) == STREAM


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 500])
def test_split_segments_give_the_same_messages(size: int) -> None:
    data = b"".join(STREAM)
    framer = MessageFramer()
    received: list[Request | Response] = []
    for offset in range(0, len(data), size):
        received += framer.feed(data[offset : offset + size])
    assert serialized(received) == STREAM
    assert framer.buffered == 0


def test_every_split_point_of_a_message_with_a_body() -> None:
    for cut in range(1, len(INVITE)):
        framer = MessageFramer()
        first = framer.feed(INVITE[:cut])
        second = framer.feed(INVITE[cut:])
        assert serialized(first + second) == [INVITE], cut
        assert first == []


def test_keep_alive_crlfs_are_skipped() -> None:
    framer = MessageFramer()
    # RFC 5626 4.4.1: a double-CRLF ping, and a single CRLF pong
    assert framer.feed(b"\r\n\r\n") == []
    assert framer.feed(b"\r\n") == []
    assert framer.buffered == 0
    assert serialized(framer.feed(b"\r\n" + BYE + b"\r\n\r\n" + BYE + b"\r")) == [BYE, BYE]
    assert serialized(framer.feed(b"\n" + BYE)) == [BYE]


def test_body_bytes_that_look_like_a_head_end_stay_in_the_body() -> None:
    body = b"\r\n\r\nINVITE sip:x SIP/2.0\r\n\r\n"
    message = parse_message(
        b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    framer = MessageFramer()
    [framed] = framer.feed(bytes(message) + BYE)[:1]
    assert framed.body == body


def test_a_stream_needs_content_length() -> None:
    framer = MessageFramer()
    with pytest.raises(
        SipParseError, match=r"^Content-Length header: missing \(required on stream transports\)$"
    ):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")


def test_conflicting_lengths_cannot_be_framed() -> None:
    framer = MessageFramer()
    with pytest.raises(SipParseError, match=r"^Content-Length header: 2 different values$"):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nContent-Length: 2\r\n\r\nab")


def test_header_section_size_limit() -> None:
    framer = MessageFramer(max_size=100)
    assert framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nSubject: " + b"x" * 60) == []
    with pytest.raises(SipParseError, match=r"^header section exceeds the limit of 100 bytes$"):
        framer.feed(b"x" * 40)


def test_message_size_limit() -> None:
    framer = MessageFramer(max_size=200)
    head = b"MESSAGE sip:a@b SIP/2.0\r\nContent-Length: 1000000\r\n\r\n"
    with pytest.raises(
        SipParseError,
        match=f"^message of {len(head) + 1000000} bytes exceeds the limit of 200 bytes$",
    ):
        framer.feed(head)


def test_good_messages_before_an_error_are_delivered_first() -> None:
    framer = MessageFramer()
    assert serialized(framer.feed(BYE + b"garbage without colon\r\n\r\n")) == [BYE]
    with pytest.raises(SipParseError, match=r"^request line: bad SIP version 'colon'$"):
        framer.feed(b"")
    # the stream cannot resynchronise: the error stays
    with pytest.raises(SipParseError, match=r"^request line: bad SIP version 'colon'$"):
        framer.feed(BYE)
