"""A test phone with a real UDP socket, and event helpers, for the media integration tests."""

import asyncio

from telportal.media import EventSubscription, MediaEvent
from telportal.rtp.packet import RtpPacket
from telportal.sdp import PCMU, Codec, LocalMedia, SessionDescription, create_offer

TIMEOUT = 10.0  # generous: a loaded two-core machine must not fail these
HOST = "127.0.0.1"
Address = tuple[str, int]


class Phone(asyncio.DatagramProtocol):
    """A test peer with a real socket: sends what it is told, queues what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, port: int = 0) -> "Phone":
        loop = asyncio.get_running_loop()
        _, phone = await loop.create_datagram_endpoint(cls, local_addr=(HOST, port))
        return phone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received.put_nowait((data, addr))

    @property
    def port(self) -> int:
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, port))

    async def rtp(self) -> RtpPacket:
        """The next RTP packet (RTCP and anything else skipped)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                data, _ = await self.received.get()
                if not 192 <= data[1] <= 223:
                    return RtpPacket.parse(data)

    def offer(self, codec: Codec = PCMU, port: int | None = None) -> SessionDescription:
        media = LocalMedia(HOST, port or self.port, codecs=(codec,))
        return create_offer(media, 1, 1)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def next_of(events: EventSubscription, kind: type[MediaEvent]) -> MediaEvent:
    async with asyncio.timeout(TIMEOUT):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError("event stream ended")
