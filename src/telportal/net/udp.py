"""The UDP listener: one socket that receives datagrams and sends from the same address.

Every datagram is screened (inbound.receive_datagram): an accepted one goes to the inbox
with its Via stamped, a refused request gets its ready response back at the packet's
source address, anything else is counted and dropped.
"""

import asyncio
import logging
import socket
from typing import cast

from telportal.net.address import Source, Transport
from telportal.net.errors import TransportClosed
from telportal.net.hub import Hub
from telportal.net.inbound import Answer, Deliver, is_keepalive, receive_datagram
from telportal.net.inbox import Incoming

_log = logging.getLogger(__name__)

# Peers remembered as Sources; past this many the memory starts over.
_SOURCE_CACHE_SIZE = 4096


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, hub: Hub, listener_id: int) -> None:
        self._hub = hub
        self._counters = hub.counters[Transport.UDP]
        self.listener_id = listener_id
        self.family = socket.AF_INET
        self._transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sources: dict[tuple[str | int, ...], Source] = {}

    @property
    def address(self) -> tuple[str, int]:
        if self._transport is None:
            raise RuntimeError("the UDP endpoint is not bound")
        sockname = self._transport.get_extra_info("sockname")
        return str(sockname[0]), int(sockname[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            self.family = sock.family
            config = self._hub.config
            for option, size in (
                (socket.SO_RCVBUF, config.udp_receive_buffer),
                (socket.SO_SNDBUF, config.udp_send_buffer),
            ):
                if size > 0:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, option, size)
                    except OSError as exc:  # not allowed here: the default will do
                        _log.debug("UDP socket buffer of %d bytes refused: %s", size, exc)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        counters = self._counters
        if is_keepalive(data):
            counters.keepalives += 1
            return
        # Sources are values: one per peer address, made once (a dict lookup, not four
        # attribute sets on a frozen dataclass, for every datagram).
        source = self._sources.get(addr)
        if source is None:
            if len(self._sources) >= _SOURCE_CACHE_SIZE:
                self._sources.clear()
            source = Source(Transport.UDP, str(addr[0]), int(addr[1]), self.listener_id)
            self._sources[addr] = source
        hub = self._hub
        outcome = receive_datagram(data, source, to_tag=hub.new_tag(), policy=hub.datagram_policy)
        if isinstance(outcome, Deliver):
            if hub.inbox.full:
                # The sender retransmits (Timer A/E, or the 2xx retransmissions): dropping
                # here sheds load where it costs the least.
                counters.dropped += 1
                return
            hub.inbox.put(Incoming(outcome.message, source))
            counters.messages_in += 1
        elif isinstance(outcome, Answer):
            counters.rejected += 1
            _log.debug("refused datagram from %s: %s", source, outcome.detail)
            self.send(outcome.response.to_bytes(), source.host, source.port)
        else:
            counters.dropped += 1
            _log.debug("dropped datagram from %s: %s", source, outcome.detail)

    def error_received(self, exc: Exception) -> None:
        # Mostly ICMP port-unreachable for an earlier send, reported on a later call.
        self._counters.send_errors += 1
        _log.debug("UDP socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, data: bytes, host: str, port: int) -> None:
        if self._transport is None or self._transport.is_closing():
            raise TransportClosed("the UDP endpoint is closed")
        self._transport.sendto(data, (host, port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await self.closed
