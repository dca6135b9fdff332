"""Where a request inside a dialog is sent (RFC 3261 12.2.1.1, 8.1.2; decision 0032):
the dialog's next hop, except where only the dialog's own flow reaches the peer."""

import pytest

from telportal.net import Peer, Source, Transport
from telportal.signaling.calls import in_dialog_destination
from telportal.sip import Request, parse_message
from telportal.sip.dialog import Dialog

FROM_PUBLIC = Source(Transport.UDP, "198.18.0.1", 5062, 0)  # a benchmark-net address


def dialog_with(contact: str, *record_routes: str) -> Dialog:
    """Our UAS dialog for an INVITE with this Contact and these Record-Routes."""
    lines = [
        "INVITE sip:1002@192.0.2.1 SIP/2.0",
        "Via: SIP/2.0/UDP 198.18.0.1:5062;branch=z9hG4bKnext;rport",
        "Max-Forwards: 70",
        "To: <sip:1002@192.0.2.1>",
        "From: <sip:1001@example.com>;tag=a1",
        "Call-ID: next-hop-1",
        "CSeq: 1 INVITE",
        f"Contact: <{contact}>",
        *(f"Record-Route: <{route}>" for route in record_routes),
        "Content-Length: 0",
    ]
    request = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(request, Request)
    return Dialog.from_uas(request, "b1", "<sip:telportal@192.0.2.1>")


@pytest.mark.parametrize(
    ("contact", "routes", "expected"),
    [
        # The peer's Contact, when it is a public address: 12.2.1.1.
        ("sip:1001@1.2.3.4:5070", (), Peer(Transport.UDP, "1.2.3.4", 5070)),
        ("sip:1001@1.2.3.4", (), Peer(Transport.UDP, "1.2.3.4", 5060)),
        ("sip:1001@[2001:4860::5]:5070", (), Peer(Transport.UDP, "2001:4860::5", 5070)),
        # The first route wins over the Contact, loose or strict (8.1.2).
        ("sip:1001@1.2.3.4", ("sip:5.6.7.8:5080;lr",), Peer(Transport.UDP, "5.6.7.8", 5080)),
        ("sip:1001@1.2.3.4", ("sip:5.6.7.8",), Peer(Transport.UDP, "5.6.7.8", 5060)),
        # Same host as the flow, another port: a phone listening apart from where it sends.
        ("sip:1001@198.18.0.1:5090", (), Peer(Transport.UDP, "198.18.0.1", 5090)),
        # The flow itself.
        ("sip:1001@198.18.0.1:5062", (), FROM_PUBLIC),
        # Behind NAT: a private address of another host reaches nothing from here.
        ("sip:1001@10.0.0.7:5060", (), FROM_PUBLIC),
        ("sip:1001@192.168.1.20", (), FROM_PUBLIC),
        ("sip:1001@[fd00::7]", (), FROM_PUBLIC),
        # No RFC 3263 lookups here: a name keeps the flow, as do sips and other transports.
        ("sip:1001@phone.example.com:5070", (), FROM_PUBLIC),
        ("sips:1001@1.2.3.4", (), FROM_PUBLIC),
        ("sip:1001@1.2.3.4;transport=tcp", (), FROM_PUBLIC),
        ("sip:1001@1.2.3.4", ("sip:proxy.example.com;lr",), FROM_PUBLIC),
    ],
)
def test_next_hop_of_a_udp_dialog(
    contact: str, routes: tuple[str, ...], expected: Peer | Source
) -> None:
    assert in_dialog_destination(dialog_with(contact, *routes), FROM_PUBLIC) == expected


@pytest.mark.parametrize("transport", [Transport.TCP, Transport.TLS, Transport.WS, Transport.WSS])
def test_a_connection_is_reused_whatever_the_contact(transport: Transport) -> None:
    """RFC 5923's reuse, and RFC 7118: a WebSocket client has no other address."""
    flow = Source(transport, "198.18.0.1", 40000, 7)
    assert in_dialog_destination(dialog_with("sip:1001@1.2.3.4:5070"), flow) is flow
