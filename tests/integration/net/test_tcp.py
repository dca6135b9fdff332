import asyncio
from collections.abc import Awaitable, Callable

import pytest

from telportal.net import ConnectionGone, Peer, Transport
from telportal.sip import Request, Response
from tests.integration.net.conftest import (
    HOST,
    LayerFactory,
    StreamClient,
    ok,
    peer_of,
    receive,
    within,
)
from tests.unit.net.samples import request

TcpClient = Callable[..., Awaitable[StreamClient]]


async def test_a_message_split_across_writes_is_received_whole(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    data = request(
        via="SIP/2.0/TCP client.example.com", body=b"hello", extra=("Content-Type: text/plain",)
    )
    for piece in (data[:10], data[10:60], data[60:-2], data[-2:]):
        await client.write(piece)
        await asyncio.sleep(0.02)  # so the pieces arrive as separate reads

    incoming = await receive(server)
    assert isinstance(incoming.message, Request)
    assert incoming.message.body == b"hello"
    assert incoming.message.top_via.received == HOST
    await server.respond(ok(incoming), incoming.source)
    assert (await client.read_message()).status == 200


async def test_two_messages_in_one_write_are_both_received(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    via = "SIP/2.0/TCP client.example.com"
    await client.write(request(via=via, call_id="one") + request(via=via, call_id="two"))

    first, second = await receive(server), await receive(server)
    assert [first.message.call_id, second.message.call_id] == ["one", "two"]
    assert first.source == second.source


async def test_a_crlf_ping_is_answered_and_a_lone_crlf_is_not(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)

    await client.write(b"\r\n\r\n")
    assert await within(client.reader.readexactly(2)) == b"\r\n"

    await client.write(b"\r\n")  # a pong-shaped CRLF: must not be answered
    await client.write(request(via="SIP/2.0/TCP client.example.com"))
    incoming = await receive(server)
    await server.respond(ok(incoming), incoming.source)
    # Had the lone CRLF been answered, the next bytes would be CRLF, not the response.
    assert (await client.read_message()).status == 200
    assert server.stats()["tcp"]["keepalives"] == 1


async def test_an_oversized_message_is_answered_513_and_the_connection_closed(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer(max_message_size=2000)
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    await client.write(request(via="SIP/2.0/TCP client.example.com", content_length=100_000))

    response = await client.read_message()
    assert response.status == 513
    await client.wait_closed_by_peer()
    assert server.stats()["tcp"]["framing_errors"] == 1


async def test_lost_framing_is_answered_400_naming_it_then_closed(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    await client.write(request(via="SIP/2.0/TCP client.example.com", content_length=None))

    response = await client.read_message()
    assert response.status == 400
    assert "Content-Length" in response.reason
    await client.wait_closed_by_peer()


async def test_a_message_failing_screening_is_answered_and_the_connection_kept(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    via = "SIP/2.0/TCP client.example.com"
    await client.write(request(via=via, cseq="1 INVITE"))
    assert (await client.read_message()).status == 400

    await client.write(request(via=via, call_id="next"))
    assert (await receive(server)).message.call_id == "next"


async def test_connections_are_reused_both_ways(make_layer: LayerFactory) -> None:
    server, phone = make_layer(), make_layer()
    server_listener = await server.listen(Transport.TCP, HOST)
    phone_listener = await phone.listen(Transport.TCP, HOST)
    via = f"SIP/2.0/TCP {HOST}:{phone_listener.port}"

    # The phone registers: one connection, opened by the phone.
    used = await phone.send(request(method="REGISTER", via=via), peer_of(server_listener))
    register = await receive(server)
    flow = register.source
    assert flow.port != phone_listener.port  # an ephemeral port: the connection's own
    assert server.connection(flow.connection_id) == flow

    # The response goes back over the request's connection.
    await server.respond(ok(register), flow)
    answer = await receive(phone)
    assert isinstance(answer.message, Response)
    assert answer.source.connection_id == used.connection_id

    # A later request from the phone reuses it...
    again = await phone.send(request(via=via, call_id="again"), peer_of(server_listener))
    assert again.connection_id == used.connection_id
    assert (await receive(server)).source == flow

    # ...and so do calls to the phone: by the flow kept from the REGISTER, or by address.
    await server.send(request(method="INVITE", via="SIP/2.0/TCP server.invalid"), flow)
    await server.send(request(via="SIP/2.0/TCP server.invalid"), flow.peer)
    for _ in range(2):
        assert (await receive(phone)).source.connection_id == used.connection_id

    phone_stats, server_stats = phone.stats()["tcp"], server.stats()["tcp"]
    assert (phone_stats["connections_opened"], phone_stats["connections_accepted"]) == (1, 0)
    assert (server_stats["connections_opened"], server_stats["connections_accepted"]) == (0, 1)
    assert server_stats["connections_open"] == 1


async def test_a_closed_flow_is_reported_not_silently_reopened(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    await client.write(request(via="SIP/2.0/TCP client.example.com"))
    flow = (await receive(server)).source
    client.writer.close()
    await within(client.writer.wait_closed())
    await within(server.connection_closed(flow.connection_id))
    assert server.connection(flow.connection_id) is None

    with pytest.raises(ConnectionGone):
        await server.send(request(via="SIP/2.0/TCP server.invalid"), flow)
    assert server.stats()["tcp"]["send_errors"] == 1


async def test_a_response_whose_connection_closed_goes_over_a_new_one(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server, phone = make_layer(), make_layer()
    listener = await server.listen(Transport.TCP, HOST)
    phone_listener = await phone.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    # The request arrives from a connection that then closes; its Via names the phone.
    await client.write(request(via=f"SIP/2.0/TCP localhost:{phone_listener.port}"))
    incoming = await receive(server)
    client.writer.close()
    await within(client.writer.wait_closed())
    await within(server.connection_closed(incoming.source.connection_id))

    # RFC 3261 18.2.2: a new connection to `received`, at the sent-by port.
    used = await server.respond(ok(incoming), incoming.source)
    assert used.port == phone_listener.port
    answer = await receive(phone)
    assert isinstance(answer.message, Response)
    assert answer.message.status == 200


async def test_partial_and_idle_connections_time_out(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer(read_timeout=0.2, idle_timeout=0.4)
    listener = await server.listen(Transport.TCP, HOST)
    stalled, idle = await tcp_client(listener), await tcp_client(listener)
    await stalled.write(request(via="SIP/2.0/TCP client.example.com")[:40])
    await stalled.wait_closed_by_peer()
    await idle.wait_closed_by_peer()
    assert server.stats()["tcp"]["connections_timed_out"] == 2


async def test_connections_over_the_per_host_limit_are_refused(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer(max_connections_per_host=1)
    listener = await server.listen(Transport.TCP, HOST)
    first = await tcp_client(listener)
    await first.write(request(via="SIP/2.0/TCP client.example.com"))
    await receive(server)
    second = await tcp_client(listener)
    await second.wait_closed_by_peer()
    assert server.stats()["tcp"]["connections_refused"] == 1

    # The first connection still works.
    await first.write(request(via="SIP/2.0/TCP client.example.com", call_id="still"))
    assert (await receive(server)).message.call_id == "still"


async def test_sending_where_nothing_listens_fails_cleanly(make_layer: LayerFactory) -> None:
    layer = make_layer()
    with pytest.raises(OSError, match="cannot connect"):
        await layer.send(request(), Peer(Transport.TCP, HOST, 1))  # port 1: nothing there
    assert layer.stats()["tcp"]["send_errors"] == 1
    with pytest.raises(OSError, match="browsers connect to us"):
        await layer.send(request(), Peer(Transport.WS, HOST, 5080))


async def test_a_full_inbox_pauses_reading_without_losing_messages(
    make_layer: LayerFactory, tcp_client: TcpClient
) -> None:
    server = make_layer(inbox_limit=2)
    listener = await server.listen(Transport.TCP, HOST)
    client = await tcp_client(listener)
    via = "SIP/2.0/TCP client.example.com"
    names = [f"m{index}" for index in range(8)]
    # The first write overfills the inbox, so reading pauses; the second waits in TCP.
    await client.write(b"".join(request(via=via, call_id=name) for name in names[:4]))
    assert (await receive(server)).message.call_id == "m0"
    await client.write(b"".join(request(via=via, call_id=name) for name in names[4:]))
    received = [(await receive(server)).message.call_id for _ in names[1:]]
    assert received == names[1:]
