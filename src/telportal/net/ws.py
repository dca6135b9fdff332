"""SIP over WebSocket (RFC 7118): the listener browsers connect to.

The handshake must select the `sip` subprotocol (RFC 7118 4): the websockets library
refuses with HTTP 400 a client that offers none or only others. Each WebSocket message,
text or binary, is exactly one SIP message (RFC 7118 5), so there is no framer: messages
are screened like datagrams, and the library's max_size bounds them (a larger one closes
the connection with 1009). The top Via of a request always gets `received`, since a
browser's sent-by is an invented `.invalid` domain (RFC 7118 5.2).

Connections are only ever opened by the browser; we answer and send requests on them.
The library runs one handler task per connection; the Server owns those tasks and its
wait_closed() returns once they have all finished.
"""

import asyncio
import logging
import ssl
from http import HTTPStatus
from typing import Final

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.typing import Subprotocol

from telportal.net.address import Source, Transport
from telportal.net.errors import ConnectionGone
from telportal.net.hub import Hub
from telportal.net.inbound import Answer, Deliver, is_keepalive, receive_datagram
from telportal.net.inbox import Incoming

_log = logging.getLogger(__name__)

SIP_SUBPROTOCOL: Final = Subprotocol("sip")


class WsChannel:
    """One browser's WebSocket connection, as the layer sends on it."""

    def __init__(self, connection: ServerConnection, source: Source) -> None:
        self._connection = connection
        self._source = source
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def source(self) -> Source:
        return self._source

    @property
    def closed(self) -> asyncio.Future[None]:
        return self._closed

    async def write(self, data: bytes) -> None:
        # Text frames when the message is UTF-8, as SIP messages nearly always are:
        # browser stacks handle text best. Anything else goes as a binary frame.
        try:
            frame: str | bytes = data.decode("utf-8")
        except UnicodeDecodeError:
            frame = data
        try:
            await self._connection.send(frame)
        except ConnectionClosed as exc:
            raise ConnectionGone(f"connection {self._source} is closed") from exc

    def close(self) -> None:
        # Graceful WebSocket closes come from Server.close(), which the layer calls
        # first; this only ends a connection that somehow outlived its server.
        self._connection.transport.close()

    def abort(self) -> None:
        self._connection.transport.abort()

    def mark_closed(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


class WsListener:
    def __init__(self, hub: Hub, transport: Transport, listener_id: int) -> None:
        self._hub = hub
        self.transport = transport
        self.listener_id = listener_id
        self._counters = hub.counters[transport]
        self._server: Server | None = None

    @classmethod
    async def start(cls, hub: Hub, transport: Transport, host: str, port: int) -> "WsListener":
        context: ssl.SSLContext | None = None
        if transport is Transport.WSS:
            context = hub.config.tls_server_context
            if context is None:
                raise ValueError("a WSS listener needs TransportConfig.tls_server_context")
        listener = cls(hub, transport, hub.next_id())
        listener._server = await serve(
            listener._handle,
            host,
            port,
            subprotocols=[SIP_SUBPROTOCOL],
            process_request=listener._admit,
            max_size=hub.config.max_message_size,
            ssl=context,
        )
        return listener

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the WebSocket listener is not started")
        sockname = next(iter(self._server.sockets)).getsockname()
        return str(sockname[0]), int(sockname[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_closed()

    def _admit(self, connection: ServerConnection, request: HttpRequest) -> HttpResponse | None:
        host = str(connection.remote_address[0])
        refusal = self._hub.table.refusal(host)
        if refusal is None:
            return None
        self._counters.connections_refused += 1
        _log.debug("refused %s connection from %s: %s", self.transport, host, refusal)
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{refusal}\n")

    async def _handle(self, connection: ServerConnection) -> None:
        hub = self._hub
        address = connection.remote_address
        source = Source(self.transport, str(address[0]), int(address[1]), hub.next_id())
        channel = WsChannel(connection, source)
        hub.table.add(source.connection_id, source.peer, channel, inbound=True)
        self._counters.connections_accepted += 1
        try:
            async for frame in connection:
                data = frame.encode("utf-8") if isinstance(frame, str) else frame
                await self._receive(data, source, channel)
                if hub.inbox.full:
                    await _room_in(hub)
        except (ConnectionClosedError, ConnectionGone) as exc:
            # Abrupt ends are normal for browsers (a closed tab); 1009 is an oversized
            # message, which the library has already refused. ConnectionGone: the
            # connection closed while we answered a refused message.
            _log.debug("%s ended: %s", source, exc)
        finally:
            hub.table.remove(source.connection_id)
            channel.mark_closed()

    async def _receive(self, data: bytes, source: Source, channel: WsChannel) -> None:
        counters, hub = self._counters, self._hub
        if is_keepalive(data):
            counters.keepalives += 1
            return
        outcome = receive_datagram(data, source, to_tag=hub.new_tag(), policy=hub.config.policy)
        if isinstance(outcome, Deliver):
            hub.inbox.put(Incoming(outcome.message, source))
            counters.messages_in += 1
        elif isinstance(outcome, Answer):
            counters.rejected += 1
            _log.debug("refused message from %s: %s", source, outcome.detail)
            await channel.write(outcome.response.to_bytes())
        else:
            counters.dropped += 1
            _log.debug("dropped message from %s: %s", source, outcome.detail)


async def _room_in(hub: Hub) -> None:
    """Wait until the inbox has room: reading no further lets TCP slow the browser."""
    room = asyncio.get_running_loop().create_future()

    def ready() -> None:
        if not room.done():
            room.set_result(None)

    hub.inbox.when_room(ready)
    await room
