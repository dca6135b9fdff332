"""The switch on a FakeClock: bridging, digits, prompts, timeouts and teardown."""

from pathlib import Path

import pytest

from telportal.media.audio import G711Law
from telportal.media.clips import EncodedClip
from telportal.media.digits import DtmfMethod
from telportal.media.errors import MediaStateError, UnknownEndpointError
from telportal.media.events import (
    DigitReceived,
    DigitsSent,
    EndpointClosed,
    EndpointTimedOut,
    PlayFinished,
    RecordingStopped,
    SourceLatched,
)
from telportal.media.player import PlayEndReason
from telportal.media.recorder import CallRecorder
from telportal.media.wav import IncrementalWavWriter
from telportal.rtp.dtmf import DigitStarted, TelephoneEvent, TelephoneEventReceiver
from telportal.rtp.g711 import pcmu_to_pcma
from telportal.rtp.rtcp import Bye, parse_rtcp
from telportal.rtp.tones import DtmfDetector
from telportal.sdp import PCMA, PCMU
from tests.unit.media.support import Harness, frames_of, goertzel_level, rtp, sine_pcm


def prompt(seconds: float, hz: float = 1000.0) -> EncodedClip:
    return EncodedClip.from_pcm(sine_pcm(hz, seconds, 6000))


def test_bridge_transcodes_and_rewrites_headers() -> None:
    harness = Harness()
    a = harness.add("a", 4000, PCMU)
    b = harness.add("b", 5000, PCMA)
    harness.switch.bridge("a", "b")
    assert harness.switch.bridged_to("a") == "b"
    frames = frames_of(sine_pcm(700, 0.2, 8000))
    sent = []
    for frame in frames:
        sent.append(G711Law.PCMU.encode(frame))
        a.send(frame)
        harness.tick()
    out = b.rtp.packets()
    assert len(out) == len(frames)
    assert [p.payload for p in out] == [pcmu_to_pcma(p) for p in sent]
    assert {p.payload_type for p in out} == {8}
    assert {p.ssrc for p in out} == {harness.switch.session("b").ssrc}
    assert {p.ssrc for p in out} != {a.ssrc}
    sequences = [p.sequence_number for p in out]
    assert sequences == [(sequences[0] + i) % 65536 for i in range(len(out))]
    assert [p.timestamp - out[0].timestamp for p in out] == [160 * i for i in range(len(out))]
    assert [p.marker for p in out] == [True] + [False] * (len(out) - 1)
    # And back the other way.
    b.send(frames[0])
    back = a.rtp.packets()[-1]
    assert back.payload_type == 0
    assert back.ssrc == harness.switch.session("a").ssrc


def test_rfc4733_passes_through_under_the_other_legs_payload_type() -> None:
    harness = Harness()
    a = harness.add("a", 4000, events=101)
    b = harness.add("b", 5000, events=96)
    harness.switch.bridge("a", "b")
    event = TelephoneEvent(5, False, 10, 160).serialize()
    a_now = harness.clock.monotonic()
    harness.switch.receive_rtp(
        "a", rtp(event, 1, 8000, ssrc=a.ssrc, payload_type=101, marker=True), a.address, a_now
    )
    (relayed,) = b.rtp.packets()
    assert (relayed.payload_type, relayed.payload, relayed.marker) == (96, event, True)
    assert harness.of_type(DigitReceived) == [DigitReceived("a", "call-1", "5", DtmfMethod.RFC4733)]


def test_rfc4733_becomes_tones_for_a_leg_without_telephone_event() -> None:
    harness = Harness()
    a = harness.add("a", 4000, events=101)
    b = harness.add("b", 5000, events=None)
    harness.switch.bridge("a", "b")
    event = TelephoneEvent(9, False, 10, 160).serialize()
    harness.switch.receive_rtp(
        "a", rtp(event, 1, 8000, ssrc=a.ssrc, payload_type=101, marker=True), a.address, 0.0
    )
    harness.run(0.4)
    detected = DtmfDetector().feed(b.heard())
    assert [e.digit for e in detected if isinstance(e, DigitStarted)] == ["9"]
    assert harness.of_type(DigitsSent) == [DigitsSent("b", "call-1", "9")]


def test_prompt_plays_frame_by_frame_then_finishes() -> None:
    harness = Harness()
    caller = harness.add("caller", 4000)
    clip = prompt(0.1)
    harness.switch.play("caller", "p1", [clip])
    assert harness.switch.playing("caller") == "p1"
    harness.run(0.2)
    packets = caller.rtp.packets()
    assert [p.payload for p in packets] == list(clip.frames(G711Law.PCMU))
    assert harness.of_type(PlayFinished) == [
        PlayFinished("caller", "call-1", "p1", PlayEndReason.COMPLETED)
    ]
    assert harness.switch.playing("caller") is None
    assert len(harness.scheduler) == 1  # the idle leg left the scheduler


def test_barge_in_by_key_press() -> None:
    harness = Harness()
    caller = harness.add("caller", 4000)
    harness.switch.play("caller", "p1", [prompt(2.0)], barge_in=True)
    harness.run(0.1)
    harness.switch.digit_from_signaling("caller", "3", harness.clock.monotonic())
    harness.run(0.1)
    assert len(caller.rtp.packets()) == 5
    assert [type(e).__name__ for e in harness.events] == ["DigitReceived", "PlayFinished"]
    assert harness.of_type(PlayFinished)[0].reason is PlayEndReason.BARGED_IN


def test_music_on_hold_loops_and_ignores_keys() -> None:
    harness = Harness()
    caller = harness.add("caller", 4000)
    harness.switch.play("caller", "moh", [prompt(0.1)], loop=True, barge_in=False)
    harness.run(0.2)
    harness.switch.digit_from_signaling("caller", "1", harness.clock.monotonic())
    harness.run(0.8)
    assert len(caller.rtp.packets()) == 50
    assert harness.of_type(PlayFinished) == []
    assert harness.switch.stop_play("caller") is True
    assert harness.of_type(PlayFinished)[0].reason is PlayEndReason.STOPPED
    assert harness.switch.stop_play("caller") is False


def test_a_prompt_takes_over_a_bridged_leg_and_hands_it_back() -> None:
    harness = Harness()
    a = harness.add("a", 4000)
    b = harness.add("b", 5000)
    harness.switch.bridge("a", "b")
    harness.switch.play("b", "notice", [prompt(0.1, 1500)], barge_in=False)
    voice = frames_of(sine_pcm(600, 0.4, 6000))
    for frame in voice:
        a.send(frame)
        harness.tick()
    heard = b.heard()
    assert goertzel_level(heard[:1600], 1500) > 3000  # the notice first
    assert goertzel_level(heard[:1600], 600) < 100
    assert goertzel_level(heard[-3200:], 600) > 3000  # then the other party again
    sequences = [p.sequence_number for p in b.rtp.packets()]
    assert sequences == [(sequences[0] + i) % 65536 for i in range(len(sequences))]


def test_replacing_a_play() -> None:
    harness = Harness()
    harness.add("caller", 4000)
    harness.switch.play("caller", "first", [prompt(1.0)])
    harness.switch.play("caller", "second", [prompt(1.0)])
    assert harness.of_type(PlayFinished) == [
        PlayFinished("caller", "call-1", "first", PlayEndReason.REPLACED)
    ]


def test_send_digits_as_rfc4733() -> None:
    harness = Harness()
    peer = harness.add("agent", 4000, events=101)
    harness.switch.play("agent", "moh", [prompt(5.0)], loop=True, barge_in=False)
    harness.run(0.1)
    harness.switch.send_digits("agent", "12#")
    harness.run(1.0)
    events = [p for p in peer.rtp.packets() if p.payload_type == 101]
    receiver = TelephoneEventReceiver()
    got = [e for p in events for e in receiver.receive(p) if isinstance(e, DigitStarted)]
    assert [e.digit for e in got] == ["1", "2", "#"]
    assert len({p.timestamp for p in events}) == 3  # one timestamp per key press
    assert sum(p.marker for p in events) == 3
    ends = [p for p in events if TelephoneEvent.parse(p.payload).end]
    assert len(ends) == 9  # three end packets each
    assert harness.of_type(DigitsSent) == [DigitsSent("agent", "call-1", "12#")]
    # The prompt paused during the digits and carries on afterwards.
    assert harness.switch.playing("agent") == "moh"
    with pytest.raises(ValueError, match="not a DTMF digit"):
        harness.switch.send_digits("agent", "1x")


def test_send_digits_as_tones_without_telephone_event() -> None:
    harness = Harness()
    peer = harness.add("agent", 4000, events=None)
    harness.switch.send_digits("agent", "47", duration_ms=80, gap_ms=80)
    harness.run(0.6)
    detected = DtmfDetector().feed(peer.heard())
    assert [e.digit for e in detected if isinstance(e, DigitStarted)] == ["4", "7"]


def test_no_rtp_timeout_is_reported_once_and_rearmed_by_rtp() -> None:
    harness = Harness(rtp_timeout=3.0)
    caller = harness.add("caller", 4000)
    harness.run(5.0)
    (timeout,) = harness.of_type(EndpointTimedOut)
    assert timeout.endpoint_id == "caller"
    assert 3.0 <= timeout.silent_seconds < 4.1
    caller.send(bytes(320))
    harness.run(2.0)
    assert len(harness.of_type(EndpointTimedOut)) == 1
    harness.run(2.0)
    assert len(harness.of_type(EndpointTimedOut)) == 2


def test_latching_is_reported() -> None:
    harness = Harness()
    caller = harness.add("caller", 4000)
    caller.address = ("203.0.113.9", 34567)
    caller.send(bytes(320))
    assert harness.of_type(SourceLatched) == [
        SourceLatched("caller", "call-1", ("203.0.113.9", 34567))
    ]


def test_rtcp_reports_every_interval() -> None:
    harness = Harness()
    peer = harness.add("caller", 4000)
    harness.run(16.0)
    assert 3 <= len(peer.rtcp.sent) <= 4
    assert {address for _, address in peer.rtcp.sent} == {("192.0.2.10", 4001)}


def test_closing_stops_everything_and_says_goodbye(tmp_path: Path) -> None:
    harness = Harness()
    peer = harness.add("caller", 4000)
    harness.switch.play("caller", "p1", [prompt(5.0)])
    harness.switch.record_start("caller", CallRecorder(IncrementalWavWriter(tmp_path / "r.wav", 2)))
    harness.run(0.5)
    stats = harness.switch.remove_endpoint("caller", harness.clock.monotonic())
    assert stats.packets_sent == 25
    kinds = [type(e) for e in harness.events]
    assert kinds == [PlayFinished, RecordingStopped, EndpointClosed]
    assert harness.of_type(PlayFinished)[0].reason is PlayEndReason.CLOSED
    assert isinstance(parse_rtcp(peer.rtcp.sent[-1][0])[-1], Bye)
    assert len(harness.scheduler) == 0
    with pytest.raises(UnknownEndpointError, match="caller"):
        harness.switch.play("caller", "p2", [prompt(1.0)])
    # A packet still in flight for the closed endpoint is ignored.
    harness.switch.receive_rtp("caller", rtp(bytes(160), 1, 0), peer.address, 1.0)


def test_idle_endpoints_cost_nothing_per_tick() -> None:
    harness = Harness()
    for index in range(1000):
        harness.add(f"e{index}", 10000 + 2 * index)
    assert len(harness.scheduler) == 1  # housekeeping only, however many idle legs
    harness.run(0.2)
    assert harness.scheduler.stats.ticks_run == 10


def test_state_errors() -> None:
    harness = Harness()
    harness.add("a", 4000)
    with pytest.raises(MediaStateError, match="itself"):
        harness.switch.bridge("a", "a")
    with pytest.raises(MediaStateError, match="not recording"):
        harness.switch.record_stop("a")
    with pytest.raises(MediaStateError, match="exists already"):
        harness.add("a", 4002)
    harness.switch.add_endpoint(
        "fresh", "call-2", harness.peers["a"].rtp, harness.peers["a"].rtcp, 0
    )
    with pytest.raises(MediaStateError, match="no codec negotiated"):
        harness.switch.play("fresh", "p", [prompt(0.1)])
