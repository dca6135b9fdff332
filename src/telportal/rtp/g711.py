"""G.711 PCMU (u-law) and PCMA (A-law) with 16-bit signed little-endian linear PCM.

The quantizers are the classic Sun reference ones (also CPython's audioop, sox and most
PBXs): u-law works on the sample shifted right by 2 (14 bits), A-law by 3 (13 bits), and
decoding returns the middle of each quantization interval, so 0x00 decodes to -32124,
0x80 to 32124, and A-law 0xD5/0x55 to +8/-8.

Everything is a table built once at import, because per-sample Python arithmetic is far too
slow for a media engine:
- decoding splits each code's 16-bit value into a low-byte and a high-byte table, so a
  frame decodes with two `bytes.translate` calls (C speed) interleaved into one buffer;
- encoding looks each unsigned 16-bit sample up in a 65536-entry table;
- transcoding between the two laws is a single `bytes.translate`: each code is decoded
  and re-encoded with the other law, which picks the level whose interval holds it.
"""

import operator
import sys
from collections.abc import Callable

_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159  # the largest 14-bit magnitude u-law represents
_ULAW_SEGMENT_ENDS = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)
_ALAW_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
_ALAW_EVEN_BITS = 0x55  # A-law inverts every even bit on the line
_SIGN_BIT = 0x80
_QUANT_MASK = 0x0F
_SEGMENT_SHIFT = 4
_SEGMENT_MASK = 0x70


def _segment(value: int, ends: tuple[int, ...]) -> int:
    for index, end in enumerate(ends):
        if value <= end:
            return index
    return len(ends)


def _ulaw_from_14bit(sample: int) -> int:
    if sample < 0:
        magnitude, mask = -sample, 0x7F
    else:
        magnitude, mask = sample, 0xFF
    magnitude = min(magnitude, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    segment = _segment(magnitude, _ULAW_SEGMENT_ENDS)
    if segment >= len(_ULAW_SEGMENT_ENDS):
        return 0x7F ^ mask
    code = (segment << _SEGMENT_SHIFT) | ((magnitude >> (segment + 1)) & _QUANT_MASK)
    return code ^ mask


def _alaw_from_13bit(sample: int) -> int:
    if sample >= 0:
        magnitude, mask = sample, _ALAW_EVEN_BITS | _SIGN_BIT
    else:
        # One's complement keeps the two halves symmetric: -1 maps like 0.
        magnitude, mask = -sample - 1, _ALAW_EVEN_BITS
    segment = _segment(magnitude, _ALAW_SEGMENT_ENDS)
    if segment >= len(_ALAW_SEGMENT_ENDS):
        return 0x7F ^ mask
    shift = 1 if segment < 2 else segment
    code = (segment << _SEGMENT_SHIFT) | ((magnitude >> shift) & _QUANT_MASK)
    return code ^ mask


def _ulaw_level(code: int) -> int:
    code = ~code & 0xFF
    level = (((code & _QUANT_MASK) << 3) + _ULAW_BIAS) << ((code & _SEGMENT_MASK) >> 4)
    return _ULAW_BIAS - level if code & _SIGN_BIT else level - _ULAW_BIAS


def _alaw_level(code: int) -> int:
    code ^= _ALAW_EVEN_BITS
    level = (code & _QUANT_MASK) << 4
    segment = (code & _SEGMENT_MASK) >> _SEGMENT_SHIFT
    if segment == 0:
        level += 8
    elif segment == 1:
        level += 0x108
    else:
        level = (level + 0x108) << (segment - 1)
    return level if code & _SIGN_BIT else -level


ULAW_LEVELS: tuple[int, ...] = tuple(_ulaw_level(code) for code in range(256))
ALAW_LEVELS: tuple[int, ...] = tuple(_alaw_level(code) for code in range(256))


def _by_unsigned_index(bits: int, encode: Callable[[int], int]) -> bytes:
    """Codes for every `bits`-wide sample, indexed by the sample read as unsigned."""
    half = 1 << (bits - 1)
    return bytes(encode(index - (index & half) * 2) for index in range(1 << bits))


def _widen(table: bytes) -> bytes:
    """Index a narrow table by the 16-bit sample: each entry covers 65536/len samples."""
    repeat = 0x10000 // len(table)
    wide = bytearray(0x10000)
    for phase in range(repeat):
        wide[phase::repeat] = table
    if sys.byteorder == "big":
        # memoryview reads little-endian samples byte-swapped on such machines.
        return bytes(wide[((i & 0xFF) << 8) | (i >> 8)] for i in range(0x10000))
    return bytes(wide)


_ULAW_BY_14BIT = _by_unsigned_index(14, _ulaw_from_14bit)
_ALAW_BY_13BIT = _by_unsigned_index(13, _alaw_from_13bit)
_ULAW_ENCODE = _widen(_ULAW_BY_14BIT)
_ALAW_ENCODE = _widen(_ALAW_BY_13BIT)

_ULAW_DECODE_LOW = bytes(level & 0xFF for level in ULAW_LEVELS)
_ULAW_DECODE_HIGH = bytes((level >> 8) & 0xFF for level in ULAW_LEVELS)
_ALAW_DECODE_LOW = bytes(level & 0xFF for level in ALAW_LEVELS)
_ALAW_DECODE_HIGH = bytes((level >> 8) & 0xFF for level in ALAW_LEVELS)

ULAW_TO_ALAW = bytes(_alaw_from_13bit(level >> 3) for level in ULAW_LEVELS)
ALAW_TO_ULAW = bytes(_ulaw_from_14bit(level >> 2) for level in ALAW_LEVELS)


def linear_to_ulaw(sample: int) -> int:
    """The u-law code of one signed 16-bit sample."""
    return _ULAW_BY_14BIT[(sample >> 2) & 0x3FFF]


def linear_to_alaw(sample: int) -> int:
    """The A-law code of one signed 16-bit sample."""
    return _ALAW_BY_13BIT[(sample >> 3) & 0x1FFF]


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % 2:
        raise ValueError(f"linear PCM has an odd length of {len(pcm)} bytes")


def _encode(pcm: bytes, table: bytes) -> bytes:
    _check_pcm(pcm)
    samples = memoryview(pcm).cast("H")
    count = len(samples)
    if count > 1:
        # itemgetter does the whole lookup in C; it returns a bare item for one index.
        return bytes(operator.itemgetter(*samples)(table))
    return bytes(table[sample] for sample in samples)


def _decode(data: bytes, low: bytes, high: bytes) -> bytes:
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(low)
    out[1::2] = data.translate(high)
    return bytes(out)


def pcmu_encode(pcm: bytes) -> bytes:
    """u-law codes for 16-bit signed little-endian PCM."""
    return _encode(pcm, _ULAW_ENCODE)


def pcma_encode(pcm: bytes) -> bytes:
    """A-law codes for 16-bit signed little-endian PCM."""
    return _encode(pcm, _ALAW_ENCODE)


def pcmu_decode(data: bytes) -> bytes:
    """16-bit signed little-endian PCM for u-law codes."""
    return _decode(data, _ULAW_DECODE_LOW, _ULAW_DECODE_HIGH)


def pcma_decode(data: bytes) -> bytes:
    """16-bit signed little-endian PCM for A-law codes."""
    return _decode(data, _ALAW_DECODE_LOW, _ALAW_DECODE_HIGH)


def pcmu_to_pcma(data: bytes) -> bytes:
    return data.translate(ULAW_TO_ALAW)


def pcma_to_pcmu(data: bytes) -> bytes:
    return data.translate(ALAW_TO_ULAW)
