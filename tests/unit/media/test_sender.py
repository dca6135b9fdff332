"""Outgoing header rewriting: one SSRC, gapless sequence, timestamps that follow time."""

from telportal.media.sender import RtpSender
from telportal.rtp.packet import RtpPacket


def parse(data: bytes) -> RtpPacket:
    return RtpPacket.parse(data)


def test_generated_audio_is_timed_by_the_frame_number() -> None:
    sender = RtpSender(0xABCD, 65534, 1000)
    packets = [parse(sender.generated(b"\xff" * 160, 0, frame, frame * 0.02)) for frame in range(3)]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0]
    assert [p.timestamp for p in packets] == [1000, 1160, 1320]
    assert [p.marker for p in packets] == [True, False, False]
    assert {p.ssrc for p in packets} == {0xABCD}
    # A skipped frame shows as a timestamp gap, the sequence stays gapless.
    skipped = parse(sender.generated(b"\xff" * 160, 0, 5, 0.1))
    assert (skipped.sequence_number, skipped.timestamp) == (1, 1800)
    assert (sender.packets, sender.octets) == (4, 640)


def test_relayed_audio_keeps_the_source_spacing_under_our_ssrc() -> None:
    sender = RtpSender(7, 100, 50000)
    sender.generated(b"x" * 160, 0, 0, 0.0)
    first = parse(sender.relayed(b"y" * 160, 8, False, 0x9999, 123456, 0.02))
    second = parse(sender.relayed(b"y" * 160, 8, False, 0x9999, 123456 + 160, 0.04))
    # A new segment resumes one frame after the last packet and is marked.
    assert (first.timestamp, first.marker, first.ssrc) == (50160, True, 7)
    assert (second.timestamp, second.marker) == (50320, False)
    assert [first.sequence_number, second.sequence_number] == [101, 102]


def test_segment_change_resumes_after_the_wall_time_elapsed() -> None:
    sender = RtpSender(7, 0, 0)
    sender.relayed(b"y", 0, False, 1, 500, 1.0)
    # 200 ms later a prompt starts on frame 999: 10 frames after the last timestamp.
    prompt = parse(sender.generated(b"z", 0, 999, 1.2))
    assert (prompt.timestamp, prompt.marker) == (1600, True)
    # The far side restarts with a new SSRC: a new segment again.
    back = parse(sender.relayed(b"y", 0, False, 2, 7, 1.22))
    assert (back.timestamp, back.marker) == (1760, True)


def test_event_timestamps_are_fixed_per_event() -> None:
    sender = RtpSender(7, 0, 0)
    timestamp, new = sender.frame_timestamp(10, 0.2)
    assert new is True
    packets = [parse(sender.event(b"\x05\x0a\x00\xa0", 101, i == 0, timestamp)) for i in range(3)]
    assert {p.timestamp for p in packets} == {timestamp}
    assert [p.marker for p in packets] == [True, False, False]
    assert sender.timestamp_at(0.3) == timestamp + 800
