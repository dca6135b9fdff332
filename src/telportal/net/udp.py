"""The UDP listener: one socket that receives datagrams and sends from the same address.

Every datagram is screened (inbound.receive_datagram): an accepted one goes to the inbox
with its Via stamped, a refused request gets its ready response back at the packet's
source address, anything else is counted and dropped.
"""

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from telportal.net.address import Source, Transport
from telportal.net.errors import TransportClosed
from telportal.net.hub import Hub
from telportal.net.inbound import Answer, Deliver, is_keepalive, receive_datagram
from telportal.net.inbox import Incoming, Repeat
from telportal.sip import Message, Request, SipParseError
from telportal.sip.transaction import server_transaction_id
from telportal.sip.transaction_actions import TransactionId

_log = logging.getLogger(__name__)

# Peers remembered as Sources; past this many the memory starts over.
_SOURCE_CACHE_SIZE = 4096
# INVITEs remembered for their repeats (`TransportConfig.udp_repeat_window`); past
# this many, new ones are not, so that a flood of INVITEs cannot grow the memory
# (about 6 MB at 2,000 calls/s and a 4 s window).
_REPEATS_KEPT = 50_000


class UdpEndpoint(asyncio.DatagramProtocol):
    def __init__(self, hub: Hub, listener_id: int) -> None:
        self._hub = hub
        self._counters = hub.counters[Transport.UDP]
        self.listener_id = listener_id
        self.family = socket.AF_INET
        self._transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sources: dict[tuple[str | int, ...], Source] = {}
        # An INVITE's bytes -> (its source, its server transaction, until when). Bytes
        # and text: nothing here the garbage collector has to walk.
        self._repeat_window = hub.config.udp_repeat_window
        self._repeats: dict[bytes, tuple[Source, TransactionId, float]] = {}
        self._repeat_order: deque[tuple[float, bytes]] = deque()
        self.clock: Callable[[], float] = time.monotonic  # replaced by tests

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
        if self._repeats and data.startswith(b"INVITE "):
            known = self._repeats.get(data)
            if known is not None and known[0] == source and self.clock() < known[2]:
                if hub.inbox.full:
                    counters.dropped += 1
                    return
                hub.inbox.put(Repeat(known[1], source))
                counters.messages_in += 1
                counters.repeats += 1
                return
        outcome = receive_datagram(data, source, to_tag=hub.new_tag(), policy=hub.datagram_policy)
        if isinstance(outcome, Deliver):
            if hub.inbox.full:
                # The sender retransmits (Timer A/E, or the 2xx retransmissions): dropping
                # here sheds load where it costs the least.
                counters.dropped += 1
                return
            hub.inbox.put(Incoming(outcome.message, source))
            counters.messages_in += 1
            if self._repeat_window > 0 and data.startswith(b"INVITE "):
                self._remember(data, source, outcome.message)
        elif isinstance(outcome, Answer):
            counters.rejected += 1
            _log.debug("refused datagram from %s: %s", source, outcome.detail)
            self.send(outcome.response.to_bytes(), source.host, source.port)
        else:
            counters.dropped += 1
            _log.debug("dropped datagram from %s: %s", source, outcome.detail)

    def _remember(self, data: bytes, source: Source, message: Message) -> None:
        """Keep an accepted INVITE's bytes for `udp_repeat_window` seconds."""
        if not isinstance(message, Request) or message.method != "INVITE":
            return
        now = self.clock()
        repeats, order = self._repeats, self._repeat_order
        while order and order[0][0] <= now:
            until, old = order.popleft()
            kept = repeats.get(old)
            if kept is not None and kept[2] == until:
                del repeats[old]
        if len(repeats) >= _REPEATS_KEPT:
            return
        try:
            transaction = server_transaction_id(message)
        except SipParseError:  # screened, so it matches; if not, it goes the long way
            return
        until = now + self._repeat_window
        repeats[data] = (source, transaction, until)
        order.append((until, data))

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
