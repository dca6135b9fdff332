"""WAV reading and conversion to 8 kHz: every common rate, width and channel layout."""

import io
import struct
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from telportal.media.wav import (
    IncrementalWavWriter,
    WavFormatError,
    parse_wav,
    resample,
    wav_to_pcm8k,
    write_wav,
)
from tests.unit.media.support import goertzel_level, rms, sine

RATES = [8000, 16000, 22050, 44100, 48000]
WIDTHS = [1, 2, 3, 4]
AMPLITUDE = 0.5  # of full scale


def encode_samples(samples: npt.NDArray[np.float64], width: int) -> bytes:
    """Interleaved floats in [-1, 1) as little-endian integer PCM of `width` bytes."""
    if width == 1:
        return np.clip(np.rint(samples * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    if width == 2:
        return np.rint(samples * 32767).astype("<i2").tobytes()
    if width == 3:
        values = np.rint(samples * (2**23 - 1)).astype("<i4")
        return np.frombuffer(values.tobytes(), dtype=np.uint8).reshape(-1, 4)[:, :3].tobytes()
    return np.rint(samples * (2**31 - 1)).astype("<i4").tobytes()


def wav_bytes(channels: list[npt.NDArray[np.float64]], rate: int, width: int) -> bytes:
    """A WAV written by the standard `wave` module."""
    interleaved = np.stack(channels, axis=1).reshape(-1)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(len(channels))
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(encode_samples(interleaved, width))
    return buffer.getvalue()


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("channels", [1, 2])
def test_each_rate_width_and_layout_converts_to_8k(rate: int, width: int, channels: int) -> None:
    seconds = 0.5
    tone = sine(1000, seconds, AMPLITUDE, rate)
    data = wav_bytes([tone] * channels, rate, width)
    pcm = wav_to_pcm8k(data)
    assert abs(len(pcm) // 2 - round(seconds * 8000)) <= 1
    # Skip the filter's edges; the 1 kHz tone keeps its level through resampling.
    middle = pcm[800:-800]
    level = goertzel_level(middle, 1000) / 32768
    assert level == pytest.approx(AMPLITUDE, rel=0.03)
    # Nothing much at other frequencies: the conversion adds no distortion.
    assert goertzel_level(middle, 2500) / 32768 < 0.01


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_content_above_4khz_is_filtered_not_aliased(rate: int) -> None:
    # 5 kHz would fold to 3 kHz at 8 kHz without the anti-alias filter.
    data = wav_bytes([sine(5000, 0.5, AMPLITUDE, rate)], rate, 2)
    pcm = wav_to_pcm8k(data)[800:-800]
    assert goertzel_level(pcm, 3000) / 32768 < 0.002


def test_stereo_is_mixed_down_by_averaging() -> None:
    left = sine(500, 0.3, 0.4, 16000)
    right = sine(1500, 0.3, 0.4, 16000)
    pcm = wav_to_pcm8k(wav_bytes([left, right], 16000, 2))[800:-800]
    assert goertzel_level(pcm, 500) / 32768 == pytest.approx(0.2, rel=0.05)
    assert goertzel_level(pcm, 1500) / 32768 == pytest.approx(0.2, rel=0.05)


def test_8bit_silence_is_zero() -> None:
    data = wav_bytes([np.zeros(800)], 8000, 1)
    assert wav_to_pcm8k(data) == bytes(1600)


def extensible_wav(samples: bytes, rate: int, channels: int, bits: int, subformat: int) -> bytes:
    block = channels * bits // 8
    guid = struct.pack("<H", subformat) + bytes.fromhex("000000001000800000aa00389b71")
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0)
    fmt += guid
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_extensible_24bit_and_float_formats() -> None:
    tone = sine(1000, 0.3, AMPLITUDE, 48000)
    for subformat, bits, payload in [
        (1, 24, encode_samples(tone, 3)),
        (3, 32, tone.astype("<f4").tobytes()),
        (3, 64, tone.astype("<f8").tobytes()),
    ]:
        pcm = wav_to_pcm8k(extensible_wav(payload, 48000, 1, bits, subformat))
        assert goertzel_level(pcm[800:-800], 1000) / 32768 == pytest.approx(AMPLITUDE, rel=0.03)


def test_chunks_before_data_and_odd_sizes_are_skipped() -> None:
    data = wav_bytes([sine(1000, 0.1, AMPLITUDE, 8000)], 8000, 2)
    # Insert an odd-sized LIST chunk (with its pad byte) between fmt and data.
    data_at = data.index(b"data")
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"
    patched = data[:data_at] + extra + data[data_at:]
    patched = patched[:4] + struct.pack("<I", len(patched) - 8) + patched[8:]
    assert wav_to_pcm8k(patched) == wav_to_pcm8k(data)


def test_data_size_past_the_end_reads_what_is_there() -> None:
    data = wav_bytes([sine(1000, 0.1, AMPLITUDE, 8000)], 8000, 2)
    truncated = data[:-101]  # a crash mid-write, and an odd byte count too
    rate, samples = parse_wav(truncated)
    assert rate == 8000
    assert samples.size == (len(data) - 44 - 101) // 2
    streaming = data[:40] + struct.pack("<I", 0xFFFFFFFF) + data[44:]
    assert parse_wav(streaming)[1].size == 800


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"RIFX" + bytes(40), "RIFF WAVE"),
        (b"RIFF", "too short"),
        (b"RIFF" + struct.pack("<I", 4) + b"WAVE", "no fmt chunk"),
        (
            b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<IHHIIHH", 16, 0x55, 1, 8000, 8000, 1, 8),
            "not PCM or IEEE float",
        ),
        (
            b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16),
            "no data chunk",
        ),
    ],
)
def test_bad_files_are_rejected_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(WavFormatError, match=message):
        parse_wav(data)


def test_resample_identity_and_empty() -> None:
    samples = np.linspace(-0.5, 0.5, 100)
    assert np.array_equal(resample(samples, 8000, 8000), samples)
    assert resample(np.zeros(0), 44100).size == 0


def test_upsampling_from_a_low_rate() -> None:
    pcm = wav_to_pcm8k(wav_bytes([sine(1000, 0.5, AMPLITUDE, 6000)], 6000, 2))
    assert abs(len(pcm) // 2 - 4000) <= 1
    assert goertzel_level(pcm[800:-800], 1000) / 32768 == pytest.approx(AMPLITUDE, rel=0.03)


def test_write_wav_round_trips_through_wave(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    pcm = np.arange(-100, 100, dtype="<i2").tobytes()
    write_wav(path, pcm, 8000)
    with wave.open(str(path), "rb") as reader:
        assert (reader.getnchannels(), reader.getframerate(), reader.getsampwidth()) == (1, 8000, 2)
        assert reader.readframes(reader.getnframes()) == pcm


def test_incremental_writer_is_valid_at_every_flush(tmp_path: Path) -> None:
    path = tmp_path / "grow.wav"
    writer = IncrementalWavWriter(path, channels=2)
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == 0
    chunk = bytes(range(256)) * 5  # 1280 bytes = 320 stereo frames
    for flushes in range(1, 4):
        writer.write(chunk)
        writer.flush()
        with wave.open(str(path), "rb") as reader:
            assert reader.getnframes() == 320 * flushes
            assert reader.getnchannels() == 2
    writer.write(chunk)  # not flushed: not yet in the file
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == 960
    assert writer.frames_written == 1280
    writer.close()
    writer.close()
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == 1280
    assert rms(chunk) > 0
    with pytest.raises(ValueError, match="closed"):
        writer.write(chunk)
