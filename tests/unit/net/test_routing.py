import pytest

from telportal.net import Peer, Source, Transport, response_destination, stamp_via
from telportal.net.address import same_host
from telportal.net.inbound import Answer, Deliver, Discard, is_keepalive, receive_datagram
from telportal.sip import Request, ServerPolicy, parse_message, parse_via
from tests.unit.net.samples import request

UDP_SOURCE = Source(Transport.UDP, "203.0.113.5", 41234, 1)


def parsed(data: bytes) -> Request:
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


def test_received_is_added_when_the_sent_by_host_is_not_the_source() -> None:
    message = parsed(request(via="SIP/2.0/UDP pc33.example.com:5070"))
    stamp_via(message, UDP_SOURCE)
    via = message.top_via
    assert via.received == "203.0.113.5"
    assert via.rport is None
    assert not via.wants_rport


def test_nothing_changes_when_the_sent_by_is_the_source() -> None:
    data = request(via="SIP/2.0/UDP 203.0.113.5:5060")
    message = parsed(data)
    stamp_via(message, UDP_SOURCE)
    assert message.to_bytes() == data


def test_an_empty_rport_is_filled_and_received_always_added() -> None:
    message = parsed(request(via="SIP/2.0/UDP 203.0.113.5:5060;rport"))
    stamp_via(message, UDP_SOURCE)
    via = message.top_via
    assert via.rport == 41234
    assert via.received == "203.0.113.5"  # RFC 3581 4: even when equal to sent-by


def test_a_stamped_via_is_kept_parsed_and_equal_to_its_text() -> None:
    message = parsed(request(via="SIP/2.0/UDP 203.0.113.5:5060;rport"))
    stamp_via(message, UDP_SOURCE)
    kept = message.headers.memo["via"]  # no second parse of the line just written
    assert len(kept) == 1 and message.top_via is kept[0]
    assert kept[0] == parse_via(message.headers.first("via") or "")
    assert str(kept[0]) == message.headers.first("via")


def test_a_forged_received_is_overwritten() -> None:
    message = parsed(request(via="SIP/2.0/UDP 203.0.113.5:5060;received=192.0.2.99"))
    stamp_via(message, UDP_SOURCE)
    assert message.top_via.received == "203.0.113.5"


def test_websocket_requests_always_get_received() -> None:
    message = parsed(request(via="SIP/2.0/WS 203.0.113.5"))
    stamp_via(message, Source(Transport.WS, "203.0.113.5", 50000, 4))
    assert message.top_via.received == "203.0.113.5"


def test_ipv6_addresses_compare_as_addresses() -> None:
    assert same_host("[2001:db8::1]", "2001:db8:0::1")
    assert not same_host("host.example.com", "2001:db8::1")
    assert same_host("192.0.2.1", "::ffff:192.0.2.1")
    message = parsed(request(via="SIP/2.0/UDP [2001:db8::1]:5060"))
    stamp_via(message, Source(Transport.UDP, "2001:db8::1", 5060, 1))
    assert message.top_via.received is None


def test_only_the_top_via_changes_and_the_lines_keep_their_order() -> None:
    data = request(
        via="SIP/2.0/UDP pc.example.com;rport",
        extra=("Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp2",),
    )
    data = data.replace(
        b"Max-Forwards",
        b"v: SIP/2.0/UDP edge.example.com;branch=z9hG4bKe,"
        b" SIP/2.0/UDP b.example.com;branch=z9hG4bKb\r\nMax-Forwards",
    )
    message = parsed(data)
    before = [name for name, _ in message.headers]
    stamp_via(message, UDP_SOURCE)
    assert [name for name, _ in message.headers] == before
    hosts = [via.host for via in message.vias]
    assert hosts == ["pc.example.com", "edge.example.com", "b.example.com", "proxy.example.com"]
    assert [via.received for via in message.vias] == ["203.0.113.5", None, None, None]


def test_a_top_via_sharing_its_line_is_replaced_alone() -> None:
    data = request(via="SIP/2.0/UDP pc.example.com").replace(
        b";branch=z9hG4bK", b";branch=z9hG4bKx, SIP/2.0/UDP second.example.com;branch=z9hG4bK", 1
    )
    message = parsed(data)
    stamp_via(message, UDP_SOURCE)
    assert [via.received for via in message.vias] == ["203.0.113.5", None]
    assert len(message.headers.lines("Via")) == 1


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        ("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1", Peer(Transport.UDP, "192.0.2.1", 5070)),
        ("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1", Peer(Transport.UDP, "192.0.2.1", 5060)),
        (
            "SIP/2.0/UDP pc.example.com:5070;received=203.0.113.5;branch=z9hG4bK1",
            Peer(Transport.UDP, "203.0.113.5", 5070),
        ),
        (
            "SIP/2.0/UDP pc.example.com:5070;received=203.0.113.5;rport=41234;branch=z9hG4bK1",
            Peer(Transport.UDP, "203.0.113.5", 41234),
        ),
        (
            "SIP/2.0/UDP 192.0.2.1;maddr=224.0.1.75;branch=z9hG4bK1",
            Peer(Transport.UDP, "192.0.2.1", 5060),  # maddr ignored
        ),
        (
            "SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bK1",
            Peer(Transport.UDP, "2001:db8::9", 5062),
        ),
    ],
)
def test_response_destination_follows_18_2_2_and_rfc_3581(via: str, expected: Peer) -> None:
    assert response_destination(parse_via(via), Transport.UDP) == expected


def test_a_new_stream_connection_uses_the_sent_by_port_not_rport() -> None:
    via = parse_via("SIP/2.0/TLS pc.example.com;received=203.0.113.5;rport=41234")
    assert response_destination(via, Transport.TLS, use_rport=False) == Peer(
        Transport.TLS, "203.0.113.5", 5061
    )


def test_screening_delivers_answers_or_discards() -> None:
    policy = ServerPolicy()
    outcome = receive_datagram(request(), UDP_SOURCE, to_tag="t", policy=policy)
    assert isinstance(outcome, Deliver)
    outcome = receive_datagram(request(cseq="1 INVITE"), UDP_SOURCE, to_tag="t", policy=policy)
    assert isinstance(outcome, Answer)
    assert outcome.response.status == 400
    assert "CSeq" in outcome.detail
    outcome = receive_datagram(b"\x00\x01garbage", UDP_SOURCE, to_tag="t", policy=policy)
    assert isinstance(outcome, Discard)


def test_keepalive_datagrams_are_line_breaks_only() -> None:
    assert is_keepalive(b"\r\n\r\n")
    assert is_keepalive(b"\r\n")
    assert not is_keepalive(b"")
    assert not is_keepalive(b"\r\nOPTIONS")
