"""MediaSession without IO: receive rules, statistics, RTCP both ways, latching."""

import pytest

from telportal.media.session import MediaSession, PacketKind, SessionOptions
from telportal.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    SenderReport,
    SourceDescription,
    parse_rtcp,
    serialize_rtcp,
)
from telportal.sdp import PCMA, Direction
from tests.unit.media.support import negotiated, rtp

SIGNALLED = ("192.0.2.10", 4000)
NAT = ("203.0.113.7", 61000)
STRANGER = ("198.51.100.9", 5000)


def make(**options: object) -> MediaSession:
    session = MediaSession(
        ssrc=0xCAFE,
        sequence=10,
        timestamp=0,
        options=SessionOptions(**options),  # type: ignore[arg-type]
        wall_offset=1_700_000_000.0,
    )
    session.negotiate(negotiated(SIGNALLED[1], host=SIGNALLED[0]), 0.0)
    return session


def test_before_negotiation_nothing_is_accepted_or_sent() -> None:
    session = MediaSession(ssrc=1, sequence=0, timestamp=0, options=SessionOptions())
    assert session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0) is None
    assert session.dropped_unknown == 1
    assert session.audio_packet(b"\xff" * 160, 0, 0.0) is None
    assert session.target is None
    assert session.rtcp_due(10.0) is None


def test_first_valid_packet_latches_and_later_strangers_are_dropped() -> None:
    session = make()
    assert session.target == SIGNALLED
    inbound = session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0)
    assert inbound is not None
    assert inbound.latched is True
    assert session.target == NAT
    assert session.rtcp_target == (NAT[0], NAT[1] + 1)
    assert session.receive_rtp(rtp(b"\xff" * 160, 2, 320, ssrc=9), STRANGER, 0.01) is None
    assert session.dropped_foreign == 1
    packet = session.audio_packet(b"\xff" * 160, 0, 0.02)
    assert packet is not None
    assert packet.address == NAT


def test_unknown_payload_types_and_garbage_never_latch() -> None:
    session = make()
    assert session.receive_rtp(rtp(b"\x00", 1, 160, payload_type=13), STRANGER, 0.0) is None
    assert session.receive_rtp(b"\x00" * 20, STRANGER, 0.0) is None
    assert session.receive_rtp(b"\x80", STRANGER, 0.0) is None
    assert session.target == SIGNALLED
    assert (session.dropped_unknown, session.dropped_invalid) == (1, 2)


def test_audio_and_events_are_classified() -> None:
    session = make()
    audio = session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0)
    event = session.receive_rtp(
        rtp(b"\x01\x0a\x00\xa0", 2, 320, payload_type=101, marker=True), NAT, 0.01
    )
    assert audio is not None
    assert audio.kind is PacketKind.AUDIO
    assert event is not None
    assert event.kind is PacketKind.EVENT
    assert [d.digit for d in event.digits] == ["1"]


def _key(session: MediaSession, code: int, sequence: int, timestamp: int, now: float) -> list[str]:
    """Send one telephone-event packet (start of a key press); the digits reported."""
    payload = bytes([code, 0x0A, 0x00, 0xA0])
    inbound = session.receive_rtp(
        rtp(payload, sequence, timestamp, payload_type=101, marker=True), NAT, now
    )
    return [d.digit for d in inbound.digits] if inbound is not None else []


def test_a_restarted_stream_with_older_event_timestamps_still_reports_its_keys() -> None:
    """Spliced recordings (SIPp's digit pcaps played one after another) jump back in both
    sequence and timestamp; after the RFC 3550 restart the new key counts."""
    session = make()
    assert _key(session, 0, 12080, 17632, 0.0) == ["0"]
    assert _key(session, 0, 12081, 17632, 0.02) == []  # the same press, retransmitted
    # Back by 4096 in sequence and 4352 in timestamp: the first packet is held back by
    # the jump rule; the next one in sequence confirms the restart and reports the key.
    assert _key(session, 1, 7984, 13280, 0.5) == []
    assert _key(session, 1, 7985, 13280, 0.52) == ["1"]


def test_without_a_restart_an_older_event_timestamp_is_a_late_packet() -> None:
    session = make()
    assert _key(session, 5, 100, 32000, 0.0) == ["5"]
    assert _key(session, 6, 101, 31000, 0.02) == []  # an earlier event arriving late


def test_loss_and_jitter_per_call() -> None:
    session = make()
    now = 0.0
    for sequence in range(1, 101):
        if sequence in (40, 41, 70):
            continue  # three packets lost on the way
        # Every other packet 4 ms late: interarrival jitter in the milliseconds.
        arrival = sequence * 0.02 + (0.004 if sequence % 2 else 0.0)
        session.receive_rtp(rtp(b"\xff" * 160, sequence, sequence * 160), NAT, arrival)
        now = arrival
    stats = session.stats()
    assert stats.packets_received == 97
    assert stats.packets_lost == 3
    assert 2.0 < stats.jitter_ms < 5.0
    report = session.rtcp_due(now)
    assert report is not None
    assert report.address == (NAT[0], NAT[1] + 1)
    rr, sdes = parse_rtcp(report.data)
    assert isinstance(rr, ReceiverReport)
    assert rr.ssrc == 0xCAFE
    (block,) = rr.reports
    assert block.ssrc == 0x1234
    assert block.cumulative_lost == 3
    assert block.fraction_lost == 3 * 256 // 99
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].cname == "telportal"
    assert session.stats().fraction_lost == pytest.approx(block.fraction_lost / 256)
    # Reports come once per interval.
    assert session.rtcp_due(now + 1.0) is None
    assert session.rtcp_due(now + 5.0) is not None


def test_sender_report_once_we_send_and_their_report_about_us() -> None:
    session = make()
    for frame in range(50):
        session.audio_packet(b"\xd5" * 160, frame, frame * 0.02)
    report = session.rtcp_due(1.0)
    assert report is not None
    sr = parse_rtcp(report.data)[0]
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count) == (50, 8000)
    assert sr.ntp_timestamp >> 32 == int(1_700_000_001.0 + 2_208_988_800)
    theirs = serialize_rtcp([ReceiverReport(0x1234, (ReportBlock(0xCAFE, 64, 12, 1000, 80),))])
    assert session.receive_rtcp(theirs, (SIGNALLED[0], SIGNALLED[1] + 1), 1.1)
    stats = session.stats()
    assert stats.remote_fraction_lost == 0.25
    assert stats.remote_packets_lost == 12
    assert stats.remote_jitter_ms == 10.0
    assert stats.rtcp_received == 1


def test_rtcp_multiplexed_on_the_rtp_port() -> None:
    session = make()
    theirs = serialize_rtcp([ReceiverReport(0x1234, (ReportBlock(0xCAFE, 0, 5, 1, 0),))])
    assert session.receive_rtp(theirs, NAT, 0.0) is None
    assert session.stats().remote_packets_lost == 5


def test_bye_on_close_once_something_was_sent() -> None:
    session = make()
    assert session.audio_packet(b"\xff" * 160, 0, 1.0) is not None
    bye = session.bye(3.0)
    assert bye is not None
    assert isinstance(parse_rtcp(bye.data)[-1], Bye)


def test_bye_after_an_rtcp_report_alone() -> None:
    session = make()
    assert session.rtcp_due(1000.0) is not None
    bye = session.bye(3.0)
    assert bye is not None
    assert isinstance(parse_rtcp(bye.data)[-1], Bye)


def test_no_bye_from_a_session_that_never_sent() -> None:
    """RFC 3550 6.3.7: a participant that never sent RTP or RTCP MUST NOT send a BYE."""
    session = make()
    session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0)
    assert session.bye(3.0) is None
    assert session.stats().rtcp_sent == 0


def test_hold_stops_sending_and_renegotiation_moves_the_target() -> None:
    session = make()
    session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0)
    session.negotiate(negotiated(SIGNALLED[1], host=SIGNALLED[0], direction=Direction.RECVONLY), 1)
    assert session.audio_packet(b"\xff" * 160, 0, 1.0) is None
    session.negotiate(negotiated(6000, PCMA, host="192.0.2.99"), 2.0)
    assert session.target == ("192.0.2.99", 6000)
    assert session.law is not None
    assert session.law.value == "PCMA"
    packet = session.audio_packet(b"\xd5" * 160, 100, 2.0)
    assert packet is not None
    assert packet.data[1] == 0x80 | 8  # marker on the first packet, PCMA


def test_symmetric_rtp_can_be_turned_off() -> None:
    session = make(symmetric=False)
    session.receive_rtp(rtp(b"\xff" * 160, 1, 160), NAT, 0.0)
    assert session.target == SIGNALLED
    assert session.receive_rtp(rtp(b"\xff" * 160, 2, 320), STRANGER, 0.0) is not None


def test_the_law_of_a_codec_is_found_by_its_name_in_any_case_at_8_khz_only() -> None:
    from telportal.media.audio import G711Law
    from telportal.sdp.negotiation import Codec

    assert G711Law.of(PCMA) is G711Law.PCMA
    assert G711Law.of(Codec("pcmu", 8000, 0)) is G711Law.PCMU
    for codec in (Codec("PCMU", 16000, 96), Codec("G722", 8000, 9), Codec("opus", 48000, 111)):
        with pytest.raises(ValueError, match=r"is not G\.711 at 8 kHz"):
            G711Law.of(codec)
