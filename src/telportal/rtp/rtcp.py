"""RTCP packets (RFC 3550 section 6): SR, RR, SDES and BYE, alone or compound.

Every RTCP packet starts with the same 4-byte header:

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |V=2|P|    RC   |      PT       |             length            |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

`length` is the packet size in 32-bit words minus one, which is how a compound packet is
split. Validation follows appendix A.2 except that the first packet need not be an SR or
RR: reduced-size RTCP (RFC 5506) sends feedback alone. Packet types this module does not
model (APP, RTPFB, PSFB, XR) are kept as `UnknownRtcpPacket` so a relay can forward them.
"""

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import final

from telportal.rtp.packet import RTP_VERSION, RtpParseError

RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204

SDES_END = 0
SDES_CNAME = 1
SDES_NAME = 2
SDES_EMAIL = 3
SDES_PHONE = 4
SDES_LOC = 5
SDES_TOOL = 6
SDES_NOTE = 7
SDES_PRIV = 8

RTCP_MAX_COUNT = 31
# Seconds from the NTP epoch (1900) to the Unix epoch (1970), for SR timestamps.
NTP_UNIX_EPOCH_OFFSET = 2_208_988_800

_HEADER = struct.Struct("!BBH")
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!QIII")
_REPORT_BLOCK = struct.Struct("!IIIIII")
_PADDING_BIT = 0x20
_COUNT_MASK = 0x1F
_MAX_U32 = 0xFFFFFFFF
_CUMULATIVE_LOST_MIN = -(1 << 23)
_CUMULATIVE_LOST_MAX = (1 << 23) - 1


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= _MAX_U32:
        raise ValueError(f"{name} {value} is out of range 0-4294967295")


def _check_count(name: str, count: int) -> None:
    if count > RTCP_MAX_COUNT:
        raise ValueError(f"{count} {name} given, at most 31 fit the count field")


@dataclass(frozen=True, slots=True)
class ReportBlock:
    """One reception report (section 6.4.1). `fraction_lost` is a fixed-point value / 256."""

    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    extended_highest_sequence: int
    jitter: int
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"fraction lost {self.fraction_lost} is out of range 0-255")
        if not _CUMULATIVE_LOST_MIN <= self.cumulative_lost <= _CUMULATIVE_LOST_MAX:
            raise ValueError(
                f"cumulative lost {self.cumulative_lost} does not fit a signed 24-bit field"
            )
        _check_u32("extended highest sequence", self.extended_highest_sequence)
        _check_u32("jitter", self.jitter)
        _check_u32("LSR", self.last_sr)
        _check_u32("DLSR", self.delay_since_last_sr)


@dataclass(frozen=True, slots=True)
class SenderReport:
    """SR (section 6.4.1); `ntp_timestamp` is the full 64-bit NTP time."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        if not 0 <= self.ntp_timestamp < 1 << 64:
            raise ValueError(f"NTP timestamp {self.ntp_timestamp} does not fit 64 bits")
        _check_u32("RTP timestamp", self.rtp_timestamp)
        _check_u32("packet count", self.packet_count)
        _check_u32("octet count", self.octet_count)
        _check_count("report blocks", len(self.reports))
        if len(self.extension) % 4:
            raise ValueError(f"extension is {len(self.extension)} bytes, not a multiple of 4")


@dataclass(frozen=True, slots=True)
class ReceiverReport:
    """RR (section 6.4.2)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(
        self, ssrc: int, reports: tuple[ReportBlock, ...] = (), extension: bytes = b""
    ) -> None:
        object.__setattr__(self, "ssrc", ssrc)
        object.__setattr__(self, "reports", reports)
        object.__setattr__(self, "extension", extension)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        _check_count("report blocks", len(self.reports))
        if len(self.extension) % 4:
            raise ValueError(f"extension is {len(self.extension)} bytes, not a multiple of 4")


@final
@dataclass(frozen=True, slots=True)
class SdesChunk:
    """The items describing one source; items are (type, raw value) in wire order."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, ssrc: int, items: tuple[tuple[int, bytes], ...] = ()) -> None:
        object.__setattr__(self, "ssrc", ssrc)
        object.__setattr__(self, "items", items)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_u32("SSRC", self.ssrc)
        for item_type, value in self.items:
            if not SDES_CNAME <= item_type <= 0xFF:
                raise ValueError(f"SDES item type {item_type} is out of range 1-255")
            if len(value) > 0xFF:
                raise ValueError(f"SDES item is {len(value)} bytes, at most 255 fit")

    @classmethod
    def with_cname(cls, ssrc: int, cname: str) -> "SdesChunk":
        return SdesChunk(ssrc, ((SDES_CNAME, cname.encode()),))

    @property
    def cname(self) -> str | None:
        for item_type, value in self.items:
            if item_type == SDES_CNAME:
                return value.decode(errors="replace")
        return None


@dataclass(frozen=True, slots=True)
class SourceDescription:
    """SDES (section 6.5)."""

    chunks: tuple[SdesChunk, ...] = ()

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, chunks: tuple[SdesChunk, ...] = ()) -> None:
        object.__setattr__(self, "chunks", chunks)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_count("SDES chunks", len(self.chunks))


@dataclass(frozen=True, slots=True)
class Bye:
    """BYE (section 6.6)."""

    sources: tuple[int, ...]
    reason: str | None = None

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted). The fields above and the parameters here must agree.
    def __init__(self, sources: tuple[int, ...], reason: str | None = None) -> None:
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "reason", reason)
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_count("BYE sources", len(self.sources))
        for ssrc in self.sources:
            _check_u32("SSRC", ssrc)
        if self.reason is not None and len(self.reason.encode()) > 0xFF:
            raise ValueError("BYE reason is longer than 255 bytes")


@dataclass(frozen=True, slots=True)
class UnknownRtcpPacket:
    """A packet type not modelled here; `count` is the 5-bit field after the P bit."""

    packet_type: int
    count: int
    body: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.packet_type <= 0xFF:
            raise ValueError(f"packet type {self.packet_type} is out of range 0-255")
        if not 0 <= self.count <= RTCP_MAX_COUNT:
            raise ValueError(f"count {self.count} is out of range 0-31")
        if len(self.body) % 4:
            raise ValueError(f"body is {len(self.body)} bytes, not a multiple of 4")


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcpPacket


def ntp_from_unix(seconds: float) -> int:
    """The 64-bit NTP timestamp for a Unix time, as carried in an SR."""
    return round((seconds + NTP_UNIX_EPOCH_OFFSET) * (1 << 32)) & ((1 << 64) - 1)


def ntp_middle_32(ntp_timestamp: int) -> int:
    """The middle 32 bits of an NTP timestamp: the LSR field of a report block."""
    return (ntp_timestamp >> 16) & _MAX_U32


def is_rtcp(data: bytes) -> bool:
    """Whether a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761 4)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def parse_rtcp(data: bytes) -> list[RtcpPacket]:
    """Split and parse a compound RTCP packet."""
    if not data:
        raise RtpParseError("RTCP packet is empty")
    packets: list[RtcpPacket] = []
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < _HEADER.size:
            raise RtpParseError(
                f"RTCP packet truncated: {size - offset} bytes left at offset {offset}, "
                "a header needs 4"
            )
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTCP version {version} is not supported, expected 2")
        end = offset + 4 * (words + 1)
        if end > size:
            raise RtpParseError(
                f"RTCP packet truncated: length field says {4 * (words + 1)} bytes "
                f"at offset {offset}, {size - offset} present"
            )
        body_end = end
        if first & _PADDING_BIT:
            # Appendix A.2: only the last packet of a compound may be padded.
            if end != size:
                raise RtpParseError(
                    f"RTCP padding on the packet at offset {offset}, which is not the last"
                )
            padding = data[end - 1]
            if padding == 0 or padding > end - offset - 4:
                raise RtpParseError(f"RTCP padding count {padding} is invalid")
            body_end = end - padding
        body = bytes(data[offset + 4 : body_end])
        packets.append(_parse_one(packet_type, first & _COUNT_MASK, body))
        offset = end
    return packets


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == RTCP_SR:
        return _parse_sender_report(count, body)
    if packet_type == RTCP_RR:
        return _parse_receiver_report(count, body)
    if packet_type == RTCP_SDES:
        return _parse_sdes(count, body)
    if packet_type == RTCP_BYE:
        return _parse_bye(count, body)
    return UnknownRtcpPacket(packet_type, count, body + bytes(-len(body) % 4))


def _report_blocks(count: int, body: bytes, offset: int, kind: str) -> tuple[ReportBlock, ...]:
    need = offset + count * _REPORT_BLOCK.size
    if len(body) < need:
        raise RtpParseError(
            f"RTCP {kind} truncated: {count} report blocks need {need + 4} bytes, "
            f"got {len(body) + 4}"
        )
    if (len(body) - need) % 4:
        # Padding that is not a whole number of words leaves the extension ragged.
        raise RtpParseError(
            f"RTCP {kind} profile extension is {len(body) - need} bytes, not whole words"
        )
    blocks: list[ReportBlock] = []
    for ssrc, lost_word, highest, jitter, lsr, dlsr in _REPORT_BLOCK.iter_unpack(body[offset:need]):
        cumulative = lost_word & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        blocks.append(ReportBlock(ssrc, lost_word >> 24, cumulative, highest, jitter, lsr, dlsr))
    return tuple(blocks)


def _parse_sender_report(count: int, body: bytes) -> SenderReport:
    fixed = _SSRC.size + _SENDER_INFO.size
    if len(body) < fixed:
        raise RtpParseError(f"RTCP SR is {len(body) + 4} bytes, shorter than the 28-byte minimum")
    (ssrc,) = _SSRC.unpack_from(body)
    ntp, rtp_timestamp, packet_count, octet_count = _SENDER_INFO.unpack_from(body, _SSRC.size)
    reports = _report_blocks(count, body, fixed, "SR")
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_timestamp,
        packet_count=packet_count,
        octet_count=octet_count,
        reports=reports,
        extension=body[fixed + count * _REPORT_BLOCK.size :],
    )


def _parse_receiver_report(count: int, body: bytes) -> ReceiverReport:
    if len(body) < _SSRC.size:
        raise RtpParseError(f"RTCP RR is {len(body) + 4} bytes, shorter than the 8-byte minimum")
    (ssrc,) = _SSRC.unpack_from(body)
    reports = _report_blocks(count, body, _SSRC.size, "RR")
    return ReceiverReport(
        ssrc=ssrc,
        reports=reports,
        extension=body[_SSRC.size + count * _REPORT_BLOCK.size :],
    )


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks: list[SdesChunk] = []
    offset = 0
    for _ in range(count):
        if len(body) - offset < _SSRC.size:
            raise RtpParseError(f"RTCP SDES truncated: chunk {len(chunks) + 1} has no SSRC")
        ssrc = _SSRC.unpack_from(body, offset)[0]
        offset += _SSRC.size
        items: list[tuple[int, bytes]] = []
        while True:
            if offset >= len(body):
                raise RtpParseError(f"RTCP SDES truncated: chunk {len(chunks) + 1} has no end item")
            item_type = body[offset]
            if item_type == SDES_END:
                # The null item plus padding brings the chunk to a 32-bit boundary.
                offset = (offset + 4) & ~3
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtpParseError(
                    f"RTCP SDES truncated: item type {item_type} runs past the packet"
                )
            length = body[offset + 1]
            items.append((item_type, body[offset + 2 : offset + 2 + length]))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc, tuple(items)))
    return SourceDescription(tuple(chunks))


def _parse_bye(count: int, body: bytes) -> Bye:
    need = count * _SSRC.size
    if len(body) < need:
        raise RtpParseError(
            f"RTCP BYE truncated: {count} sources need {need + 4} bytes, got {len(body) + 4}"
        )
    sources = struct.unpack_from(f"!{count}I", body)
    reason = None
    if len(body) > need:
        length = body[need]
        if need + 1 + length > len(body):
            raise RtpParseError(
                f"RTCP BYE reason of {length} bytes runs past the end of the packet"
            )
        try:
            reason = body[need + 1 : need + 1 + length].decode()
        except UnicodeDecodeError as exc:
            raise RtpParseError("RTCP BYE reason is not valid UTF-8") from exc
    return Bye(sources, reason)


def serialize_rtcp(packets: Iterable[RtcpPacket]) -> bytes:
    """Serialize packets back to back into one compound packet."""
    return b"".join(_serialize_one(packet) for packet in packets)


def _with_header(count: int, packet_type: int, body: bytes) -> bytes:
    return _HEADER.pack((RTP_VERSION << 6) | count, packet_type, len(body) // 4) + body


def _pack_report_blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(
        _REPORT_BLOCK.pack(
            block.ssrc,
            (block.fraction_lost << 24) | (block.cumulative_lost & 0xFFFFFF),
            block.extended_highest_sequence,
            block.jitter,
            block.last_sr,
            block.delay_since_last_sr,
        )
        for block in reports
    )


def _serialize_one(packet: RtcpPacket) -> bytes:
    if isinstance(packet, SenderReport):
        body = (
            _SSRC.pack(packet.ssrc)
            + _SENDER_INFO.pack(
                packet.ntp_timestamp, packet.rtp_timestamp, packet.packet_count, packet.octet_count
            )
            + _pack_report_blocks(packet.reports)
            + packet.extension
        )
        return _with_header(len(packet.reports), RTCP_SR, body)
    if isinstance(packet, ReceiverReport):
        body = _SSRC.pack(packet.ssrc) + _pack_report_blocks(packet.reports) + packet.extension
        return _with_header(len(packet.reports), RTCP_RR, body)
    if isinstance(packet, SourceDescription):
        parts = []
        for chunk in packet.chunks:
            chunk_bytes = _SSRC.pack(chunk.ssrc) + b"".join(
                bytes((item_type, len(value))) + value for item_type, value in chunk.items
            )
            # At least one null octet ends the item list; more pad to a 32-bit boundary.
            parts.append(chunk_bytes + bytes(4 - len(chunk_bytes) % 4))
        return _with_header(len(packet.chunks), RTCP_SDES, b"".join(parts))
    if isinstance(packet, Bye):
        body = b"".join(_SSRC.pack(ssrc) for ssrc in packet.sources)
        if packet.reason is not None:
            reason = packet.reason.encode()
            body += bytes((len(reason),)) + reason
            body += bytes(-len(body) % 4)
        return _with_header(len(packet.sources), RTCP_BYE, body)
    return _with_header(packet.count, packet.packet_type, packet.body)
