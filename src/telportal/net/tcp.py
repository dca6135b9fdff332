"""TCP and TLS connections: an asyncio protocol around a `StreamSession`.

The protocol feeds bytes and the loop's time into the session and carries out the
actions it returns; TLS is asyncio's SSL transport under the same protocol. Timers are
loop handles (`call_at`), one per connection, moved only when the session's deadline
comes earlier than the one scheduled: received data refreshes idleness without
touching the timer, which on firing asks the session again and re-arms itself.
"""

import asyncio
import logging
import math
import socket
import ssl
from typing import cast

from telportal.net.address import Peer, Source, Transport
from telportal.net.errors import ConnectionGone
from telportal.net.hub import Hub
from telportal.net.inbound import PONG, Answer, Deliver, Discard
from telportal.net.inbox import Incoming
from telportal.net.stream import Hangup, Pong, StreamAction, StreamSession

_log = logging.getLogger(__name__)

# A TLS handshake that has not finished by then is a stalled or hostile client.
_TLS_HANDSHAKE_TIMEOUT = 10.0


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection, accepted by a listener or dialled by us."""

    def __init__(
        self, hub: Hub, transport: Transport, *, inbound: bool, alias: Peer | None = None
    ) -> None:
        self._hub = hub
        self._kind = transport
        self._counters = hub.counters[transport]
        self._inbound = inbound
        self._alias = alias
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._session: StreamSession | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: asyncio.Future[None] = self._loop.create_future()

    @property
    def source(self) -> Source:
        if self._session is None:
            raise ConnectionGone(f"{self._kind} connection not established")
        return self._session.source

    @property
    def closed(self) -> asyncio.Future[None]:
        return self._closed

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peername = transport.get_extra_info("peername")
        host, port = str(peername[0]), int(peername[1])
        hub = self._hub
        if self._inbound:
            refusal = "shutting down" if hub.closing else hub.table.refusal(host)
            if refusal is not None:
                self._counters.connections_refused += 1
                _log.debug("refused %s connection from %s: %s", self._kind, host, refusal)
                self._transport.abort()
                return
            self._counters.connections_accepted += 1
        else:
            self._counters.connections_opened += 1
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # SIP messages are small and latency matters more than segment count.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        source = Source(self._kind, host, port, hub.next_id())
        self._session = StreamSession(
            source,
            now=self._loop.time(),
            limits=hub.stream_limits,
            policy=hub.config.policy,
            new_tag=hub.new_tag,
        )
        aliases = () if self._alias is None else (self._alias,)
        hub.table.add(
            source.connection_id, source.peer, self, inbound=self._inbound, aliases=aliases
        )
        self._arm_timer()

    def data_received(self, data: bytes) -> None:
        session = self._session
        if session is None:
            return
        for action in session.receive(data, self._loop.time()):
            self._act(action)
        if not session.hung_up and session.deadline < self._timer_at:
            self._arm_timer()

    def eof_received(self) -> bool:
        # The peer will send no more; SIP has no half-closed use, so close our side too.
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._session is not None:
            self._hub.table.remove(self._session.source.connection_id)
            if exc is not None:
                _log.debug("%s lost: %s", self._session.source, exc)
        self._release_writers(ConnectionGone("connection closed while sending"))
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._release_writers(None)

    # Channel

    async def write(self, data: bytes) -> None:
        transport, session = self._transport, self._session
        if transport is None or session is None or transport.is_closing() or session.hung_up:
            raise ConnectionGone(f"connection {self._describe()} is closed")
        transport.write(data)
        session.note_sent(self._loop.time())
        if self._writing_paused:
            # The peer reads slower than we write: wait, as StreamWriter.drain does.
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    # internals

    def _act(self, action: StreamAction) -> None:
        transport, session = self._transport, self._session
        if transport is None or session is None:
            return
        counters = self._counters
        if isinstance(action, Deliver):
            self._deliver(Incoming(action.message, session.source))
        elif isinstance(action, Answer):
            counters.rejected += 1
            _log.debug("refused message from %s: %s", session.source, action.detail)
            transport.write(action.response.to_bytes())
        elif isinstance(action, Pong):
            counters.keepalives += 1
            transport.write(PONG)
        elif isinstance(action, Discard):
            counters.dropped += 1
            _log.debug("dropped message from %s: %s", session.source, action.detail)
        else:
            self._hang_up(action)

    def _deliver(self, incoming: Incoming) -> None:
        inbox = self._hub.inbox
        inbox.put(incoming)
        self._counters.messages_in += 1
        if inbox.full and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
            inbox.when_room(self._resume_reading)

    def _resume_reading(self) -> None:
        self._reading_paused = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def _hang_up(self, hangup: Hangup) -> None:
        if hangup.timed_out:
            self._counters.connections_timed_out += 1
        else:
            self._counters.framing_errors += 1
        _log.debug("closing %s: %s", self._describe(), hangup.reason)
        if self._transport is not None:
            # close() writes out what is buffered first: an answer to the broken message.
            self._transport.close()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._session is None:
            return
        self._timer_at = self._session.deadline
        self._timer = self._loop.call_at(self._timer_at, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, math.inf
        if self._session is None:
            return
        hangup = self._session.expire(self._loop.time())
        if hangup is not None:
            self._hang_up(hangup)
        else:
            self._arm_timer()

    def _release_writers(self, error: Exception | None) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

    def _describe(self) -> str:
        return str(self._session.source) if self._session is not None else str(self._kind)


class StreamListener:
    """A TCP or TLS listening socket; its connections are closed by the layer."""

    def __init__(self, server: asyncio.Server, transport: Transport, listener_id: int) -> None:
        self._server = server
        self.transport = transport
        self.listener_id = listener_id

    @classmethod
    async def start(cls, hub: Hub, transport: Transport, host: str, port: int) -> "StreamListener":
        context = _server_context(hub, transport)
        loop = asyncio.get_running_loop()
        tls = context is not None
        server = await loop.create_server(
            lambda: StreamConnection(hub, transport, inbound=True),
            host,
            port,
            ssl=context,
            ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT if tls else None,
            ssl_shutdown_timeout=hub.config.close_timeout if tls else None,
        )
        return cls(server, transport, hub.next_id())

    @property
    def address(self) -> tuple[str, int]:
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    def close(self) -> None:
        self._server.close()

    async def wait_closed(self) -> None:
        # Before Python 3.12 this returns without waiting for connections; the layer
        # closes and awaits those itself.
        await self._server.wait_closed()


async def dial(hub: Hub, peer: Peer) -> StreamConnection:
    """Open a connection to peer (TCP or TLS) within the configured connect timeout."""
    loop = asyncio.get_running_loop()
    context: ssl.SSLContext | None = None
    if peer.transport is Transport.TLS:
        context = hub.config.tls_client_context or ssl.create_default_context()
    tls = context is not None
    async with asyncio.timeout(hub.config.connect_timeout):
        _, protocol = await loop.create_connection(
            lambda: StreamConnection(hub, peer.transport, inbound=False, alias=peer),
            peer.host,
            peer.port,
            ssl=context,
            # The certificate must name the host we meant to reach, IP or domain.
            server_hostname=peer.host if tls else None,
            ssl_handshake_timeout=_TLS_HANDSHAKE_TIMEOUT if tls else None,
            ssl_shutdown_timeout=hub.config.close_timeout if tls else None,
        )
    return protocol


def _server_context(hub: Hub, transport: Transport) -> ssl.SSLContext | None:
    if transport is Transport.TCP:
        return None
    context = hub.config.tls_server_context
    if context is None:
        raise ValueError("a TLS listener needs TransportConfig.tls_server_context")
    return context
