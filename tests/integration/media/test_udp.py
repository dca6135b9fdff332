"""The embedded engine on real UDP sockets on 127.0.0.1 (no timing assertions here)."""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telportal.media import (
    DigitReceived,
    DtmfMethod,
    EmbeddedMediaEngine,
    EndpointClosed,
    EventSubscription,
    MediaConfig,
    PlayFinished,
    Playlist,
    PlaySpeech,
    PlayTone,
    SourceLatched,
)
from telportal.rtp.dtmf import TelephoneEventSender
from telportal.rtp.g711 import pcmu_encode, pcmu_to_pcma
from telportal.rtp.packet import RtpPacket
from telportal.rtp.tones import DIAL_NORTH_AMERICA
from telportal.sdp import PCMA, PCMU, Codec, SdpError
from tests.integration.media.support import HOST, Phone, next_of
from tests.unit.media.support import sine_pcm


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[EmbeddedMediaEngine]:
    config = MediaConfig(port_min=43000, port_max=43999, cache_dir=tmp_path / "cache")
    async with EmbeddedMediaEngine(config) as running:
        yield running


@pytest.fixture
async def events(engine: EmbeddedMediaEngine) -> AsyncIterator[EventSubscription]:
    async with engine.events() as subscription:
        yield subscription


@pytest.fixture
async def phones() -> AsyncIterator[list[Phone]]:
    opened = [await Phone.open() for _ in range(3)]
    yield opened
    for phone in opened:
        phone.close()


async def test_bridged_legs_transcode_pcmu_to_pcma_with_their_own_headers(
    engine: EmbeddedMediaEngine, phones: list[Phone]
) -> None:
    phone_a, phone_b, _ = phones
    leg_a = await engine.create_endpoint("call-1", phone_a.offer(PCMU))
    leg_b = await engine.create_endpoint("call-1", phone_b.offer(PCMA))
    await engine.bridge(leg_a.endpoint_id, leg_b.endpoint_id)
    frames = [pcmu_encode(sine_pcm(800, 0.02, 7000)) for _ in range(10)]
    for index, payload in enumerate(frames):
        phone_a.send(
            RtpPacket(0, 500 + index, 9000 + 160 * index, 0x1111, payload).serialize(),
            leg_a.rtp_port,
        )
        await asyncio.sleep(0.005)
    received = [await phone_b.rtp() for _ in frames]
    assert [p.payload for p in received] == [pcmu_to_pcma(f) for f in frames]
    assert {p.payload_type for p in received} == {8}
    assert {p.ssrc for p in received} == {engine.switch.session(leg_b.endpoint_id).ssrc}
    assert 0x1111 not in {p.ssrc for p in received}
    first = received[0]
    assert [p.sequence_number for p in received] == [
        (first.sequence_number + i) % 65536 for i in range(len(frames))
    ]
    assert [p.timestamp - first.timestamp for p in received] == [160 * i for i in range(10)]
    assert first.marker


async def test_symmetric_rtp_latches_to_the_real_source_port(
    engine: EmbeddedMediaEngine, events: EventSubscription, phones: list[Phone]
) -> None:
    decoy, real, stranger = phones  # the SDP names the decoy's port, media comes from `real`
    leg = await engine.create_endpoint("call-2", real.offer(PCMU, port=decoy.port))
    await engine.play(leg.endpoint_id, Playlist.of(PlayTone(DIAL_NORTH_AMERICA, 30000)))
    before = await decoy.rtp()  # until a packet arrives, media goes where the SDP says
    real.send(RtpPacket(0, 1, 160, 0x2222, bytes(160)).serialize(), leg.rtp_port)
    latched = await next_of(events, SourceLatched)
    assert isinstance(latched, SourceLatched)
    assert latched.address == (HOST, real.port)
    after = await real.rtp()
    assert after.ssrc == before.ssrc
    # Someone else now sends to the same port: dropped, the latch stays on `real`.
    stranger.send(RtpPacket(0, 7, 1120, 0x3333, bytes(160)).serialize(), leg.rtp_port)
    await real.rtp()
    stats = await engine.stats(leg.endpoint_id)
    while stats.dropped_foreign == 0:
        await asyncio.sleep(0.01)
        stats = await engine.stats(leg.endpoint_id)
    assert stats.latched == (HOST, real.port)
    assert stranger.received.empty()


async def test_rfc4733_digits_arrive_as_events(
    engine: EmbeddedMediaEngine, events: EventSubscription, phones: list[Phone]
) -> None:
    phone = phones[0]
    leg = await engine.create_endpoint("call-3", phone.offer(PCMU))
    sender = TelephoneEventSender(101, 0x4444)
    sequence = 1
    for index, digit in enumerate("15#"):
        for scheduled in sender.packets(digit, 8000 * (index + 1), sequence, 100):
            phone.send(scheduled.packet.serialize(), leg.rtp_port)
            sequence += 1
    got = [await next_of(events, DigitReceived) for _ in range(3)]
    assert got == [
        DigitReceived(leg.endpoint_id, "call-3", digit, DtmfMethod.RFC4733) for digit in "15#"
    ]


async def test_speech_prompt_is_played_to_a_real_socket(
    engine: EmbeddedMediaEngine, events: EventSubscription, phones: list[Phone]
) -> None:
    phone = phones[0]
    leg = await engine.create_endpoint("call-4", phone.offer(PCMA))
    play_id = await engine.play(leg.endpoint_id, Playlist.of(PlaySpeech("Thank you")))
    finished = await next_of(events, PlayFinished)
    assert finished == PlayFinished(leg.endpoint_id, "call-4", play_id, finished.reason)
    packets = []
    while not phone.received.empty():
        data, _ = phone.received.get_nowait()
        if not 192 <= data[1] <= 223:
            packets.append(RtpPacket.parse(data))
    assert len(packets) > 20
    assert {p.payload_type for p in packets} == {8}


def our_udp_ports() -> set[int]:
    """Local ports of the UDP sockets this process holds open (Linux /proc)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except FileNotFoundError:
            continue  # the descriptor listdir itself used, gone already
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def new_ports_in_range(baseline: set[int]) -> set[int]:
    """UDP ports in the engine's range opened since `baseline` (a phone bound to port 0
    may have been given an ephemeral port inside the range: it is in the baseline)."""
    return {port for port in our_udp_ports() - baseline if 44000 <= port <= 44999}


def bind_pair(port: int) -> None:
    """Binding both ports again succeeds only if the engine really closed them."""
    for candidate in (port, port + 1):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((HOST, candidate))


async def test_every_socket_is_closed(tmp_path: Path, phones: list[Phone]) -> None:
    baseline = our_udp_ports()
    # Ended calls' pairs closed at once, as with no pool (test_port_pairs.py has the pool).
    config = MediaConfig(port_min=44000, port_max=44999, idle_port_pairs=0)
    engine = EmbeddedMediaEngine(config)
    engine.start()
    try:
        subscription = engine.events()
        legs = [await engine.create_endpoint(f"call-{i % 2}", phones[0].offer()) for i in range(4)]
        assert new_ports_in_range(baseline) == {
            p for leg in legs for p in (leg.rtp_port, leg.rtcp_port)
        }
        transports = engine.transports(legs[0].endpoint_id)
        await engine.close(legs[0].endpoint_id)
        assert all(t.is_closing() for t in transports)
        bind_pair(legs[0].rtp_port)
        await engine.close_call("call-1")  # legs 1 and 3
        for leg in (legs[1], legs[3]):
            bind_pair(leg.rtp_port)
        # An offer we cannot accept opens nothing that stays open.
        with pytest.raises(SdpError, match="no common audio codec"):
            await engine.create_endpoint("call-9", phones[0].offer(Codec("G722", 8000, 9)))
        assert new_ports_in_range(baseline) == {legs[2].rtp_port, legs[2].rtcp_port}
        await engine.aclose()  # leg 2, still open, is closed here
        bind_pair(legs[2].rtp_port)
        assert new_ports_in_range(baseline) == set()
        assert engine.ports.in_use == frozenset()
    finally:
        await engine.aclose()
    closed = [e async for e in subscription if isinstance(e, EndpointClosed)]
    assert sorted(e.endpoint_id for e in closed) == sorted(leg.endpoint_id for leg in legs)
