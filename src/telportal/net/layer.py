"""The SIP transport layer (RFC 3261 18): every listener and connection behind one API.

    layer = SipTransportLayer(TransportConfig())
    await layer.listen(Transport.UDP, "0.0.0.0", 5060)
    incoming = await layer.receive()                  # Incoming(message, source)
    await layer.respond(make_response(...), incoming.source)
    await layer.send(request, Peer(Transport.TCP, "192.0.2.7", 5060))
    await layer.close()

What is received has been screened, and requests have their top Via stamped
(`routing.stamp_via`); refused requests were answered here and never reach the layer
above. Sending to a `Source` uses the channel it names (the connection, or for UDP the
socket) and fails with ConnectionGone when that connection has closed; sending to a
`Peer` reuses the newest open connection to that address or opens one.

The layer starts no task of its own: protocol callbacks and loop timers do the work,
and the websockets Server owns its per-connection handler tasks and waits for them in
wait_closed(). close() therefore leaves nothing running once it returns.
"""

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from telportal.net.address import Peer, Source, Transport, bare_host, ip_literal
from telportal.net.counters import TransportCounters
from telportal.net.errors import ConnectionGone, NoRoute, TransportClosed, TransportError
from telportal.net.hub import Channel, Hub, TransportConfig
from telportal.net.inbox import Incoming, Repeat
from telportal.net.routing import response_destination
from telportal.net.tcp import StreamListener, dial
from telportal.net.udp import UdpEndpoint
from telportal.net.ws import WsListener
from telportal.sip import Message, Response

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listener:
    """A bound listening address; port is the real one when 0 was asked for."""

    transport: Transport
    host: str
    port: int
    listener_id: int


@dataclass(slots=True)
class _Dial:
    """Senders waiting on one connection attempt, so a burst opens one connection."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


_ListenerHandle = UdpEndpoint | StreamListener | WsListener


class SipTransportLayer:
    def __init__(self, config: TransportConfig | None = None) -> None:
        self._hub = Hub(config or TransportConfig())
        self._udp_counters = self._hub.counters[Transport.UDP]
        self._listeners: list[tuple[Listener, _ListenerHandle]] = []
        self._udp: dict[int, UdpEndpoint] = {}
        self._dials: dict[Peer, _Dial] = {}
        self._closed = False
        self._close_done: asyncio.Future[None] | None = None
        # Called with (host, port, bytes) for every datagram sent, when set: a tap for
        # tracing and tests (the class is compiled: its methods cannot be swapped).
        self.udp_tap: Callable[[str, int, bytes], None] | None = None

    @property
    def config(self) -> TransportConfig:
        return self._hub.config

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(listener for listener, _ in self._listeners)

    @property
    def counters(self) -> dict[Transport, TransportCounters]:
        """The live counters, per transport; see stats() for a snapshot."""
        return self._hub.counters

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per transport, with the connections open now, for monitoring."""
        table = self._hub.table
        return {
            transport.value: {**counters.snapshot(), "connections_open": table.count(transport)}
            for transport, counters in self._hub.counters.items()
        }

    async def listen(self, transport: Transport, host: str, port: int = 0) -> Listener:
        """Start listening; TLS and WSS need TransportConfig.tls_server_context."""
        self._check_open()
        hub = self._hub
        handle: _ListenerHandle
        if transport is Transport.UDP:
            endpoint = UdpEndpoint(hub, hub.next_id())
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: endpoint, local_addr=(host, port)
            )
            self._udp[endpoint.listener_id] = endpoint
            handle = endpoint
        elif transport.websocket:
            handle = await WsListener.start(hub, transport, host, port)
        else:
            handle = await StreamListener.start(hub, transport, host, port)
        bound_host, bound_port = handle.address
        listener = Listener(transport, bound_host, bound_port, handle.listener_id)
        self._listeners.append((listener, handle))
        _log.info("listening on %s:%s:%d", transport, bound_host, bound_port)
        return listener

    async def receive(self) -> Incoming | Repeat:
        """The next screened message, or a UDP repeat of an INVITE when the layer's
        `udp_repeat_window` is set; raises TransportClosed once the layer is closed."""
        return await self._hub.inbox.get()

    def receive_nowait(self) -> Incoming | Repeat | None:
        """The next screened message if one is waiting; None otherwise (then `receive`)."""
        return self._hub.inbox.get_nowait()

    def connection(self, connection_id: int) -> Source | None:
        """The source of an open connection (kept from a REGISTER, say); None if closed."""
        channel = self._hub.table.get(connection_id)
        return None if channel is None else channel.source

    async def connection_closed(self, connection_id: int) -> None:
        """Return once this connection is gone: a flow kept from a REGISTER has failed."""
        channel = self._hub.table.get(connection_id)
        if channel is not None:
            await asyncio.shield(channel.closed)

    async def send(self, message: Message | bytes, destination: Peer | Source) -> Source:
        """Send message; returns the channel used, to address later messages to it.

        A `Source` names a channel: a stream or WebSocket connection (ConnectionGone if
        it has closed), or for UDP the socket to send from, to the Source's address.
        A `Peer` is an address: the newest open connection to it is reused, or one is
        opened (TCP, TLS; WebSocket connections are only ever opened by browsers).
        """
        self._check_open()
        data = message if isinstance(message, bytes) else message.to_bytes()
        if destination.transport is Transport.UDP:
            preferred = destination.connection_id if isinstance(destination, Source) else None
            return await self._send_udp(data, destination.host, destination.port, preferred)
        counters = self._hub.counters[destination.transport]
        try:
            if isinstance(destination, Source):
                channel = self._channel(destination)
            else:
                channel = await self._connection_to(destination)
            await channel.write(data)
        except TransportError:
            counters.send_errors += 1
            raise
        counters.messages_out += 1
        return channel.source

    def send_now(self, message: Message | bytes, destination: Peer | Source) -> bool:
        """`send` when it needs no waiting: UDP to an IP address (the common case).

        Returns False, having sent nothing, for anything else: then await `send`. Raises
        what `send` raises. Saves the coroutines (and the returned Source) of `send` on
        the hot path.
        """
        if destination.transport is not Transport.UDP or ip_literal(destination.host) is None:
            return False
        self._check_open()
        data = message if isinstance(message, bytes) else message.to_bytes()
        preferred = destination.connection_id if isinstance(destination, Source) else None
        self._udp_out(data, destination.host, destination.port, preferred)
        return True

    def respond_now(self, response: Response, source: Source, data: bytes | None = None) -> bool:
        """`respond` when it needs no waiting (see `send_now`); False: await `respond`.

        data: the response serialized already, if the caller has it.
        """
        if source.transport is not Transport.UDP:
            return False
        # response_destination, without its Peer: where the Via says (18.2.2).
        via = response.top_via
        host = bare_host(via.received if via.received is not None else via.host)
        port = via.rport
        if port is None:
            port = via.port if via.port is not None else Transport.UDP.default_port
        if ip_literal(host) is None:
            return False
        self._check_open()
        self._udp_out(
            response.to_bytes() if data is None else data, host, port, source.connection_id
        )
        return True

    async def respond(self, response: Response, source: Source) -> Source:
        """Send a response to a request received from source (RFC 3261 18.2.2)."""
        transport = source.transport
        if transport is Transport.UDP:
            peer = response_destination(response.top_via, transport)
            # From the socket the request reached, to where the Via says.
            return await self.send(
                response, Source(transport, peer.host, peer.port, source.connection_id)
            )
        if self._hub.table.get(source.connection_id) is not None or transport.websocket:
            return await self.send(response, source)
        # The request's connection has closed: open a new one to where it came from.
        peer = response_destination(response.top_via, transport, use_rport=False)
        return await self.send(response, peer)

    async def close(self) -> None:
        """Close every listener and connection and wait until they are all gone."""
        if self._close_done is not None:
            await asyncio.shield(self._close_done)
            return
        self._close_done = asyncio.get_running_loop().create_future()
        self._closed = True
        hub = self._hub
        hub.closing = True
        hub.inbox.close()
        try:
            for _, handle in self._listeners:
                handle.close()
            # Stream connections are ours to close (asyncio's Server leaves them open, and
            # from Python 3.12 its wait_closed() waits for them). WebSocket servers close
            # theirs during wait_closed(), with a proper close frame.
            for channel in hub.table.channels():
                if not channel.source.transport.websocket:
                    channel.close()
            for _, handle in self._listeners:
                await handle.wait_closed()
            await self._close_channels(hub.table.channels())
        finally:
            self._close_done.set_result(None)

    async def __aenter__(self) -> "SipTransportLayer":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # internals

    async def _close_channels(self, channels: list[Channel]) -> None:
        for channel in channels:
            channel.close()
        pending = {channel.closed for channel in channels if not channel.closed.done()}
        if not pending:
            return
        _, pending = await asyncio.wait(pending, timeout=self._hub.config.close_timeout)
        if not pending:
            return
        # A peer that does not finish a TLS or WebSocket close in time is cut off.
        for channel in channels:
            if not channel.closed.done():
                channel.abort()
        await asyncio.wait(pending)

    def _check_open(self) -> None:
        if self._closed:
            raise TransportClosed("the transport layer is closed")

    def _channel(self, source: Source) -> Channel:
        channel = self._hub.table.get(source.connection_id)
        if channel is None:
            raise ConnectionGone(f"connection {source} is closed")
        return channel

    async def _send_udp(self, data: bytes, host: str, port: int, preferred: int | None) -> Source:
        """Send a datagram from the listener preferred (else one of the right family)."""
        if ip_literal(host) is None:
            try:
                host = await _resolve(host, port)
            except TransportError:
                self._udp_counters.send_errors += 1
                raise
        elif host[:1] == "[":
            host = host[1:-1]
        endpoint = self._udp_out(data, host, port, preferred)
        return Source(Transport.UDP, host, port, endpoint.listener_id)

    def _udp_out(self, data: bytes, host: str, port: int, preferred: int | None) -> UdpEndpoint:
        """`_send_udp` to an IP address; returns the endpoint it was sent from."""
        counters = self._udp_counters
        if self.udp_tap is not None:
            self.udp_tap(bare_host(host), port, data)
        try:
            size, limit = len(data), self._hub.config.max_datagram_size
            if size > limit:
                raise TransportError(f"message of {size} bytes exceeds the UDP limit of {limit}")
            # RFC 3261 18.1.1: a request over 1300 bytes MUST go over a congestion-controlled
            # transport (TCP) when the destination supports one. Whether it does is known
            # from its URI or DNS (RFC 3263), so that choice is made above; here it is sent
            # as told.
            if host[:1] == "[":
                host = host[1:-1]
            endpoint = self._udp_endpoint(host, preferred)
            endpoint.send(data, host, port)
        except TransportError:
            counters.send_errors += 1
            raise
        counters.messages_out += 1
        return endpoint

    def _udp_endpoint(self, host: str, preferred: int | None) -> UdpEndpoint:
        if preferred is not None:
            endpoint = self._udp.get(preferred)
            if endpoint is not None:
                return endpoint
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for endpoint in self._udp.values():
            if endpoint.family == family:
                return endpoint
        raise NoRoute(f"no UDP listener to send to {host} from")

    async def _connection_to(self, peer: Peer) -> Channel:
        table = self._hub.table
        channel = table.find(peer)
        if channel is not None:
            return channel
        if peer.transport.websocket:
            raise NoRoute(f"no WebSocket connection open to {peer}; browsers connect to us")
        attempt = self._dials.setdefault(peer, _Dial())
        attempt.users += 1
        try:
            async with attempt.lock:
                # Another sender may have connected while this one waited for the lock.
                channel = table.find(peer)
                if channel is None:
                    channel = await self._dial(peer)
            return channel
        finally:
            attempt.users -= 1
            if attempt.users == 0:
                del self._dials[peer]

    async def _dial(self, peer: Peer) -> Channel:
        try:
            connection = await dial(self._hub, peer)
        except OSError as exc:  # refused, unreachable, TLS failure, timeout
            raise TransportError(f"cannot connect to {peer}: {exc}") from exc
        if self._closed:
            # close() ran while we connected and did not see this connection.
            connection.abort()
            await connection.closed
            raise TransportClosed("the transport layer is closed")
        return connection


async def _resolve(host: str, port: int) -> str:
    """An IP address for host. DNS NAPTR and SRV (RFC 3263) are for the layer above."""
    if ip_literal(host) is not None:
        return bare_host(host)  # (callers test for an IP literal first: no await then)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise NoRoute(f"cannot resolve {host}: {exc}") from exc
    return str(infos[0][4][0])
