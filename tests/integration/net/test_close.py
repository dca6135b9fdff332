import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from telportal.net import (
    Listener,
    SipTransportLayer,
    Transport,
    TransportClosed,
    TransportConfig,
)
from tests.integration.net.conftest import (
    HOST,
    Certificate,
    StreamClient,
    peer_of,
    receive,
    within,
)
from tests.unit.net.samples import request


def others() -> set[asyncio.Task[object]]:
    """The tasks running besides the test's own."""
    return {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}


async def test_close_leaves_no_task_and_frees_every_port(
    certificate: Certificate, tcp_client: Callable[..., Awaitable[StreamClient]]
) -> None:
    before = others()
    config = TransportConfig(
        tls_server_context=certificate.server_context(),
        tls_client_context=certificate.client_context(),
    )
    layer = SipTransportLayer(config)
    listeners = [
        await layer.listen(transport, HOST)
        for transport in (Transport.UDP, Transport.TCP, Transport.TLS, Transport.WS)
    ]
    udp, tcp, tls, ws = listeners
    # Something open on every kind of connection: accepted TCP, dialled TLS, a browser.
    client = await tcp_client(tcp)
    await client.write(request(via="SIP/2.0/TCP client.example.com"))
    await receive(layer)
    peer_layer = SipTransportLayer(config)
    tls_peer = await peer_layer.listen(Transport.TLS, HOST)
    await layer.send(request(via=f"SIP/2.0/TLS {HOST}:{tls.port}"), peer_of(tls_peer))
    await receive(peer_layer)
    browser = await connect(f"ws://{HOST}:{ws.port}/", subprotocols=[Subprotocol("sip")])
    await browser.send(request(via="SIP/2.0/WS x.invalid").decode())
    await receive(layer)
    waiting = asyncio.ensure_future(layer.receive())
    await asyncio.sleep(0)

    await within(layer.close())

    with pytest.raises(TransportClosed):
        await within(waiting)
    assert others() == before
    assert layer.stats()["tcp"]["connections_open"] == 0
    assert layer.stats()["tls"]["connections_open"] == 0
    await client.wait_closed_by_peer()
    with pytest.raises(ConnectionClosed):
        await within(browser.recv())
    await browser.close()
    await within(peer_layer.close())
    assert others() == before

    # Every port can be bound again; UDP without SO_REUSEADDR, so it is truly free.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, udp.port))
    async with SipTransportLayer(config) as again:
        rebound = [await again.listen(item.transport, HOST, item.port) for item in listeners]
        assert [item.port for item in rebound] == [item.port for item in listeners]
    with pytest.raises(TransportClosed):
        await layer.send(request(), peer_of(udp))
    with pytest.raises(TransportClosed):
        await layer.listen(Transport.UDP, HOST)
    await layer.close()  # idempotent


async def test_close_waits_for_a_concurrent_close() -> None:
    layer = SipTransportLayer()
    listener: Listener = await layer.listen(Transport.TCP, HOST)
    await asyncio.gather(layer.close(), layer.close())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((HOST, listener.port))
