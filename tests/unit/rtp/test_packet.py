import re

import pytest

from telportal.rtp.packet import RtpHeaderExtension, RtpPacket, RtpParseError

# PCMU, sequence 1, timestamp 160, SSRC 0x12345678, four bytes of u-law silence.
PCMU_PACKET = bytes.fromhex("80000001000000a012345678") + b"\xff\xff\xff\xff"
# telephone-event with the marker bit (PT 101 | 0x80 = 0xe5): digit 5, volume 10, 160 units.
DTMF_START = bytes.fromhex("80e503e800003e800a0b0c0d") + bytes.fromhex("050a00a0")
# P, X and CC=2; PCMA at sequence 65535, timestamp 2^32-1; a one-byte-header extension
# (0xBEDE, one word); two payload bytes; two padding bytes.
FULL_PACKET = bytes.fromhex("b208ffffffffffff000000010000000200000003bede000110ab0000d5d50002")


def test_parse_plain_pcmu_packet() -> None:
    packet = RtpPacket.parse(PCMU_PACKET)
    assert packet == RtpPacket(
        payload_type=0,
        sequence_number=1,
        timestamp=160,
        ssrc=0x12345678,
        payload=b"\xff\xff\xff\xff",
    )
    assert packet.header_size == 12
    assert packet.serialize() == PCMU_PACKET


def test_parse_marker_and_dynamic_payload_type() -> None:
    packet = RtpPacket.parse(DTMF_START)
    assert packet.marker
    assert packet.payload_type == 101
    assert packet.sequence_number == 1000
    assert packet.timestamp == 16000
    assert packet.ssrc == 0x0A0B0C0D
    assert packet.payload == bytes.fromhex("050a00a0")
    assert packet.serialize() == DTMF_START


def test_parse_csrcs_extension_and_padding() -> None:
    packet = RtpPacket.parse(FULL_PACKET)
    assert packet.payload_type == 8
    assert not packet.marker
    assert packet.sequence_number == 0xFFFF
    assert packet.timestamp == 0xFFFFFFFF
    assert packet.ssrc == 1
    assert packet.csrcs == (2, 3)
    assert packet.extension == RtpHeaderExtension(0xBEDE, bytes.fromhex("10ab0000"))
    assert packet.payload == b"\xd5\xd5"
    assert packet.padding == 2
    assert packet.header_size == 12 + 8 + 8
    assert packet.serialize() == FULL_PACKET


def test_empty_extension_and_empty_payload_round_trip() -> None:
    packet = RtpPacket(96, 7, 8, 9, extension=RtpHeaderExtension(0x1000))
    data = packet.serialize()
    assert data == bytes.fromhex("906000070000000800000009") + bytes.fromhex("10000000")
    assert RtpPacket.parse(data) == packet


def test_padding_only_packet() -> None:
    data = bytes.fromhex("a0000001000000020000000300000004")
    packet = RtpPacket.parse(data)
    assert packet.payload == b""
    assert packet.padding == 4
    assert packet.serialize() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x80\x00\x00", "RTP packet is 3 bytes, shorter than the 12-byte fixed header"),
        (
            bytes.fromhex("40000001000000a012345678"),
            "RTP version 1 is not supported, expected 2",
        ),
        (
            bytes.fromhex("83000001000000a01234567800000001"),
            "RTP packet truncated: 3 CSRCs need 24 bytes, got 16",
        ),
        (
            bytes.fromhex("90000001000000a012345678bede"),
            "RTP packet truncated: extension header needs 16 bytes, got 14",
        ),
        (
            bytes.fromhex("90000001000000a012345678bede000200000000"),
            "RTP packet truncated: extension of 2 words needs 24 bytes, got 20",
        ),
        (
            bytes.fromhex("a0000001000000a012345678ff00"),
            "RTP padding count is 0, it must count at least itself",
        ),
        (
            bytes.fromhex("a0000001000000a012345678ff05"),
            "RTP padding count 5 exceeds the 2 bytes after the header",
        ),
    ],
)
def test_parse_errors_name_the_fault(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as caught:
        RtpPacket.parse(data)
    assert str(caught.value) == message


def test_parse_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="RTP version 0"):
        RtpPacket.parse(bytes(12))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload_type": 128}, "payload type 128 is out of range 0-127"),
        ({"sequence_number": 65536}, "sequence number 65536 is out of range 0-65535"),
        ({"timestamp": -1}, "timestamp -1 is out of range 0-4294967295"),
        ({"ssrc": 1 << 32}, "SSRC 4294967296 is out of range 0-4294967295"),
        ({"csrcs": tuple(range(16))}, "16 CSRCs given, at most 15 fit the CC field"),
        ({"csrcs": (-1,)}, "CSRC -1 is out of range 0-4294967295"),
        ({"padding": 256}, "padding 256 is out of range 0-255"),
    ],
)
def test_construction_checks_field_ranges(fields: dict[str, object], message: str) -> None:
    values: dict[str, object] = {
        "payload_type": 0,
        "sequence_number": 0,
        "timestamp": 0,
        "ssrc": 0,
        **fields,
    }
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        RtpPacket(**values)  # type: ignore[arg-type]


def test_extension_data_must_be_whole_words() -> None:
    with pytest.raises(ValueError, match="extension data is 3 bytes, not a multiple of 4"):
        RtpHeaderExtension(0xBEDE, b"abc")


def test_fifteen_csrcs_round_trip() -> None:
    packet = RtpPacket(0, 1, 2, 3, payload=b"x", csrcs=tuple(range(100, 115)))
    data = packet.serialize()
    assert data[0] == 0x8F
    assert RtpPacket.parse(data) == packet
