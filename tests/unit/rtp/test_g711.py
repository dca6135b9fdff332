import itertools
import math
import struct
import warnings
from types import ModuleType

import pytest

from telportal.rtp import g711
from telportal.rtp.tones import DBM0_AMPLITUDE

audioop: ModuleType | None
with warnings.catch_warnings():
    # Deprecated in 3.11, gone in 3.13: used here only as an independent oracle.
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop
    except ImportError:  # pragma: no cover - Python 3.13+
        audioop = None

ALL_SAMPLES = struct.pack("<65536h", *range(-32768, 32768))


def pcm(*samples: int) -> bytes:
    return struct.pack(f"<{len(samples)}h", *samples)


def samples(data: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(data) // 2}h", data)


@pytest.mark.parametrize(
    ("code", "level"),
    [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xFE, 8), (0x7E, -8), (0xF0, 120)],
)
def test_ulaw_known_levels(code: int, level: int) -> None:
    assert g711.ULAW_LEVELS[code] == level
    assert samples(g711.pcmu_decode(bytes([code]))) == (level,)


@pytest.mark.parametrize(
    ("code", "level"),
    [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0x80, 5504)],
)
def test_alaw_known_levels(code: int, level: int) -> None:
    assert g711.ALAW_LEVELS[code] == level
    assert samples(g711.pcma_decode(bytes([code]))) == (level,)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        # The quantizers shift arithmetically: -1 is -1 in 14 bits, one step below zero.
        (-1, 0x7E, 0x55),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
        (32124, 0x80, 0xAA),
        (1000, 0xCE, 0xFA),
        (-1000, 0x4E, 0x7A),
    ],
)
def test_known_encodings(sample: int, ulaw: int, alaw: int) -> None:
    assert g711.pcmu_encode(pcm(sample)) == bytes([ulaw])
    assert g711.pcma_encode(pcm(sample)) == bytes([alaw])
    assert g711.linear_to_ulaw(sample) == ulaw
    assert g711.linear_to_alaw(sample) == alaw


@pytest.mark.parametrize(
    ("decode", "sequence"),
    [
        (g711.pcmu_decode, bytes.fromhex("1e0b0b1e9e8b8b9e")),
        (g711.pcma_decode, bytes.fromhex("34212134b4a1a1b4")),
    ],
)
def test_digital_milliwatt_is_a_0_dbm0_sine(decode: object, sequence: bytes) -> None:
    """G.711 table 5/6: these eight codes repeated are 1 kHz at 0 dBm0."""
    assert callable(decode)
    values = samples(decode(sequence))
    assert values[0:4] == values[3::-1]
    assert values[4:] == tuple(-v for v in values[:4])
    rms = math.sqrt(sum(v * v for v in values) / len(values))
    assert 20 * math.log10(rms * math.sqrt(2) / DBM0_AMPLITUDE) == pytest.approx(0, abs=0.25)


def test_every_code_round_trips() -> None:
    codes = bytes(range(256))
    ulaw = g711.pcmu_encode(g711.pcmu_decode(codes))
    # u-law has two zeros; encoding zero gives the positive one.
    assert ulaw == codes.replace(b"\x7f", b"\xff")
    assert g711.pcma_encode(g711.pcma_decode(codes)) == codes


def test_levels_are_symmetric_and_distinct() -> None:
    for levels, mirror in ((g711.ULAW_LEVELS, 0x80), (g711.ALAW_LEVELS, 0x80)):
        assert all(levels[code] == -levels[code ^ mirror] for code in range(256))
    assert len(set(g711.ULAW_LEVELS)) == 255
    assert len(set(g711.ALAW_LEVELS)) == 256


@pytest.mark.parametrize(
    ("encode", "decode"),
    [(g711.pcmu_encode, g711.pcmu_decode), (g711.pcma_encode, g711.pcma_decode)],
)
def test_quantizing_every_sample_is_monotonic_and_close(encode: object, decode: object) -> None:
    assert callable(encode)
    assert callable(decode)
    quantized = samples(decode(encode(ALL_SAMPLES)))
    assert all(a <= b for a, b in itertools.pairwise(quantized))
    levels = sorted(set(quantized))
    # The error stays within the larger of the two steps around the chosen level.
    limits = {
        level: max(level - below, above - level)
        for below, level, above in zip(levels, levels[1:], levels[2:], strict=False)
    }
    for sample, level in zip(range(-32768, 32768), quantized, strict=True):
        if level in limits:
            assert abs(sample - level) <= limits[level]


def test_transcoding_picks_an_adjacent_level() -> None:
    for source, target, table in (
        (g711.ULAW_LEVELS, g711.ALAW_LEVELS, g711.ULAW_TO_ALAW),
        (g711.ALAW_LEVELS, g711.ULAW_LEVELS, g711.ALAW_TO_ULAW),
    ):
        for code in range(256):
            level, chosen = source[code], target[table[code]]
            low, high = sorted((level, chosen))
            assert not any(low < other < high for other in target), (code, level, chosen)


def test_transcoding_functions_match_decode_then_encode() -> None:
    codes = bytes(range(256))
    assert g711.pcmu_to_pcma(codes) == g711.pcma_encode(g711.pcmu_decode(codes))
    assert g711.pcma_to_pcmu(codes) == g711.pcmu_encode(g711.pcma_decode(codes))


def test_frame_sizes() -> None:
    assert g711.pcmu_encode(b"") == b""
    assert g711.pcma_decode(b"") == b""
    frame = pcm(*range(-800, 800, 10))
    assert len(g711.pcmu_encode(frame)) == 160
    assert len(g711.pcmu_decode(g711.pcmu_encode(frame))) == 320


def test_odd_length_pcm_is_refused() -> None:
    with pytest.raises(ValueError, match="linear PCM has an odd length of 3 bytes"):
        g711.pcmu_encode(b"\x00\x01\x02")


@pytest.mark.skipif(audioop is None, reason="audioop left the standard library in 3.13")
def test_matches_audioop_on_every_sample_and_code() -> None:
    assert audioop is not None
    codes = bytes(range(256))
    assert g711.pcmu_encode(ALL_SAMPLES) == audioop.lin2ulaw(ALL_SAMPLES, 2)
    assert g711.pcma_encode(ALL_SAMPLES) == audioop.lin2alaw(ALL_SAMPLES, 2)
    assert g711.pcmu_decode(codes) == audioop.ulaw2lin(codes, 2)
    assert g711.pcma_decode(codes) == audioop.alaw2lin(codes, 2)
