from collections.abc import Awaitable, Callable

from telportal.net import Incoming, Peer, Repeat, Source, Transport
from telportal.sip import Request, Response, parse_message
from telportal.sip.transaction import server_transaction_id
from tests.integration.net.conftest import (
    HOST,
    DatagramClient,
    LayerFactory,
    ok,
    peer_of,
    receive,
    within,
)
from tests.unit.net.samples import request

UdpClient = Callable[[], Awaitable[DatagramClient]]


async def test_options_round_trip_between_two_layers(make_layer: LayerFactory) -> None:
    server, client = make_layer(), make_layer()
    server_listener = await server.listen(Transport.UDP, HOST)
    client_listener = await client.listen(Transport.UDP, HOST)
    options = request(via=f"SIP/2.0/UDP {HOST}:{client_listener.port};rport")

    used = await client.send(options, peer_of(server_listener))
    assert used == Source(Transport.UDP, HOST, server_listener.port, client_listener.listener_id)

    incoming = await receive(server)
    assert isinstance(incoming.message, Request)
    assert incoming.message.method == "OPTIONS"
    assert incoming.source.port == client_listener.port
    assert incoming.message.top_via.rport == client_listener.port
    await server.respond(ok(incoming), incoming.source)

    answer = await receive(client)
    assert isinstance(answer.message, Response)
    assert answer.message.status == 200
    assert answer.message.call_id == incoming.message.call_id
    assert answer.source.port == server_listener.port
    assert server.stats()["udp"]["messages_in"] == 1
    assert server.stats()["udp"]["messages_out"] == 1
    assert client.stats()["udp"]["messages_in"] == 1


async def test_a_malformed_datagram_gets_a_400_naming_the_problem(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.UDP, HOST)
    client = await udp_client()
    via = f"SIP/2.0/UDP {HOST}:{client.port}"

    client.send(request(via=via, cseq="one OPTIONS", call_id="bad"), listener)
    refusal = await client.response()
    assert refusal.status == 400
    assert "CSeq" in refusal.reason
    assert refusal.call_id == "bad"

    client.send(request(via=via, call_id="good"), listener)
    incoming = await receive(server)
    assert incoming.message.call_id == "good"
    stats = server.stats()["udp"]
    assert (stats["rejected"], stats["messages_in"]) == (1, 1)


async def test_unreadable_and_oversized_datagrams(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer(max_datagram_size=1000)
    listener = await server.listen(Transport.UDP, HOST)
    client = await udp_client()
    via = f"SIP/2.0/UDP {HOST}:{client.port}"

    client.send(b"\x16\x03\x01 not SIP at all", listener)  # no Via: nothing to answer
    client.send(b"\r\n\r\n", listener)  # a NAT keep-alive
    client.send(request(via=via, body=b"x" * 1200, extra=("Content-Type: text/plain",)), listener)
    too_large = await client.response()
    assert too_large.status == 513

    client.send(request(via=via, call_id="after"), listener)
    assert (await receive(server)).message.call_id == "after"
    stats = server.stats()["udp"]
    assert (stats["dropped"], stats["keepalives"], stats["rejected"]) == (1, 1, 1)


async def test_rport_and_received_are_filled_in_and_the_response_follows_them(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.UDP, HOST)
    client = await udp_client()
    # The Via claims another host and port, as a phone behind NAT does.
    client.send(request(via="SIP/2.0/UDP 192.0.2.10:5999;rport"), listener)

    incoming = await receive(server)
    via = incoming.message.top_via
    assert via.received == HOST
    assert via.rport == client.port
    assert via.rport != 5999
    await server.respond(ok(incoming), incoming.source)

    response = await client.response()
    assert response.status == 200
    assert response.top_via.rport == client.port
    assert response.top_via.received == HOST


async def test_without_rport_the_response_goes_to_received_at_the_sent_by_port(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.UDP, HOST)
    sender, listening = await udp_client(), await udp_client()
    # RFC 3261 18.2.2: no rport, so the sent-by port is where the client listens.
    sender.send(request(via=f"SIP/2.0/UDP pc33.example.com:{listening.port}"), listener)

    incoming = await receive(server)
    assert incoming.message.top_via.received == HOST
    assert incoming.message.top_via.rport is None
    used = await server.respond(ok(incoming), incoming.source)
    assert used == Source(Transport.UDP, HOST, listening.port, listener.listener_id)
    assert (await listening.response()).status == 200
    assert sender.received.empty()


async def test_sending_to_a_peer_by_name(make_layer: LayerFactory) -> None:
    server, client = make_layer(), make_layer()
    server_listener = await server.listen(Transport.UDP, HOST)
    await client.listen(Transport.UDP, HOST)
    await client.send(request(), Peer(Transport.UDP, "localhost", server_listener.port))
    incoming = await receive(server)
    assert isinstance(incoming.message, Request)
    assert incoming.message.method == "OPTIONS"


async def test_send_now_and_respond_now_send_udp_at_once_as_send_and_respond_do(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    """The synchronous forms the SIP service tries first: UDP to an IP address is sent
    at once, to the same place `send` / `respond` would send it; anything else is left
    to the awaitable forms (False, nothing sent)."""
    server = make_layer()
    listener = await server.listen(Transport.UDP, HOST)
    sender, listening = await udp_client(), await udp_client()
    # No rport: the answer goes to received (the packet's source) at the sent-by port.
    sender.send(request(via=f"SIP/2.0/UDP pc33.example.com:{listening.port}"), listener)
    incoming = await receive(server)
    answer = ok(incoming)
    assert server.respond_now(answer, incoming.source) is True
    assert (await listening.response()).status == 200
    # Serialized already: those bytes are what goes out.
    assert server.respond_now(answer, incoming.source, answer.to_bytes()) is True
    assert (await listening.response()).call_id == answer.call_id
    assert sender.received.empty()

    assert server.send_now(request(call_id="now"), Peer(Transport.UDP, HOST, listening.port))
    data, _ = await within(listening.received.get())
    assert parse_message(data).call_id == "now"
    # A name to resolve, or a stream transport: the caller must await send().
    assert not server.send_now(request(), Peer(Transport.UDP, "localhost", listening.port))
    assert not server.send_now(request(), Peer(Transport.TCP, HOST, listening.port))
    tcp_source = Source(Transport.TCP, HOST, listening.port, 99)
    assert not server.respond_now(answer, tcp_source)
    assert server.stats()["udp"]["messages_out"] == 3


async def test_a_repeated_invite_is_handed_on_unparsed_with_its_transaction(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer(udp_repeat_window=4.0)
    listener = await server.listen(Transport.UDP, HOST)
    client, other = await udp_client(), await udp_client()
    invite = request(method="INVITE", via=f"SIP/2.0/UDP {HOST}:{client.port}")

    client.send(invite, listener)
    first = await receive(server)
    assert isinstance(first, Incoming)
    assert isinstance(first.message, Request)

    client.send(invite, listener)  # a retransmission: the same bytes, the same source
    again = await receive(server)
    assert again == Repeat(server_transaction_id(first.message), first.source)

    other.send(invite, listener)  # the same bytes from elsewhere: read as any datagram
    elsewhere = await receive(server)
    assert isinstance(elsewhere, Incoming)
    assert elsewhere.source.port == other.port

    client.send(invite.replace(b"CSeq: 1 INVITE", b"CSeq: 2 INVITE"), listener)
    assert isinstance(await receive(server), Incoming)  # other bytes: parsed
    stats = server.stats()["udp"]
    assert (stats["messages_in"], stats["repeats"]) == (4, 1)


async def test_repeats_are_recognised_only_within_the_window_and_only_when_asked(
    make_layer: LayerFactory, udp_client: UdpClient
) -> None:
    server = make_layer(udp_repeat_window=4.0)
    listener = await server.listen(Transport.UDP, HOST)
    endpoint = server._udp[listener.listener_id]
    now = [100.0]
    endpoint.clock = lambda: now[0]
    client = await udp_client()
    invite = request(method="INVITE", via=f"SIP/2.0/UDP {HOST}:{client.port}")
    client.send(invite, listener)
    assert isinstance(await receive(server), Incoming)
    now[0] += 4.0  # the window is over: the bytes are read again
    client.send(invite, listener)
    assert isinstance(await receive(server), Incoming)

    plain = make_layer()  # the default: no repeats for a layer above that takes none
    plain_listener = await plain.listen(Transport.UDP, HOST)
    for _ in range(2):
        client.send(invite, plain_listener)
        assert isinstance(await receive(plain), Incoming)
    assert plain.stats()["udp"]["repeats"] == 0
