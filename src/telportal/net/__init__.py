"""SIP transports over asyncio: UDP, TCP, TLS and WebSocket (RFC 3261 18, 3581, 7118).

`SipTransportLayer` owns the listeners and connections and gives the layer above one
interface: `receive()` for screened `(message, source)` pairs and `send()` / `respond()`.
The rules live in pure modules, tested without sockets: `inbound` (screening), `routing`
(Via stamping, response addresses), `stream` (framing, keep-alives, timeouts of one
connection) and `table` (connection lookup and limits); `udp`, `tcp` and `ws` are the
thin asyncio adapters around them.
"""

from telportal.net.address import Peer, Source, Transport
from telportal.net.counters import TransportCounters
from telportal.net.errors import ConnectionGone, NoRoute, TransportClosed, TransportError
from telportal.net.hub import UDP_REPEAT_WINDOW, TransportConfig
from telportal.net.inbox import Incoming, Repeat
from telportal.net.layer import Listener, SipTransportLayer
from telportal.net.routing import response_destination, stamp_via
from telportal.net.stream import StreamLimits, StreamSession

__all__ = [
    "UDP_REPEAT_WINDOW",
    "ConnectionGone",
    "Incoming",
    "Listener",
    "NoRoute",
    "Peer",
    "Repeat",
    "SipTransportLayer",
    "Source",
    "StreamLimits",
    "StreamSession",
    "Transport",
    "TransportClosed",
    "TransportConfig",
    "TransportCounters",
    "TransportError",
    "response_destination",
    "stamp_via",
]
