"""Offer/answer, re-INVITEs, recording, mixing and digits through the engine's API."""

import asyncio
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from telportal.media import (
    DigitReceived,
    DigitsSent,
    DtmfMethod,
    EmbeddedMediaEngine,
    MediaConfig,
    MediaEngine,
    MediaStateError,
    MixRole,
    PlayFinished,
    Playlist,
    PlaySilence,
    PlayTone,
    RecordingLayout,
    UnknownEndpointError,
)
from telportal.rtp.tones import BEEP, DIAL_NORTH_AMERICA
from telportal.sdp import PCMU, Direction, LocalMedia, SessionDescription, answer_offer
from tests.integration.media.support import HOST, Phone, next_of


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[EmbeddedMediaEngine]:
    async with EmbeddedMediaEngine(MediaConfig(port_min=46000, port_max=46999)) as running:
        yield running


@pytest.fixture
async def phone() -> AsyncIterator[Phone]:
    opened = await Phone.open()
    yield opened
    opened.close()


def test_the_embedded_engine_is_a_media_engine() -> None:
    engine: MediaEngine = EmbeddedMediaEngine(MediaConfig())
    assert engine is not None


async def test_our_offer_their_answer_then_hold(engine: EmbeddedMediaEngine, phone: Phone) -> None:
    leg = await engine.create_endpoint("out-1")
    offer = leg.sdp
    assert offer.media[0].payload_types == [0, 8, 101]
    with pytest.raises(MediaStateError, match="no codec negotiated"):
        await engine.play(leg.endpoint_id, Playlist.of(PlayTone(BEEP)))
    answer = answer_offer(offer, LocalMedia(HOST, phone.port, codecs=(PCMU,)), 7, 1)
    await engine.accept_answer(leg.endpoint_id, answer.sdp)
    await engine.play(leg.endpoint_id, Playlist.of(PlayTone(DIAL_NORTH_AMERICA, 60000)))
    assert (await phone.rtp()).payload_type == 0
    # We put the phone on hold: a new offer with a higher version, sendonly; the phone
    # answers recvonly and keeps hearing what we send (music on hold).
    hold = await engine.create_offer(leg.endpoint_id, Direction.SENDONLY)
    assert hold.origin.session_version == offer.origin.session_version + 1
    assert hold.direction_for(hold.media[0]) is Direction.SENDONLY
    held = answer_offer(hold, LocalMedia(HOST, phone.port, codecs=(PCMU,)), 7, 2)
    assert held.sdp.direction_for(held.sdp.media[0]) is Direction.RECVONLY
    await engine.accept_answer(leg.endpoint_id, held.sdp)
    sent = (await engine.stats(leg.endpoint_id)).packets_sent
    await phone.rtp()
    await phone.rtp()
    assert (await engine.stats(leg.endpoint_id)).packets_sent > sent


async def test_the_phone_holds_us(engine: EmbeddedMediaEngine, phone: Phone) -> None:
    leg = await engine.create_endpoint("in-1", phone.offer(PCMU))
    await engine.play(leg.endpoint_id, Playlist.of(PlayTone(DIAL_NORTH_AMERICA, 60000)))
    await phone.rtp()
    # A re-INVITE with sendonly: the phone will not listen, so we stop sending.
    reinvite = SessionDescription.parse(
        phone.offer(PCMU).serialize().replace("a=sendrecv", "a=sendonly")
    )
    reply = await engine.answer_offer(leg.endpoint_id, reinvite)
    assert reply.direction_for(reply.media[0]) is Direction.RECVONLY
    stats = await engine.stats(leg.endpoint_id)
    await asyncio.sleep(0.3)
    assert (await engine.stats(leg.endpoint_id)).packets_sent == stats.packets_sent


async def test_recording_through_the_engine(
    engine: EmbeddedMediaEngine, phone: Phone, tmp_path: Path
) -> None:
    leg = await engine.create_endpoint("rec-1", phone.offer(PCMU))
    path = tmp_path / "rec.wav"
    await engine.record_start(leg.endpoint_id, path, layout=RecordingLayout.MIXED)
    with pytest.raises(MediaStateError, match="already recording"):
        await engine.record_start(leg.endpoint_id, tmp_path / "other.wav")
    async with engine.events() as events:
        await engine.play(leg.endpoint_id, Playlist.of(PlaySilence(200), PlayTone(BEEP)))
        await next_of(events, PlayFinished)
    await engine.record_pause(leg.endpoint_id)
    await engine.record_resume(leg.endpoint_id)
    summary = await engine.record_stop(leg.endpoint_id)
    assert summary.path == str(path)
    with wave.open(str(path), "rb") as reader:
        assert reader.getnchannels() == 1
        assert reader.getnframes() == round(summary.duration * 8000)
    assert summary.duration > 0.4


async def test_mixing_and_digits_through_the_engine(engine: EmbeddedMediaEngine) -> None:
    phones = [await Phone.open() for _ in range(3)]
    try:
        legs = [await engine.create_endpoint("conf", p.offer(PCMU)) for p in phones]
        caller, agent, boss = (leg.endpoint_id for leg in legs)
        await engine.bridge(caller, agent)
        await engine.mix("room", caller, MixRole.PARTICIPANT)
        await engine.mix("room", agent, MixRole.PARTICIPANT)
        await engine.mix("room", boss, MixRole.WHISPER, whisper_to=agent)
        assert engine.switch.bridged_to(caller) is None  # the mix replaced the bridge
        for phone in phones:
            assert (await phone.rtp()).payload_type == 0  # the mixer feeds everyone
        async with engine.events() as events:
            await engine.digit_from_signaling(caller, "7")
            got = await next_of(events, DigitReceived)
            assert got == DigitReceived(caller, "conf", "7", DtmfMethod.SIGNALING)
            await engine.send_digits(boss, "42")
            sent = await next_of(events, DigitsSent)
            assert sent == DigitsSent(boss, "conf", "42")
        await engine.unmix(boss)
        assert engine.switch.mix_of(boss) is None
        await engine.unbridge(caller)
    finally:
        for phone in phones:
            phone.close()


async def test_unknown_endpoints_are_named_in_the_error(engine: EmbeddedMediaEngine) -> None:
    with pytest.raises(UnknownEndpointError, match="'nope'"):
        await engine.play("nope", Playlist.of(PlayTone(BEEP)))
    with pytest.raises(UnknownEndpointError):
        await engine.close("nope")
    phone = await Phone.open()
    try:
        leg = await engine.create_endpoint("x", phone.offer(PCMU))
        with pytest.raises(MediaStateError, match="no offer waiting"):
            await engine.accept_answer(leg.endpoint_id, leg.sdp)
    finally:
        phone.close()


async def test_a_failing_listener_does_not_break_the_call(
    engine: EmbeddedMediaEngine, phone: Phone, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    stop_broken = engine.add_listener(broken)
    engine.add_listener(seen.append)
    leg = await engine.create_endpoint("l-1", phone.offer(PCMU))
    async with engine.events() as events:
        await engine.digit_from_signaling(leg.endpoint_id, "5")
        await next_of(events, DigitReceived)
    assert "media event listener" in caplog.text
    assert any(isinstance(event, DigitReceived) for event in seen)
    stop_broken()
    await engine.close(leg.endpoint_id)
