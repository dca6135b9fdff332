import pytest

from telportal.rtp.rtcp import ReportBlock
from telportal.rtp.stats import ReceiverStatistics

CLOCK_RATE = 8000
SSRC = 0x55667788


def feed(stats: ReceiverStatistics, sequences: list[int]) -> list[bool]:
    """Packets 20 ms apart that arrive exactly on time: no jitter."""
    results = []
    for seq in sequences:
        index = (seq - sequences[0]) % 65536
        results.append(stats.receive(seq, (index * 160) % (1 << 32), index * 0.02))
    return results


def test_first_packet_is_probation_and_the_second_starts_counting() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    assert stats.receive(100, 0, 0.0) is False
    assert (stats.valid, stats.expected) == (False, 0)
    assert stats.receive(101, 160, 0.02) is True
    assert stats.valid
    # A.1: base_seq is the packet that ended probation; the first is never counted.
    assert (stats.received, stats.expected, stats.lost) == (1, 1, 0)
    assert stats.extended_highest_sequence == 101


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    assert feed(stats, [10, 12, 13]) == [False, False, True]
    assert stats.received == 1
    assert stats.extended_highest_sequence == 13


def test_loss_and_fraction_lost_by_hand() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [100, 101, 102, 103, 104, *range(106, 111)])
    # Counted: 101-104 and 106-110 = 9 of 101..110 = 10 expected, 1 lost.
    assert (stats.received, stats.expected, stats.lost) == (9, 10, 1)
    block = stats.report_block(now=1.0)
    assert block.fraction_lost == (1 << 8) // 10 == 25
    assert block.cumulative_lost == 1
    assert block.extended_highest_sequence == 110
    # The next interval loses 2 of 10 (113 and 117): 2 * 256 // 10 = 51.
    for seq in [111, 112, 114, 115, 116, 118, 119, 120]:
        stats.receive(seq, seq * 160, seq * 0.02)
    block = stats.report_block(now=2.0)
    assert (block.fraction_lost, block.cumulative_lost) == (51, 3)
    # Nothing new: the interval is empty and reports no loss.
    assert stats.report_block(now=3.0).fraction_lost == 0


def test_sequence_wrap_counts_a_cycle() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    assert feed(stats, [65533, 65534, 65535, 0, 1, 2]) == [False, *[True] * 5]
    # base 65534; highest 65536 + 2 = 65538; expected 65538 - 65534 + 1 = 5.
    assert stats.extended_highest_sequence == 65538
    assert (stats.expected, stats.received, stats.lost) == (5, 5, 0)
    assert stats.report_block(now=0.0).extended_highest_sequence == 0x00010002


def test_wrap_with_loss_across_the_boundary() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [65530, 65531, 65532])
    stats.receive(1, 0, 1.0)  # 65533, 65534, 65535 and 0 lost
    assert stats.extended_highest_sequence == 65536 + 1
    assert (stats.expected, stats.received, stats.lost) == (7, 3, 4)
    assert stats.report_block(now=1.0).fraction_lost == 4 * 256 // 7


def test_probation_across_the_wrap() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    assert feed(stats, [65535, 0]) == [False, True]
    assert stats.extended_highest_sequence == 0


def test_duplicates_make_lost_negative_as_rfc_3550_intends() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [1, 2, 3])
    stats.receive(3, 320, 0.05)
    assert (stats.expected, stats.received, stats.lost) == (2, 3, -1)
    block = stats.report_block(now=0.1)
    assert block.cumulative_lost == -1
    assert block.fraction_lost == 0


def test_late_packet_does_not_move_the_highest_sequence() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [10, 11, 12, 14])
    assert stats.receive(13, 13 * 160, 0.1) is True
    assert stats.extended_highest_sequence == 14
    assert stats.lost == 0


def test_big_jump_is_dropped_unless_the_next_packet_follows_it() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [100, 101, 102])
    assert stats.receive(5000, 0, 1.0) is False  # 4898 ahead: MAX_DROPOUT is 3000
    assert stats.extended_highest_sequence == 102
    assert stats.restarts == 0
    assert stats.receive(5001, 160, 1.02) is True  # in sequence: the source restarted
    assert stats.restarts == 1
    assert (stats.received, stats.expected, stats.extended_highest_sequence) == (1, 1, 5001)


def test_packet_far_behind_is_dropped() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [1000, 1001, 1002])
    assert stats.receive(800, 0, 1.0) is False  # 202 behind: MAX_MISORDER is 100
    assert stats.received == 2


def test_jitter_by_hand() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    stats.receive(0, 0, 0.000)  # probation
    stats.receive(1, 160, 0.020)  # transit 0, no previous transit
    assert stats.jitter == 0
    stats.receive(2, 320, 0.045)  # transit 360 - 320 = 40: J = 40 / 16
    assert stats.jitter == pytest.approx(2.5)
    stats.receive(3, 480, 0.060)  # transit 0: |D| = 40, J = 2.5 + (40 - 2.5) / 16
    assert stats.jitter == pytest.approx(4.84375)
    stats.receive(4, 640, 0.080)  # transit 0: D = 0, J = 4.84375 * 15 / 16
    assert stats.jitter == pytest.approx(4.541015625)
    assert stats.report_block(now=0.1).jitter == 4


def test_jitter_ignores_a_timestamp_wrap() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    start = (1 << 32) - 320
    for index in range(6):
        stats.receive(index, (start + index * 160) % (1 << 32), index * 0.02)
    assert stats.jitter == pytest.approx(0, abs=1e-6)


def test_lsr_and_dlsr_come_from_the_last_sender_report() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [1, 2])
    assert stats.report_block(now=5.0) == ReportBlock(SSRC, 0, 0, 2, 0, 0, 0)
    stats.receive_sender_report(0xE1A2B3C480000000, arrival=10.0)
    block = stats.report_block(now=10.5)
    assert block.last_sr == 0xB3C48000
    assert block.delay_since_last_sr == 32768  # half a second in 1/65536 s


def test_cumulative_lost_is_clamped_to_24_bits() -> None:
    stats = ReceiverStatistics(SSRC, CLOCK_RATE)
    feed(stats, [0, 1])
    # Walk forward in steps below MAX_DROPOUT, receiving one packet of each 2999.
    seq = 1
    for _ in range(3000):
        seq += 2999
        stats.receive(seq % 65536, 0, 0.0)
    assert stats.lost > (1 << 23)
    assert stats.report_block(now=0.0).cumulative_lost == (1 << 23) - 1


def test_clock_rate_must_be_positive() -> None:
    with pytest.raises(ValueError, match="clock rate 0 must be positive"):
        ReceiverStatistics(SSRC, 0)
