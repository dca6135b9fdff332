"""RTP data packets (RFC 3550 section 5.1).

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                           timestamp                           |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |           synchronization source (SSRC) identifier            |
   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
   |            contributing source (CSRC) identifiers             |
   |                             ....                              |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

The header extension (X bit, section 5.3.1) is kept as opaque bytes so that a relay can
forward what it does not understand. Padding is kept as a count only: its content carries
no meaning, and serializing writes zeros followed by the count octet.
"""

import struct
from dataclasses import dataclass
from typing import final

RTP_VERSION = 2
RTP_HEADER_SIZE = 12
RTP_MAX_CSRC_COUNT = 15
RTP_MAX_PAYLOAD_TYPE = 127
RTP_SEQ_MOD = 1 << 16
RTP_TIMESTAMP_MOD = 1 << 32

_FIXED_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")
_PADDING_BIT = 0x20
_EXTENSION_BIT = 0x10
_CSRC_COUNT_MASK = 0x0F
_MARKER_BIT = 0x80
_PAYLOAD_TYPE_MASK = 0x7F
_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFFFFFF


class RtpParseError(ValueError):
    """Bytes that are not a valid RTP or RTCP packet; the message names the first fault."""


@dataclass(frozen=True, slots=True)
class RtpHeaderExtension:
    """The header extension of RFC 3550 section 5.3.1; `data` excludes the 4-byte header."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= _MAX_U16:
            raise ValueError(f"extension profile {self.profile} is out of range 0-65535")
        # The length field counts 32-bit words, so only whole words can be represented.
        if len(self.data) % 4:
            raise ValueError(f"extension data is {len(self.data)} bytes, not a multiple of 4")
        if len(self.data) // 4 > _MAX_U16:
            raise ValueError(f"extension data is {len(self.data)} bytes, more than 65535 words")


@final
@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. `padding` counts the padding octets including the count octet."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpHeaderExtension | None = None
    padding: int = 0

    # Written out, not generated: see decision 0021 (a compiled dataclass's own __init__
    # runs interpreted, and media makes one a packet). The fields above and the
    # parameters here must agree.
    def __init__(
        self,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        ssrc: int,
        payload: bytes = b"",
        marker: bool = False,
        csrcs: tuple[int, ...] = (),
        extension: RtpHeaderExtension | None = None,
        padding: int = 0,
    ) -> None:
        object.__setattr__(self, "payload_type", payload_type)
        object.__setattr__(self, "sequence_number", sequence_number)
        object.__setattr__(self, "timestamp", timestamp)
        object.__setattr__(self, "ssrc", ssrc)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "marker", marker)
        object.__setattr__(self, "csrcs", csrcs)
        object.__setattr__(self, "extension", extension)
        object.__setattr__(self, "padding", padding)
        self.__post_init__()

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= RTP_MAX_PAYLOAD_TYPE:
            raise ValueError(f"payload type {self.payload_type} is out of range 0-127")
        if not 0 <= self.sequence_number <= _MAX_U16:
            raise ValueError(f"sequence number {self.sequence_number} is out of range 0-65535")
        if not 0 <= self.timestamp <= _MAX_U32:
            raise ValueError(f"timestamp {self.timestamp} is out of range 0-4294967295")
        if not 0 <= self.ssrc <= _MAX_U32:
            raise ValueError(f"SSRC {self.ssrc} is out of range 0-4294967295")
        if len(self.csrcs) > RTP_MAX_CSRC_COUNT:
            raise ValueError(f"{len(self.csrcs)} CSRCs given, at most 15 fit the CC field")
        for csrc in self.csrcs:
            if not 0 <= csrc <= _MAX_U32:
                raise ValueError(f"CSRC {csrc} is out of range 0-4294967295")
        if not 0 <= self.padding <= 0xFF:
            raise ValueError(f"padding {self.padding} is out of range 0-255")

    @property
    def header_size(self) -> int:
        size = RTP_HEADER_SIZE + 4 * len(self.csrcs)
        if self.extension is not None:
            size += 4 + len(self.extension.data)
        return size

    @classmethod
    def parse(cls, data: bytes) -> "RtpPacket":
        size = len(data)
        if size < RTP_HEADER_SIZE:
            raise RtpParseError(
                f"RTP packet is {size} bytes, shorter than the {RTP_HEADER_SIZE}-byte fixed header"
            )
        first, second, sequence_number, timestamp, ssrc = _FIXED_HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version {version} is not supported, expected 2")
        offset = RTP_HEADER_SIZE
        csrc_count = first & _CSRC_COUNT_MASK
        csrcs: tuple[int, ...] = ()
        if csrc_count:
            end = offset + 4 * csrc_count
            if end > size:
                raise RtpParseError(
                    f"RTP packet truncated: {csrc_count} CSRCs need {end} bytes, got {size}"
                )
            csrcs = struct.unpack_from(f"!{csrc_count}I", data, offset)
            offset = end
        extension = None
        if first & _EXTENSION_BIT:
            if offset + 4 > size:
                raise RtpParseError(
                    f"RTP packet truncated: extension header needs {offset + 4} bytes, got {size}"
                )
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            end = offset + 4 + 4 * words
            if end > size:
                raise RtpParseError(
                    f"RTP packet truncated: extension of {words} words needs {end} bytes, "
                    f"got {size}"
                )
            extension = RtpHeaderExtension(profile, bytes(data[offset + 4 : end]))
            offset = end
        padding = 0
        end = size
        if first & _PADDING_BIT:
            padding = data[-1]
            if padding == 0:
                raise RtpParseError("RTP padding count is 0, it must count at least itself")
            if padding > size - offset:
                raise RtpParseError(
                    f"RTP padding count {padding} exceeds the {size - offset} bytes "
                    "after the header"
                )
            end = size - padding
        return RtpPacket(
            payload_type=second & _PAYLOAD_TYPE_MASK,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & _MARKER_BIT),
            csrcs=csrcs,
            extension=extension,
            padding=padding,
        )

    def serialize(self) -> bytes:
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            first |= _PADDING_BIT
        if self.extension is not None:
            first |= _EXTENSION_BIT
        second = self.payload_type | (_MARKER_BIT if self.marker else 0)
        parts = [_FIXED_HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(struct.pack(f"!{len(self.csrcs)}I", *self.csrcs))
        if self.extension is not None:
            parts.append(
                _EXTENSION_HEADER.pack(self.extension.profile, len(self.extension.data) // 4)
            )
            parts.append(self.extension.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)
