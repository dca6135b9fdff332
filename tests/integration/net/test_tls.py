import ssl
from collections.abc import Awaitable, Callable

import pytest

from telportal.net import Peer, Transport, TransportError
from telportal.sip import Response
from tests.integration.net.conftest import (
    HOST,
    Certificate,
    LayerFactory,
    StreamClient,
    ok,
    peer_of,
    receive,
)
from tests.unit.net.samples import request


async def test_tls_round_trip_with_a_verified_self_signed_certificate(
    make_layer: LayerFactory, certificate: Certificate
) -> None:
    server = make_layer(tls_server_context=certificate.server_context())
    phone = make_layer(tls_client_context=certificate.client_context())
    listener = await server.listen(Transport.TLS, HOST)
    assert listener.transport is Transport.TLS

    used = await phone.send(request(via="SIP/2.0/TLS phone.example.com"), peer_of(listener))
    incoming = await receive(server)
    assert incoming.source.transport is Transport.TLS
    assert incoming.message.top_via.received == HOST
    await server.respond(ok(incoming), incoming.source)

    answer = await receive(phone)
    assert isinstance(answer.message, Response)
    assert answer.message.status == 200
    assert answer.source == used
    assert server.stats()["tls"]["connections_open"] == 1


async def test_a_tls_ping_is_answered(
    make_layer: LayerFactory,
    certificate: Certificate,
    tcp_client: Callable[..., Awaitable[StreamClient]],
) -> None:
    server = make_layer(tls_server_context=certificate.server_context())
    listener = await server.listen(Transport.TLS, HOST)
    client = await tcp_client(listener, certificate.client_context())
    await client.write(b"\r\n\r\n")
    assert await client.reader.readexactly(2) == b"\r\n"


async def test_an_untrusted_server_certificate_is_refused(
    make_layer: LayerFactory, certificate: Certificate
) -> None:
    server = make_layer(tls_server_context=certificate.server_context())
    listener = await server.listen(Transport.TLS, HOST)
    # Verifying against the system's authorities, which never signed this certificate.
    phone = make_layer(tls_client_context=ssl.create_default_context())
    with pytest.raises(TransportError, match="cannot connect"):
        await phone.send(request(via="SIP/2.0/TLS phone.example.com"), peer_of(listener))
    assert phone.stats()["tls"]["connections_open"] == 0


async def test_a_tls_listener_needs_a_certificate(make_layer: LayerFactory) -> None:
    with pytest.raises(ValueError, match="tls_server_context"):
        await make_layer().listen(Transport.TLS, HOST)
    assert Peer(Transport.TLS, HOST, 5061).transport.default_port == 5061
