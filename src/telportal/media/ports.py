"""RTP/RTCP port pairs from the configured range, and the asyncio protocol on each socket.

Allocation: RTP on an even port, RTCP on the odd port above it (RFC 3550 11). A cursor
walks the range round-robin, so a port freed by a call that just ended is reused last:
packets still in flight to the old call do not land in a new one. A port busy outside
our control (bind fails) is skipped. Both sockets are bound here, with plain `socket`
calls, before asyncio gets them; if the second bind fails the first socket is closed
on the spot, so a failed allocation leaves nothing open.

Reuse: opening a pair (two binds, two asyncio transports) and closing it again cost
about 45 us of CPU, some 7% of a call the IVR answers and hangs up (docs/benchmarks.md).
`PairPool` keeps the pairs of ended calls open, their datagrams discarded, and hands
the oldest out again once it has been idle `reuse_after` seconds, the same rule as the
cursor's: a new call never gets a port whose old call's packets may still be in flight.
At most `keep` pairs wait. Past that, the pair just given back is closed and its port
released: the oldest waiting pairs are the ones about to serve again. (Closing the
oldest instead, as at first, meant that at more than `keep / reuse_after` calls a
second no pair ever waited long enough: every call opened a pair and closed another.)
When the range has no free pair left, the oldest waiting pair is closed to free its
port rather than refuse the call.
"""

import asyncio
import functools
import ipaddress
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from telportal.clock import Clock
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

    def redirect(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        """From now on hand datagrams to `on_datagram` (a pair changing calls)."""
        self._on_datagram = on_datagram

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


def _discard(data: bytes, source: Address) -> None:
    """Where an idle pair's datagrams go: late packets of the call that ended."""


@dataclass(slots=True, eq=False)
class PortPair:
    """An open RTP/RTCP port pair: its sockets, transports and receivers."""

    port: int
    rtp_socket: socket.socket
    rtcp_socket: socket.socket
    rtp: asyncio.DatagramTransport
    rtcp: asyncio.DatagramTransport
    rtp_receiver: DatagramReceiver
    rtcp_receiver: DatagramReceiver
    idle_since: float = 0.0

    @property
    def usable(self) -> bool:
        return not (self.rtp.is_closing() or self.rtcp.is_closing())


class PairPool:
    """Port pairs opened on demand, kept open between calls (see the module's text)."""

    def __init__(
        self, ports: PortAllocator, clock: Clock, *, keep: int, reuse_after: float
    ) -> None:
        if keep < 0 or reuse_after < 0:
            raise ValueError("keep and reuse_after must not be negative")
        self.ports = ports
        self.clock = clock
        self.keep = keep
        self.reuse_after = reuse_after
        self.opened = 0  # pairs opened so far (the rest of what was taken was reused)
        self._idle: deque[PortPair] = deque()

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def take(
        self, on_rtp: Callable[[bytes, Address], None], on_rtcp: Callable[[bytes, Address], None]
    ) -> PortPair:
        """An open pair whose datagrams go to `on_rtp` and `on_rtcp`: the oldest idle
        one if it has waited long enough, else a new one (PortsExhaustedError)."""
        idle = self._idle
        while idle and self.clock.monotonic() - idle[0].idle_since >= self.reuse_after:
            pair = idle.popleft()
            if not pair.usable:  # its socket failed while idle: let it go
                await self._close(pair)
                continue
            pair.rtp_receiver.redirect(on_rtp)
            pair.rtcp_receiver.redirect(on_rtcp)
            return pair
        while True:
            try:
                return await self._open(on_rtp, on_rtcp)
            except PortsExhaustedError:
                if not idle:
                    raise
                # Waiting pairs hold ports the range has run out of: a new call comes
                # before the rule that keeps late packets out, so free the oldest.
                await self._close(idle.popleft())

    async def _open(
        self, on_rtp: Callable[[bytes, Address], None], on_rtcp: Callable[[bytes, Address], None]
    ) -> PortPair:
        loop = asyncio.get_running_loop()
        port, rtp_socket, rtcp_socket = self.ports.allocate()
        # Until a transport owns a socket, closing it on failure is our job.
        loose = [rtp_socket, rtcp_socket]
        opened: list[tuple[asyncio.DatagramTransport, DatagramReceiver]] = []
        try:
            for sock, receive in ((rtp_socket, on_rtp), (rtcp_socket, on_rtcp)):
                transport, protocol = await loop.create_datagram_endpoint(
                    functools.partial(DatagramReceiver, receive), sock=sock
                )
                loose.remove(sock)
                opened.append((transport, protocol))
        except BaseException:
            for sock in loose:
                sock.close()
            for transport, protocol in opened:
                transport.close()
                await protocol.closed
            self.ports.release(port)
            raise
        (rtp, rtp_receiver), (rtcp, rtcp_receiver) = opened
        self.opened += 1
        return PortPair(port, rtp_socket, rtcp_socket, rtp, rtcp, rtp_receiver, rtcp_receiver)

    async def give_back(self, pair: PortPair) -> None:
        """`pair`'s call has ended: keep it idle, or close it when `keep` are waiting."""
        pair.rtp_receiver.redirect(_discard)
        pair.rtcp_receiver.redirect(_discard)
        if len(self._idle) >= self.keep or not pair.usable:
            await self._close(pair)
            return
        pair.idle_since = self.clock.monotonic()
        self._idle.append(pair)

    async def _close(self, pair: PortPair) -> None:
        pair.rtp.close()
        pair.rtcp.close()
        # The transports close their sockets on the next loop iteration: wait, so the
        # port is really free once released.
        await pair.rtp_receiver.closed
        await pair.rtcp_receiver.closed
        self.ports.release(pair.port)

    async def aclose(self) -> None:
        """Close every idle pair (the pairs in use are their endpoints' to give back)."""
        while self._idle:
            await self._close(self._idle.popleft())
