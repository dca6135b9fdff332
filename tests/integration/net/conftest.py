"""Transport layers on 127.0.0.1, raw clients to poke them with, a TLS certificate.

Every wait is bounded by a generous timeout so a broken test fails instead of hanging;
no test asserts on how long anything took.
"""

import asyncio
import contextlib
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest

from telportal.net import (
    Incoming,
    Listener,
    Peer,
    SipTransportLayer,
    TransportConfig,
)
from telportal.sip import Request, Response, make_response, parse_message

HOST = "127.0.0.1"
WAIT = 10.0

T = TypeVar("T")


async def within(awaitable: Awaitable[T], seconds: float = WAIT) -> T:
    async with asyncio.timeout(seconds):
        return await awaitable


async def receive(layer: SipTransportLayer) -> Incoming:
    return await within(layer.receive())


def peer_of(listener: Listener) -> Peer:
    return Peer(listener.transport, listener.host, listener.port)


def ok(incoming: Incoming) -> Response:
    assert isinstance(incoming.message, Request)
    return make_response(incoming.message, 200, to_tag="uas1")


LayerFactory = Callable[..., SipTransportLayer]


@pytest.fixture
async def make_layer() -> AsyncIterator[LayerFactory]:
    """Layers built with TransportConfig(**options), all closed after the test."""
    layers: list[SipTransportLayer] = []

    def make(**options: Any) -> SipTransportLayer:
        layer = SipTransportLayer(TransportConfig(**options))
        layers.append(layer)
        return layer

    yield make
    for layer in layers:
        await layer.close()


class DatagramClient(asyncio.DatagramProtocol):
    """A bare UDP socket: sends what it is given, queues what arrives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio's own datagram transport does not subclass DatagramTransport in 3.11.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.put_nowait((data, (str(addr[0]), int(addr[1]))))

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def send(self, data: bytes, listener: Listener) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (listener.host, listener.port))

    async def response(self) -> Response:
        data, _ = await within(self.received.get())
        message = parse_message(data)
        assert isinstance(message, Response)
        return message


@pytest.fixture
async def udp_client() -> AsyncIterator[Callable[[], Awaitable[DatagramClient]]]:
    clients: list[DatagramClient] = []

    async def make() -> DatagramClient:
        client = DatagramClient()
        await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: client, local_addr=(HOST, 0)
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        if client.transport is not None:
            client.transport.close()
    await asyncio.sleep(0)  # let connection_lost run


@dataclass(frozen=True)
class StreamClient:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_message(self) -> Response:
        head = await within(self.reader.readuntil(b"\r\n\r\n"))
        message = parse_message(head)
        length = message.content_length or 0
        if length:
            message = parse_message(head + await within(self.reader.readexactly(length)))
        assert isinstance(message, Response)
        return message

    async def wait_closed_by_peer(self) -> None:
        """Read to the end: returns once the peer has closed (EOF or reset)."""
        with contextlib.suppress(ConnectionResetError):
            while await within(self.reader.read(65536)):
                pass


@pytest.fixture
async def tcp_client() -> AsyncIterator[Callable[..., Awaitable[StreamClient]]]:
    clients: list[StreamClient] = []

    async def connect(listener: Listener, context: ssl.SSLContext | None = None) -> StreamClient:
        reader, writer = await within(
            asyncio.open_connection(listener.host, listener.port, ssl=context)
        )
        client = StreamClient(reader, writer)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.writer.close()
        # The layer under test may have reset the connection: some tests are about that.
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await within(client.writer.wait_closed())


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        # Real verification: the certificate names 127.0.0.1 and is its own authority.
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail(
            "the TLS tests need Debian's `openssl` command to make a self-signed"
            " certificate; install it with: apt-get install openssl"
        )
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return Certificate(cert, key)
