"""RTP/RTCP port pairs from the configured range, and the asyncio protocol on each socket.

Allocation: RTP on an even port, RTCP on the odd port above it (RFC 3550 11). A cursor
walks the range round-robin, so a port freed by a call that just ended is reused last:
packets still in flight to the old call do not land in a new one. A port busy outside
our control (bind fails) is skipped. Both sockets are bound here, with plain `socket`
calls, before asyncio gets them; if the second bind fails the first socket is closed
on the spot, so a failed allocation leaves nothing open.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from typing import cast

from telportal.media.errors import PortsExhaustedError
from telportal.media.latch import Address


class PortAllocator:
    def __init__(self, host: str, first_port: int, last_port: int) -> None:
        self.host = host
        self.family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        self.first_port = first_port + (first_port & 1)
        self.last_port = last_port
        self._pairs = (last_port - self.first_port + 1) // 2
        self._cursor = 0
        self._used: set[int] = set()

    @property
    def capacity(self) -> int:
        return self._pairs

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._used)

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, port))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    def allocate(self) -> tuple[int, socket.socket, socket.socket]:
        """(RTP port, RTP socket, RTCP socket), both bound; raises PortsExhaustedError."""
        for _ in range(self._pairs):
            port = self.first_port + 2 * self._cursor
            self._cursor = (self._cursor + 1) % self._pairs
            if port in self._used:
                continue
            try:
                rtp = self._bind(port)
            except OSError:
                continue
            try:
                rtcp = self._bind(port + 1)
            except OSError:
                rtp.close()
                continue
            self._used.add(port)
            return port, rtp, rtcp
        raise PortsExhaustedError(
            f"no free RTP/RTCP port pair in {self.first_port}-{self.last_port} on {self.host} "
            f"({len(self._used)} pairs in use by us)"
        )

    def release(self, port: int) -> None:
        self._used.discard(port)


class SocketTransmit:
    """Sends straight on the endpoint's socket, bypassing the transport's sendto.

    uvloop's UDPTransport.sendto costs about 2.5 us more per packet than socket.sendto
    (it converts the address and manages a write buffer); at 50,000 packets a second
    that is an eighth of a core. Media is real time, so the write buffer is unwanted
    anyway: a packet the kernel cannot take now (EAGAIN) is dropped and counted, since
    sending it later would only make it late. The transport still owns the socket and
    closes it; afterwards sends fail with EBADF and are counted as errors.
    """

    __slots__ = ("_send", "dropped", "errors")

    def __init__(self, sock: socket.socket) -> None:
        self._send = sock.sendto
        self.dropped = 0
        self.errors = 0

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            self._send(data, addr)
        except BlockingIOError:
            self.dropped += 1
        except OSError:
            self.errors += 1


class DatagramReceiver(asyncio.DatagramProtocol):
    """Hands each datagram to a callback; nothing else happens on the socket's side."""

    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None
        self.errors = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Only create_datagram_endpoint makes this protocol; neither asyncio's nor uvloop's
        # UDP transport class derives from DatagramTransport, hence the cast.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = addr[0], addr[1]
        if isinstance(host, str) and isinstance(port, int):
            self._on_datagram(data, (host, port))

    def error_received(self, exc: Exception) -> None:
        # ICMP "port unreachable" from a peer that went away: nothing to do here, the
        # no-RTP timeout tells the call layer about a dead peer.
        self.errors += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
