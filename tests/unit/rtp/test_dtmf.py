import pytest

from telportal.rtp.dtmf import (
    DigitEnded,
    DigitStarted,
    DtmfEvent,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    event_code,
    event_digit,
)
from telportal.rtp.packet import RtpPacket, RtpParseError

PT = 101
SSRC = 0x0A0B0C0D


def packet(payload: str, timestamp: int, sequence: int = 0, *, marker: bool = False) -> RtpPacket:
    return RtpPacket(PT, sequence, timestamp, SSRC, bytes.fromhex(payload), marker=marker)


def receive_all(receiver: TelephoneEventReceiver, packets: list[RtpPacket]) -> list[DtmfEvent]:
    events: list[DtmfEvent] = []
    for item in packets:
        events.extend(receiver.receive(item))
    return events


def test_payload_fields() -> None:
    # Digit 5, E bit, volume 10, duration 800.
    event = TelephoneEvent.parse(bytes.fromhex("058a0320"))
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=800)
    assert event.serialize() == bytes.fromhex("058a0320")
    assert TelephoneEvent(11, False, 63, 65535).serialize() == bytes.fromhex("0b3fffff")


def test_reserved_bit_is_ignored() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("05ca0320"))
    assert event == TelephoneEvent(5, True, 10, 800)
    assert event.serialize() == bytes.fromhex("058a0320")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("058a03", "telephone-event payload is 3 bytes, expected 4"),
        ("058a0320058a0320", "telephone-event payload is 8 bytes, expected 4"),
    ],
)
def test_payload_errors(payload: str, message: str) -> None:
    with pytest.raises(RtpParseError, match=message):
        TelephoneEvent.parse(bytes.fromhex(payload))


def test_payload_ranges() -> None:
    with pytest.raises(ValueError, match="volume 64 is out of range 0-63"):
        TelephoneEvent(1, volume=64)
    with pytest.raises(ValueError, match="duration 65536 is out of range 0-65535"):
        TelephoneEvent(1, duration=65536)


def test_event_codes() -> None:
    assert [event_code(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_code("a") == 12
    assert "".join(event_digit(code) or "?" for code in range(17)) == "0123456789*#ABCD?"
    with pytest.raises(ValueError, match="'E' is not a DTMF digit"):
        event_code("E")
    with pytest.raises(ValueError, match="'12' is not a DTMF digit"):
        event_code("12")


def test_one_key_press_with_rfc_4733_redundancy() -> None:
    """Start, its retransmission, updates, and the three end packets: one digit, once."""
    ts = 16000
    stream = [
        packet("050a00a0", ts, 1, marker=True),
        packet("050a00a0", ts, 2, marker=True),  # retransmitted start
        packet("050a0140", ts, 3),
        packet("050a01e0", ts, 4),
        packet("058a0320", ts, 5),
        packet("058a0320", ts, 6),
        packet("058a0320", ts, 7),
    ]
    receiver = TelephoneEventReceiver()
    per_packet = [receiver.receive(item) for item in stream]
    assert per_packet == [
        [DigitStarted("5", ts)],
        [],
        [],
        [],
        [DigitEnded("5", ts, 800)],
        [],
        [],
    ]
    assert receiver.flush() == []


def test_reordered_and_duplicated_end_packets_count_once() -> None:
    ts = 8000
    stream = [
        packet("008a0320", ts, 5),
        packet("000a00a0", ts, 1, marker=True),
        packet("008a0320", ts, 6),
        packet("000a0140", ts, 3),
        packet("008a0320", ts, 5),
    ]
    events = receive_all(TelephoneEventReceiver(), stream)
    # The start was late: the first packet seen was an end, which reports both at once.
    assert events == [DigitStarted("0", ts), DigitEnded("0", ts, 800)]


def test_lost_end_packets_end_the_digit_at_the_next_event() -> None:
    receiver = TelephoneEventReceiver()
    events = receive_all(
        receiver,
        [
            packet("010a00a0", 1000, marker=True),
            packet("010a0140", 1000),
            packet("020a00a0", 3000, marker=True),
        ],
    )
    assert events == [DigitStarted("1", 1000), DigitEnded("1", 1000, 320), DigitStarted("2", 3000)]
    assert receiver.flush() == [DigitEnded("2", 3000, 160)]
    assert receiver.flush() == []


def test_late_packet_of_an_earlier_event_is_dropped() -> None:
    receiver = TelephoneEventReceiver()
    receive_all(receiver, [packet("018a0320", 1000), packet("028a0320", 3000)])
    assert receiver.receive(packet("018a0320", 1000)) == []
    assert receiver.receive(packet("010a00a0", 1000, marker=True)) == []


def test_same_digit_twice_is_two_presses() -> None:
    events = receive_all(
        TelephoneEventReceiver(),
        [
            packet("090a00a0", 100, marker=True),
            packet("098a0320", 100),
            packet("098a0320", 100),
            packet("090a00a0", 2100, marker=True),
            packet("098a0320", 2100),
        ],
    )
    assert events == [
        DigitStarted("9", 100),
        DigitEnded("9", 100, 800),
        DigitStarted("9", 2100),
        DigitEnded("9", 2100, 800),
    ]


def test_timestamp_wrap_starts_a_new_event() -> None:
    events = receive_all(
        TelephoneEventReceiver(),
        [packet("0a8a0320", (1 << 32) - 80), packet("0b8a0320", 720)],
    )
    assert events == [
        DigitStarted("*", (1 << 32) - 80),
        DigitEnded("*", (1 << 32) - 80, 800),
        DigitStarted("#", 720),
        DigitEnded("#", 720, 800),
    ]


def test_non_dtmf_events_are_ignored() -> None:
    receiver = TelephoneEventReceiver()
    assert receiver.receive(packet("100a00a0", 100, marker=True)) == []  # 16: flash
    assert receiver.receive(packet("208a0320", 200)) == []  # 32: fax answer tone
    assert receiver.flush() == []


def test_long_event_continues_in_a_new_segment() -> None:
    """RFC 4733 long-duration events: past 65535 units it goes on under a new timestamp."""
    ts = 50_000
    events = receive_all(
        TelephoneEventReceiver(),
        [
            packet("030a00a0", ts, marker=True),
            packet("030affff", ts),
            packet("030a0190", ts + 0xFFFF),  # no marker, same digit: a continuation
            packet("038a03e8", ts + 0xFFFF),
            packet("038a03e8", ts + 0xFFFF),
        ],
    )
    assert events == [DigitStarted("3", ts), DigitEnded("3", ts, 0xFFFF + 1000)]


def test_sender_packet_plan() -> None:
    sender = TelephoneEventSender(PT, SSRC)
    plan = sender.packets("#", timestamp=4000, first_sequence=65534, duration_ms=100)
    assert [item.offset_ms for item in plan] == [0, 50, 100, 120, 140]
    assert [item.packet.sequence_number for item in plan] == [65534, 65535, 0, 1, 2]
    assert [item.packet.marker for item in plan] == [True, False, False, False, False]
    assert {item.packet.timestamp for item in plan} == {4000}
    assert [item.packet.payload.hex() for item in plan] == [
        "0b0a0190",
        "0b0a0320",
        "0b8a0320",
        "0b8a0320",
        "0b8a0320",
    ]


def test_sender_duration_not_a_multiple_of_the_interval() -> None:
    plan = TelephoneEventSender(PT, SSRC, volume=5).packets("1", 0, 0, duration_ms=120)
    events = [TelephoneEvent.parse(item.packet.payload) for item in plan]
    assert [(e.end, e.duration, e.volume) for e in events] == [
        (False, 400, 5),
        (False, 800, 5),
        (False, 960, 5),
        (True, 960, 5),
        (True, 960, 5),
        (True, 960, 5),
    ]


def test_sender_to_receiver_gives_exactly_one_press() -> None:
    sender = TelephoneEventSender(PT, SSRC)
    receiver = TelephoneEventReceiver()
    events: list[DtmfEvent] = []
    sequence, timestamp = 100, 0
    for digit in "1234567890*#ABCD":
        plan = sender.packets(digit, timestamp, sequence, duration_ms=80)
        events.extend(receive_all(receiver, [item.packet for item in plan]))
        sequence += len(plan)
        timestamp += 1600
    assert [(type(e).__name__, e.digit) for e in events] == [
        (kind, digit) for digit in "1234567890*#ABCD" for kind in ("DigitStarted", "DigitEnded")
    ]
    assert {e.duration for e in events if isinstance(e, DigitEnded)} == {640}


def test_sender_refuses_bad_input() -> None:
    sender = TelephoneEventSender(PT, SSRC)
    with pytest.raises(ValueError, match="'x' is not a DTMF digit"):
        sender.packets("x", 0, 0)
    with pytest.raises(ValueError, match="duration 0 ms must be positive"):
        sender.packets("1", 0, 0, duration_ms=0)
    with pytest.raises(ValueError, match="duration 8200 ms exceeds the 65535 units"):
        sender.packets("1", 0, 0, duration_ms=8200)
    with pytest.raises(ValueError, match="update interval 0 ms must be positive"):
        TelephoneEventSender(PT, SSRC, update_interval_ms=0)
