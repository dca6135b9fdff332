"""Helpers shared by the media tests: fake transports, negotiated legs, tone analysis."""

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from telportal.clock import FakeClock
from telportal.media.audio import FRAME_SAMPLES, SAMPLE_RATE, G711Law
from telportal.media.events import MediaEvent
from telportal.media.latch import Address
from telportal.media.scheduler import FRAME_SECONDS, TickScheduler
from telportal.media.switch import MediaSwitch
from telportal.rtp.packet import RtpPacket
from telportal.sdp import PCMU, Codec, Direction, NegotiatedAudio

EventT = TypeVar("EventT")


@dataclass
class Capture:
    """A Transmit that keeps what was sent: the in-repo fake of a UDP socket."""

    sent: list[tuple[bytes, Address]] = field(default_factory=list)

    def sendto(self, data: bytes, addr: Address) -> None:
        self.sent.append((data, addr))

    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data, _ in self.sent]

    def take(self) -> list[RtpPacket]:
        packets = self.packets()
        self.sent.clear()
        return packets


def negotiated(
    port: int,
    codec: Codec = PCMU,
    *,
    host: str = "192.0.2.10",
    events: int | None = 101,
    direction: Direction = Direction.SENDRECV,
) -> NegotiatedAudio:
    return NegotiatedAudio(
        media_index=0,
        codec=codec,
        payload_type=codec.payload_type,
        telephone_event_payload_type=events,
        remote_address=host,
        remote_port=port,
        remote_rtcp_port=port + 1,
        direction=direction,
        remote_hold=False,
        ptime=20,
    )


def sine(
    frequency: float, seconds: float, amplitude: float = 8000.0, rate: int = SAMPLE_RATE
) -> npt.NDArray[np.float64]:
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * math.pi * frequency * t)


def sine_pcm(frequency: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    return np.rint(sine(frequency, seconds, amplitude)).astype("<i2").tobytes()


def frames_of(pcm: bytes) -> list[bytes]:
    size = 2 * FRAME_SAMPLES
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def goertzel_level(pcm: bytes, frequency: float, rate: int = SAMPLE_RATE) -> float:
    """Amplitude of `frequency` in 16-bit PCM (a sine of amplitude A reads about A)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return 0.0
    n = samples.size
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0


def rtp(
    payload: bytes,
    sequence: int,
    timestamp: int,
    *,
    ssrc: int = 0x1234,
    payload_type: int = 0,
    marker: bool = False,
) -> bytes:
    return RtpPacket(payload_type, sequence, timestamp, ssrc, payload, marker).serialize()


class Peer:
    """A phone on the far side of one endpoint: sends RTP in, reads what came out."""

    def __init__(self, harness: "Harness", endpoint_id: str, port: int, law: G711Law) -> None:
        self.harness = harness
        self.endpoint_id = endpoint_id
        self.address: Address = ("192.0.2.10", port)
        self.law = law
        self.rtp = Capture()
        self.rtcp = Capture()
        self.sequence = 1
        self.timestamp = 0
        self.ssrc = 0x5000 + port

    def send(self, pcm: bytes, *, payload_type: int | None = None) -> None:
        payload = self.law.encode(pcm)
        pt = self.law.codec.payload_type if payload_type is None else payload_type
        data = rtp(payload, self.sequence, self.timestamp, ssrc=self.ssrc, payload_type=pt)
        self.sequence += 1
        self.timestamp += len(payload)
        self.harness.switch.receive_rtp(
            self.endpoint_id, data, self.address, self.harness.clock.monotonic()
        )

    def heard(self) -> bytes:
        """Linear PCM of every audio packet received so far (telephone-events left out)."""
        return b"".join(
            self.law.decode(packet.payload)
            for packet in self.rtp.packets()
            if packet.payload_type == self.law.codec.payload_type
        )


class Harness:
    """A MediaSwitch on a FakeClock with fake transports; time moves only in `step`."""

    def __init__(self, *, slots: int = 1, **switch_options: Any) -> None:
        self.clock = FakeClock()
        self.scheduler = TickScheduler(self.clock.monotonic(), slots=slots)
        self.events: list[MediaEvent] = []
        self.switch = MediaSwitch(self.scheduler, self.events.append, **switch_options)
        self.peers: dict[str, Peer] = {}

    def add(
        self,
        endpoint_id: str,
        port: int,
        codec: Codec = PCMU,
        *,
        events: int | None = 101,
        call_id: str = "call-1",
    ) -> Peer:
        peer = Peer(self, endpoint_id, port, G711Law.of(codec))
        now = self.clock.monotonic()
        self.switch.add_endpoint(endpoint_id, call_id, peer.rtp, peer.rtcp, now)
        self.switch.negotiate(endpoint_id, negotiated(port, codec, events=events), now)
        self.peers[endpoint_id] = peer
        return peer

    def tick(self) -> None:
        """Run the current tick, then move the clock to the next one."""
        self.scheduler.run_due(self.clock.monotonic())
        self.clock.advance(FRAME_SECONDS)

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / FRAME_SECONDS)):
            self.tick()

    def of_type(self, kind: type[EventT]) -> list[EventT]:
        return [event for event in self.events if isinstance(event, kind)]
