import itertools

import pytest

from telportal.net import Source, StreamLimits, StreamSession, Transport
from telportal.net.inbound import Answer, Deliver, Discard
from telportal.net.stream import Hangup, Pong, StreamAction
from telportal.sip import MessageFramer, Request, ServerPolicy, SipParseError, parse_message
from tests.unit.net.samples import request

SOURCE = Source(Transport.TCP, "198.51.100.7", 40312, 9)
LIMITS = StreamLimits(max_message_size=2000, read_timeout=32.0, idle_timeout=300.0)


def session(now: float = 0.0, limits: StreamLimits = LIMITS) -> StreamSession:
    tags = itertools.count(1)
    return StreamSession(
        SOURCE, now=now, limits=limits, policy=ServerPolicy(), new_tag=lambda: f"t{next(tags)}"
    )


def delivered(actions: list[StreamAction]) -> list[Request]:
    messages = [action.message for action in actions if isinstance(action, Deliver)]
    assert all(isinstance(message, Request) for message in messages)
    return [message for message in messages if isinstance(message, Request)]


def answers(actions: list[StreamAction]) -> list[Answer]:
    return [action for action in actions if isinstance(action, Answer)]


def test_a_message_split_at_every_point_is_delivered_once() -> None:
    data = request(
        via="SIP/2.0/TCP 198.51.100.7:5060",
        body=b"v=0\r\n",
        extra=("Content-Type: application/sdp",),
    )
    for cut in range(1, len(data)):
        stream = session()
        actions = stream.receive(data[:cut], 1.0) + stream.receive(data[cut:], 2.0)
        assert [message.method for message in delivered(actions)] == ["OPTIONS"], cut
        assert len(actions) == 1


def test_two_messages_in_one_read_are_delivered_in_order() -> None:
    stream = session()
    data = request(call_id="first", via="SIP/2.0/TCP h") + request(
        call_id="second", via="SIP/2.0/TCP h"
    )
    assert [message.call_id for message in delivered(stream.receive(data, 1.0))] == [
        "first",
        "second",
    ]


def test_delivered_requests_have_their_via_stamped() -> None:
    (message,) = delivered(session().receive(request(via="SIP/2.0/TCP pc.example.com;rport"), 1.0))
    assert message.top_via.received == "198.51.100.7"
    assert message.top_via.rport == 40312


def test_a_ping_is_answered_with_one_pong_even_when_split() -> None:
    stream = session()
    assert stream.receive(b"\r\n\r\n", 1.0) == [Pong()]
    assert stream.receive(b"\r\n", 2.0) == []
    assert stream.receive(b"\r", 3.0) == []
    assert stream.receive(b"\n", 4.0) == [Pong()]  # the lone CRLF before completes a ping
    assert stream.receive(b"\r\n\r\n\r\n\r\n", 5.0) == [Pong(), Pong()]


def test_a_lone_crlf_is_not_answered_but_refreshes_idleness() -> None:
    stream = session()
    assert stream.receive(b"\r\n", 200.0) == []
    assert stream.deadline == 500.0
    assert stream.expire(499.0) is None


def test_a_ping_before_a_message_is_answered_and_the_message_delivered() -> None:
    actions = session().receive(b"\r\n\r\n" + request(via="SIP/2.0/TCP h"), 1.0)
    assert actions[0] == Pong()
    assert len(delivered(actions)) == 1


def test_a_message_that_fails_screening_is_answered_and_the_stream_goes_on() -> None:
    stream = session()
    actions = stream.receive(request(cseq="abc OPTIONS", via="SIP/2.0/TCP h"), 1.0)
    (answer,) = answers(actions)
    assert answer.response.status == 400
    assert "CSeq" in answer.response.reason
    assert not stream.hung_up
    assert len(delivered(stream.receive(request(via="SIP/2.0/TCP h"), 2.0))) == 1


def test_an_oversized_message_is_answered_513_then_the_stream_hangs_up() -> None:
    stream = session()
    actions = stream.receive(request(via="SIP/2.0/TCP h", content_length=5000), 1.0)
    assert isinstance(actions[0], Answer)
    assert actions[0].response.status == 513
    assert actions[0].response.headers.get("Call-ID") == "a84b4c76e66710@192.0.2.10"
    assert isinstance(actions[1], Hangup)
    assert not actions[1].timed_out
    assert stream.hung_up
    assert stream.receive(request(via="SIP/2.0/TCP h"), 2.0) == []


def test_an_oversized_header_section_is_answered_513() -> None:
    stream = session()
    head = request(via="SIP/2.0/TCP h", content_length=None)[:-2]  # no blank line yet
    actions = stream.receive(head + b"X-Filler: " + b"x" * 3000 + b"\r\n", 1.0)
    assert [type(action) for action in actions] == [Answer, Hangup]
    assert answers(actions)[0].response.status == 513


def test_a_missing_content_length_is_answered_400_naming_it() -> None:
    stream = session()
    actions = stream.receive(request(via="SIP/2.0/TCP h", content_length=None), 1.0)
    (answer,) = answers(actions)
    assert answer.response.status == 400
    assert "Content-Length" in answer.response.reason
    assert isinstance(actions[-1], Hangup)


def test_good_messages_before_a_broken_one_are_delivered_first() -> None:
    stream = session()
    data = request(via="SIP/2.0/TCP h") + b"garbage without a header section end"
    actions = stream.receive(data, 1.0)
    assert len(delivered(actions)) == 1
    # The broken part has no complete head yet: the framer waits for more.
    assert not stream.hung_up
    actions = stream.receive(b"\r\n\r\n", 2.0)
    assert isinstance(actions[-1], Hangup)


def test_a_broken_response_is_dropped_not_answered() -> None:
    stream = session()
    actions = stream.receive(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n", 1.0)
    assert [type(action) for action in actions] == [Hangup]


def test_an_unanswerable_framed_response_is_discarded() -> None:
    response = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nContent-Length: 0\r\n\r\n"
    actions = session().receive(response, 1.0)
    assert [type(action) for action in actions] == [Discard]


def test_a_partial_message_times_out_after_the_read_timeout() -> None:
    stream = session()
    data = request(via="SIP/2.0/TCP h")
    assert stream.receive(data[:20], 10.0) == []
    assert stream.deadline == 42.0
    assert stream.expire(41.9) is None
    hangup = stream.expire(42.0)
    assert hangup is not None
    assert hangup.timed_out
    assert "partial message" in hangup.reason
    assert stream.hung_up


def test_the_read_timer_restarts_when_a_message_completes() -> None:
    stream = session()
    first, second = request(via="SIP/2.0/TCP h"), request(via="SIP/2.0/TCP h")
    stream.receive(first[:20], 0.0)
    stream.receive(first[20:] + second[:20], 30.0)
    assert stream.deadline == 62.0
    stream.receive(second[20:], 40.0)
    assert stream.deadline == 340.0  # nothing partial: only the idle timer


def test_an_idle_connection_times_out() -> None:
    stream = session(now=5.0)
    assert stream.deadline == 305.0
    stream.note_sent(100.0)  # sending counts as use
    assert stream.expire(305.0) is None
    hangup = stream.expire(400.0)
    assert hangup is not None
    assert hangup.timed_out
    assert "no traffic" in hangup.reason


def test_the_framer_size_errors_carry_the_phrase_the_session_looks_for() -> None:
    # StreamSession tells 513 from 400 by this phrase (stream._SIZE_ERROR_PHRASE).
    for data in (b"X" * 100, b"OPTIONS sip:a SIP/2.0\r\nContent-Length: 100\r\n\r\n"):
        with pytest.raises(SipParseError, match="exceeds the limit"):
            MessageFramer(50).feed(data)


def test_a_message_screened_by_the_session_parses_like_a_datagram() -> None:
    data = request(via="SIP/2.0/TCP h")
    (message,) = delivered(session().receive(data, 0.0))
    assert message.to_bytes() != data  # received was added
    assert parse_message(message.to_bytes()).top_via.received == "198.51.100.7"
