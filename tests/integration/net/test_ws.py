import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus
from websockets.typing import Subprotocol

from telportal.net import Listener, Transport
from telportal.sip import Request, Response, parse_message
from tests.integration.net.conftest import HOST, Certificate, LayerFactory, ok, receive, within
from tests.unit.net.samples import request

SIP = [Subprotocol("sip")]
# RFC 7118 5.2: a browser cannot know its address, so its Via names an invented domain.
BROWSER_VIA = "SIP/2.0/WS df7jal23ls0d.invalid;rport"


def url(listener: Listener, scheme: str = "ws") -> str:
    return f"{scheme}://{listener.host}:{listener.port}/"


async def test_ws_round_trip_with_the_sip_subprotocol(make_layer: LayerFactory) -> None:
    server = make_layer()
    listener = await server.listen(Transport.WS, HOST)
    async with connect(url(listener), subprotocols=SIP) as browser:
        assert browser.subprotocol == "sip"
        await browser.send(request(via=BROWSER_VIA).decode())

        incoming = await receive(server)
        assert incoming.source.transport is Transport.WS
        via = incoming.message.top_via
        assert via.received == HOST
        assert via.rport == incoming.source.port
        await server.respond(ok(incoming), incoming.source)
        frame = await within(browser.recv())
        assert isinstance(frame, str)  # SIP text goes as text frames
        response = parse_message(frame.encode())
        assert isinstance(response, Response)
        assert response.status == 200

        # A request to the browser goes over the same WebSocket connection.
        await server.send(
            request(method="INVITE", via="SIP/2.0/WS server.invalid"), incoming.source
        )
        invite = parse_message(await within(browser.recv(decode=False)))
        assert isinstance(invite, Request)
        assert invite.method == "INVITE"

        # Binary frames carry SIP too.
        await browser.send(request(via=BROWSER_VIA, call_id="binary"))
        assert (await receive(server)).message.call_id == "binary"
    stats = server.stats()["ws"]
    assert (stats["messages_in"], stats["messages_out"], stats["connections_accepted"]) == (2, 2, 1)


async def test_a_connection_without_the_sip_subprotocol_is_refused(
    make_layer: LayerFactory,
) -> None:
    server = make_layer()
    listener = await server.listen(Transport.WS, HOST)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url(listener)):
            pass
    assert refused.value.response.status_code == 400
    with pytest.raises(InvalidStatus):
        async with connect(url(listener), subprotocols=[Subprotocol("chat")]):
            pass
    assert server.stats()["ws"]["connections_accepted"] == 0


async def test_a_bad_ws_message_is_answered_and_an_oversized_one_closes(
    make_layer: LayerFactory,
) -> None:
    server = make_layer(max_message_size=2000)
    listener = await server.listen(Transport.WS, HOST)
    async with connect(url(listener), subprotocols=SIP, max_size=None) as browser:
        await browser.send(request(via=BROWSER_VIA, cseq="x OPTIONS").decode())
        refusal = parse_message(await within(browser.recv(decode=False)))
        assert isinstance(refusal, Response)
        assert refusal.status == 400
        assert "CSeq" in refusal.reason

        await browser.send(request(via=BROWSER_VIA, body=b"x" * 3000).decode())
        with pytest.raises(ConnectionClosedError) as closed:
            await within(browser.recv())
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # message too big


async def test_wss_round_trip(make_layer: LayerFactory, certificate: Certificate) -> None:
    server = make_layer(tls_server_context=certificate.server_context())
    listener = await server.listen(Transport.WSS, HOST)
    async with connect(
        url(listener, "wss"), subprotocols=SIP, ssl=certificate.client_context()
    ) as browser:
        await browser.send(request(via="SIP/2.0/WSS df7jal23ls0d.invalid").decode())
        incoming = await receive(server)
        assert incoming.source.transport is Transport.WSS
        await server.respond(ok(incoming), incoming.source)
        assert "SIP/2.0 200 OK" in str(await within(browser.recv()))


async def test_ws_connections_over_the_per_host_limit_are_refused(
    make_layer: LayerFactory,
) -> None:
    server = make_layer(max_connections_per_host=1)
    listener = await server.listen(Transport.WS, HOST)
    async with connect(url(listener), subprotocols=SIP) as first:
        await first.send(request(via=BROWSER_VIA).decode())
        await receive(server)  # the first connection is registered by now
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url(listener), subprotocols=SIP):
                pass
        assert refused.value.response.status_code == 503
    assert server.stats()["ws"]["connections_refused"] == 1
