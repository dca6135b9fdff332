"""What every listener and connection of one transport layer shares.

The asyncio adapters (udp, tcp, ws) receive a `Hub` instead of the layer itself, so they
see the inbox, the connection table, the counters and the configuration, and nothing of
how the layer routes what it sends.
"""

import asyncio
import itertools
import secrets
import ssl
from dataclasses import dataclass, field, replace
from typing import Protocol

from telportal.net.address import Source, Transport
from telportal.net.counters import TransportCounters
from telportal.net.inbox import Inbox
from telportal.net.stream import StreamLimits
from telportal.net.table import ConnectionTable
from telportal.sip import DEFAULT_MAX_MESSAGE_SIZE, ServerPolicy

# The window the SIP service uses (`TransportConfig.udp_repeat_window`): a UAC's first
# three INVITE retransmissions (Timer A: 0.5, 1.5 and 3.5 s), and shorter than any
# INVITE server transaction lasts on UDP (Timer I, 5 s, after an ACK at once), so a
# repeat within it always finds its transaction if it was started.
UDP_REPEAT_WINDOW = 4.0


@dataclass(frozen=True, slots=True)
class TransportConfig:
    # Streams and WebSocket: a larger message closes the connection (answered 513 first
    # on streams; WebSocket closes with 1009, the library enforcing the size).
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # Larger datagrams are answered 513 unread. 65535 also bounds what we send by UDP;
    # see SipTransportLayer.send for the 1300-byte rule of RFC 3261 18.1.1.
    max_datagram_size: int = DEFAULT_MAX_MESSAGE_SIZE
    # Socket buffers of UDP listeners, in bytes (the kernel caps them at its
    # net.core.rmem_max / wmem_max; 0 keeps its default). A burst of datagrams that
    # arrives while the event loop is busy waits here instead of being dropped, which
    # would cost a retransmission (500 ms and more) of every request and response lost.
    udp_receive_buffer: int = 4 * 1024 * 1024
    udp_send_buffer: int = 1024 * 1024
    # A partial message on a stream must complete in this time (64*T1/2, Timer B's scale).
    read_timeout: float = 32.0
    # A stream connection without traffic either way is closed after this; phones
    # keep theirs alive with CRLF pings (RFC 5626 4.4.1), sent every 95-120 s.
    idle_timeout: float = 300.0
    connect_timeout: float = 10.0
    # How long close() waits for a connection to close cleanly before aborting it.
    close_timeout: float = 5.0
    max_connections: int = 10_000
    # Many phones share one NAT's public address: this only stops one host taking all.
    max_connections_per_host: int = 256
    inbox_limit: int = 10_000
    # Seconds for which a UDP INVITE's bytes are kept: the same bytes again from the
    # same source within them are a retransmission, handed on as a `Repeat` without
    # being parsed (a parse and its checks cost some 85 k instructions, near a tenth of
    # a whole call; a peer resends at 0.5, 1.5 and 3.5 s when the server is behind).
    # 0 (off) unless the layer above takes `Repeat`s: the SIP service turns it on.
    udp_repeat_window: float = 0.0
    policy: ServerPolicy = field(default_factory=ServerPolicy)
    tls_server_context: ssl.SSLContext | None = None
    # None: verify servers against the system's certificate authorities.
    tls_client_context: ssl.SSLContext | None = None


class Channel(Protocol):
    """A connection the layer can send on: TCP, TLS or WebSocket."""

    @property
    def source(self) -> Source: ...

    @property
    def closed(self) -> asyncio.Future[None]:
        """Done once the connection is gone."""
        ...

    async def write(self, data: bytes) -> None:
        """Send data; raises ConnectionGone when the connection has closed."""
        ...

    def close(self) -> None:
        """Start closing cleanly; `closed` completes when done."""
        ...

    def abort(self) -> None:
        """Close at once, dropping unsent data."""
        ...


class Hub:
    def __init__(self, config: TransportConfig) -> None:
        self.config = config
        self.inbox = Inbox(config.inbox_limit)
        self.counters = {transport: TransportCounters() for transport in Transport}
        self.table: ConnectionTable[Channel] = ConnectionTable(
            config.max_connections, config.max_connections_per_host
        )
        self.datagram_policy = replace(config.policy, max_message_size=config.max_datagram_size)
        self.stream_limits = StreamLimits(
            config.max_message_size, config.read_timeout, config.idle_timeout
        )
        self.closing = False
        self._ids = itertools.count(1)
        # To tags of the error responses the transport sends itself: a random prefix
        # makes them unique across restarts, a counter cheap within one (a tag is drawn
        # for every message received, answered or not).
        self._tag_prefix = secrets.token_hex(4)
        self._tags = itertools.count(1)

    def next_id(self) -> int:
        """A connection or listener id, unique within this layer."""
        return next(self._ids)

    def new_tag(self) -> str:
        return f"{self._tag_prefix}{next(self._tags):x}"
