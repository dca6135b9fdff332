import pytest

from telportal.net import Peer, Source, Transport


def test_transport_properties() -> None:
    assert [transport.reliable for transport in Transport] == [False, True, True, True, True]
    assert [transport.default_port for transport in Transport] == [5060, 5060, 5061, 80, 443]
    assert {transport for transport in Transport if transport.secure} == {
        Transport.TLS,
        Transport.WSS,
    }
    assert Transport.WSS.via_token == "WSS"


def test_transport_from_a_via_token() -> None:
    assert Transport.from_via("TCP") is Transport.TCP
    assert Transport.from_via("wss") is Transport.WSS
    with pytest.raises(ValueError, match="SCTP"):
        Transport.from_via("SCTP")


def test_sources_and_peers_read_as_addresses() -> None:
    source = Source(Transport.TCP, "2001:db8::1", 5060, 7)
    assert str(source) == "tcp:[2001:db8::1]:5060#7"
    assert source.peer == Peer(Transport.TCP, "2001:db8::1", 5060)
    assert str(Peer(Transport.UDP, "192.0.2.1", 5060)) == "udp:192.0.2.1:5060"
