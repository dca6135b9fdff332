import contextlib
import random

import pytest

from telportal.rtp.dtmf import TelephoneEvent
from telportal.rtp.packet import RtpPacket, RtpParseError
from telportal.rtp.rtcp import (
    SDES_CNAME,
    SDES_TOOL,
    Bye,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcpPacket,
    is_rtcp,
    ntp_from_unix,
    ntp_middle_32,
    parse_rtcp,
    serialize_rtcp,
)

# RR from 0x11223344 about 0x55667788: 25% lost, 5 in all, highest 0x10005 (one wrap),
# jitter 32, LSR 0xaabbccdd, DLSR one second (65536 units).
RECEIVER_REPORT = bytes.fromhex("81c900071122334455667788400000050001000500000020aabbccdd00010000")
# SDES with one chunk: CNAME "user@host", then the null item ending the chunk.
SDES_CNAME_PACKET = bytes.fromhex("81ca0004112233440109") + b"user@host" + b"\x00"
# BYE from 0x11223344 with the reason "bye".
BYE_PACKET = bytes.fromhex("81cb00021122334403") + b"bye"
# SR with no report blocks: NTP 0xe1a2b3c4.80000000, RTP 16000, 100 packets, 16000 octets.
SENDER_REPORT = bytes.fromhex("80c8000611223344e1a2b3c48000000000003e800000006400003e80")


def test_receiver_report_fields() -> None:
    (report,) = parse_rtcp(RECEIVER_REPORT)
    assert report == ReceiverReport(
        ssrc=0x11223344,
        reports=(
            ReportBlock(
                ssrc=0x55667788,
                fraction_lost=64,
                cumulative_lost=5,
                extended_highest_sequence=0x10005,
                jitter=32,
                last_sr=0xAABBCCDD,
                delay_since_last_sr=0x10000,
            ),
        ),
    )


def test_compound_rr_sdes_bye_round_trip() -> None:
    compound = RECEIVER_REPORT + SDES_CNAME_PACKET + BYE_PACKET
    packets = parse_rtcp(compound)
    assert [type(p) for p in packets] == [ReceiverReport, SourceDescription, Bye]
    sdes = packets[1]
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].ssrc == 0x11223344
    assert sdes.chunks[0].cname == "user@host"
    assert packets[2] == Bye((0x11223344,), "bye")
    assert serialize_rtcp(packets) == compound


def test_sender_report_round_trip() -> None:
    compound = SENDER_REPORT + SDES_CNAME_PACKET
    packets = parse_rtcp(compound)
    assert packets[0] == SenderReport(
        ssrc=0x11223344,
        ntp_timestamp=0xE1A2B3C480000000,
        rtp_timestamp=16000,
        packet_count=100,
        octet_count=16000,
    )
    assert serialize_rtcp(packets) == compound


def test_sender_report_with_blocks_and_extension() -> None:
    block = ReportBlock(5, 0, -1, 70000, 12, 0, 0)
    report = SenderReport(1, 2, 3, 4, 5, (block, block), b"\x01\x02\x03\x04")
    data = serialize_rtcp([report])
    assert data[:4] == bytes.fromhex("82c80013")  # 80 bytes: 20 words - 1
    assert parse_rtcp(data) == [report]


def test_negative_cumulative_lost_is_signed_24_bits() -> None:
    data = bytearray(RECEIVER_REPORT)
    data[13:16] = b"\xff\xff\xff"
    (report,) = parse_rtcp(bytes(data))
    assert isinstance(report, ReceiverReport)
    assert report.reports[0].cumulative_lost == -1
    assert serialize_rtcp([report]) == bytes(data)


def test_sdes_chunks_pad_to_word_boundaries() -> None:
    sdes = SourceDescription(
        (
            SdesChunk.with_cname(1, "a@b"),
            SdesChunk(2, ((SDES_CNAME, b"xy"), (SDES_TOOL, b"telportal"))),
        )
    )
    data = serialize_rtcp([sdes])
    # Chunk 1: 4 + 2 + 3 = 9 bytes, then 3 nulls; chunk 2: 4 + 4 + 11 = 19, then 1 null.
    assert len(data) == 4 + 12 + 20
    assert parse_rtcp(data) == [sdes]
    assert sdes.chunks[1].cname == "xy"
    assert SdesChunk(3).cname is None


def test_bye_without_reason_and_with_several_sources() -> None:
    bye = Bye((1, 2, 3))
    data = serialize_rtcp([bye])
    assert data == bytes.fromhex("83cb0003000000010000000200000003")
    assert parse_rtcp(data) == [bye]


def test_unknown_packet_types_are_kept() -> None:
    app = bytes.fromhex("81cc000211223344") + b"NAME"
    feedback = bytes.fromhex("81cd00021122334455667788")
    packets = parse_rtcp(RECEIVER_REPORT + app + feedback)
    assert packets[1] == UnknownRtcpPacket(204, 1, bytes.fromhex("11223344") + b"NAME")
    assert packets[2] == UnknownRtcpPacket(205, 1, bytes.fromhex("1122334455667788"))
    assert serialize_rtcp(packets) == RECEIVER_REPORT + app + feedback


def test_padding_on_the_last_packet_is_stripped() -> None:
    padded = bytes.fromhex("a1cb00021122334400000004")
    assert parse_rtcp(RECEIVER_REPORT + padded)[1] == Bye((0x11223344,))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTCP packet is empty"),
        (
            bytes.fromhex("81c9"),
            "RTCP packet truncated: 2 bytes left at offset 0, a header needs 4",
        ),
        (bytes.fromhex("41c9000111223344"), "RTCP version 1 is not supported, expected 2"),
        (
            bytes.fromhex("81c9000711223344"),
            "RTCP packet truncated: length field says 32 bytes at offset 0, 8 present",
        ),
        (
            bytes.fromhex("81c9000111223344"),
            "RTCP RR truncated: 1 report blocks need 32 bytes, got 8",
        ),
        (bytes.fromhex("80c8000111223344"), "RTCP SR is 8 bytes, shorter than the 28-byte minimum"),
        (
            bytes.fromhex("a1cb000111223344") + RECEIVER_REPORT,
            "RTCP padding on the packet at offset 0, which is not the last",
        ),
        (bytes.fromhex("a1cb000111223300"), "RTCP padding count 0 is invalid"),
        (
            bytes.fromhex("a0c8000711223344000000000000000000000000000000000000000000000001"),
            "RTCP SR profile extension is 3 bytes, not whole words",
        ),
        (bytes.fromhex("81ca000111223344"), "RTCP SDES truncated: chunk 1 has no end item"),
        (
            bytes.fromhex("81ca0002112233440109aaaa"),
            "RTCP SDES truncated: item type 1 runs past the packet",
        ),
        (
            bytes.fromhex("81cb00021122334409616263"),
            "RTCP BYE reason of 9 bytes runs past the end of the packet",
        ),
        (bytes.fromhex("82cb000111223344"), "RTCP BYE truncated: 2 sources need 12 bytes, got 8"),
        (bytes.fromhex("81cb00021122334402ff0000"), "RTCP BYE reason is not valid UTF-8"),
    ],
)
def test_parse_errors_name_the_fault(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        parse_rtcp(data)
    assert str(caught.value) == message


def test_report_block_ranges_are_checked() -> None:
    with pytest.raises(ValueError, match="does not fit a signed 24-bit field"):
        ReportBlock(1, 0, 1 << 23, 0, 0)
    with pytest.raises(ValueError, match="fraction lost 256 is out of range 0-255"):
        ReportBlock(1, 256, 0, 0, 0)
    with pytest.raises(ValueError, match="32 report blocks given, at most 31"):
        ReceiverReport(1, (ReportBlock(1, 0, 0, 0, 0),) * 32)


def test_ntp_helpers() -> None:
    # Half a second after 2001-01-01T00:00:00Z: 978307200 + 2208988800 = 0xBDFA4700 seconds.
    assert ntp_from_unix(978_307_200.5) == (0xBDFA4700 << 32) | 0x80000000
    assert ntp_middle_32(0xE1A2B3C480000000) == 0xB3C48000


def test_rtcp_is_told_from_rtp_on_a_shared_port() -> None:
    assert is_rtcp(RECEIVER_REPORT)
    assert is_rtcp(SENDER_REPORT)
    assert not is_rtcp(bytes.fromhex("80000001000000a012345678"))
    assert not is_rtcp(bytes.fromhex("80e503e8"))  # marker + PT 101 is 0xe5 = 229
    assert not is_rtcp(b"\x80")


def test_mangled_packets_fail_only_with_rtp_parse_error() -> None:
    """Seeded random edits of valid packets: each parses or raises RtpParseError."""
    rng = random.Random(3550)
    seeds = [RECEIVER_REPORT + SDES_CNAME_PACKET + BYE_PACKET, SENDER_REPORT, BYE_PACKET]
    for _ in range(5000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            choice = rng.random()
            if choice < 0.5:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif choice < 0.75:
                del data[rng.randrange(len(data)) + 1 :]
            else:
                data.append(rng.randrange(256))
        for parse in (parse_rtcp, RtpPacket.parse, TelephoneEvent.parse):
            with contextlib.suppress(RtpParseError):
                parse(bytes(data))
