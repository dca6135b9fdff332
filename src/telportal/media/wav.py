"""WAV files: read any common PCM or float layout, convert to 8 kHz mono, write incrementally.

Reading parses the RIFF chunks itself rather than using the `wave` module, which (in 3.11)
refuses WAVE_FORMAT_EXTENSIBLE, the header most tools write for 24-bit and multi-channel
audio, and 32-bit float. Accepted: integer PCM of 8 (unsigned), 16, 24 or 32 bits and IEEE
float of 32 or 64 bits, any channel count (mixed down to mono by averaging), any rate
(resampled with a windowed-sinc filter). A data chunk whose size field runs past the end of
the file, as left by a recorder that crashed between header updates or by a streaming
writer that puts 0xFFFFFFFF there, is read up to the last whole frame present.

Writing: `IncrementalWavWriter` keeps the header true at every flush, so the file is a
valid WAV the whole time it grows, and a crash loses only what was written since the last
flush (the recorder flushes every second).
"""

import math
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from telportal.media.audio import SAMPLE_RATE

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_IEEE_FLOAT = 0x0003
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
WAV_HEADER_SIZE = 44

_RIFF = struct.Struct("<4sI4s")
_CHUNK = struct.Struct("<4sI")
_FMT = struct.Struct("<HHIIHH")
_UNKNOWN_SIZE = 0xFFFFFFFF
# The resampler's filter spans this many zero crossings of the sinc on each side: enough
# for about 80 dB of stop band with the Blackman window, short enough to stay cheap.
_SINC_ZERO_CROSSINGS = 16
# Cut a little below the output Nyquist frequency so the transition band aliases nothing.
_CUTOFF = 0.94
_RESAMPLE_CHUNK = 4096

Samples = npt.NDArray[np.float64]


class WavFormatError(ValueError):
    """A file that is not a WAV this module can read; the message names the fault."""


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    """(format, channels, rate, block_align, bits) with EXTENSIBLE resolved to its subformat."""
    if len(body) < _FMT.size:
        raise WavFormatError(f"fmt chunk is {len(body)} bytes, shorter than 16")
    audio_format, channels, rate, _byte_rate, block_align, bits = _FMT.unpack_from(body)
    if audio_format == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 40:
            raise WavFormatError(f"extensible fmt chunk is {len(body)} bytes, shorter than 40")
        # The subformat GUID starts with the plain format code.
        audio_format = struct.unpack_from("<H", body, 24)[0]
    if audio_format not in (WAVE_FORMAT_PCM, WAVE_FORMAT_IEEE_FLOAT):
        raise WavFormatError(f"WAV format 0x{audio_format:04x} is not PCM or IEEE float")
    if channels < 1:
        raise WavFormatError("WAV has no channels")
    if rate < 1:
        raise WavFormatError(f"WAV sample rate {rate} is not positive")
    width = block_align // channels if channels else 0
    if block_align != channels * width or width not in (1, 2, 3, 4, 8):
        raise WavFormatError(
            f"WAV block align {block_align} does not fit {channels} channels of {bits} bits"
        )
    if audio_format == WAVE_FORMAT_IEEE_FLOAT and width not in (4, 8):
        raise WavFormatError(f"float WAV samples are {8 * width} bits, expected 32 or 64")
    if audio_format == WAVE_FORMAT_PCM and width == 8:
        raise WavFormatError("64-bit integer WAV samples are not supported")
    return audio_format, channels, rate, block_align, bits


def _samples(data: bytes, audio_format: int, width: int) -> Samples:
    """Samples as floats in [-1, 1), channels still interleaved."""
    if audio_format == WAVE_FORMAT_IEEE_FLOAT:
        dtype = "<f4" if width == 4 else "<f8"
        return np.frombuffer(data, dtype=dtype).astype(np.float64)
    if width == 1:
        # 8-bit WAV is unsigned with 128 as silence.
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    if width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        values = np.where(values & 0x800000, values - (1 << 24), values)
        return values.astype(np.float64) / float(1 << 23)
    return np.frombuffer(data, dtype="<i4").astype(np.float64) / float(1 << 31)


def parse_wav(data: bytes) -> tuple[int, Samples]:
    """(sample rate, mono samples in [-1, 1)) of a WAV file's bytes."""
    if len(data) < _RIFF.size:
        raise WavFormatError(f"file is {len(data)} bytes, too short for a RIFF header")
    riff, _size, wave = _RIFF.unpack_from(data)
    if riff != b"RIFF" or wave != b"WAVE":
        raise WavFormatError("file does not start with a RIFF WAVE header")
    offset = _RIFF.size
    fmt: tuple[int, int, int, int, int] | None = None
    while offset + _CHUNK.size <= len(data):
        chunk_id, size = _CHUNK.unpack_from(data, offset)
        offset += _CHUNK.size
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[offset : offset + size])
        elif chunk_id == b"data":
            if fmt is None:
                raise WavFormatError("data chunk comes before the fmt chunk")
            audio_format, channels, rate, block_align, _bits = fmt
            end = len(data) if size == _UNKNOWN_SIZE else min(len(data), offset + size)
            end -= (end - offset) % block_align
            interleaved = _samples(data[offset:end], audio_format, block_align // channels)
            mono = interleaved.reshape(-1, channels).mean(axis=1)
            return rate, mono
        # Chunks are word aligned: an odd size is followed by one pad byte.
        offset += size + (size & 1)
    raise WavFormatError("no data chunk" if fmt else "no fmt chunk")


def _blackman(x: Samples) -> Samples:
    """The Blackman window on [-1, 1], zero outside."""
    window = 0.42 + 0.5 * np.cos(np.pi * x) + 0.08 * np.cos(2 * np.pi * x)
    return np.where(np.abs(x) <= 1.0, window, 0.0)


def resample(samples: Samples, from_rate: int, to_rate: int = SAMPLE_RATE) -> Samples:
    """Band-limited resampling by a rational factor (polyphase windowed sinc).

    Output sample n sits at input time n * from_rate / to_rate. With the ratio reduced to
    up/down, the fractional part of that time takes only `up` values, so the filter is
    precomputed as `up` phases and each output is one dot product.
    """
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()
    common = math.gcd(from_rate, to_rate)
    up, down = to_rate // common, from_rate // common
    # Cutoff relative to the input's Nyquist frequency: only downsampling needs to cut.
    cutoff = min(1.0, to_rate / from_rate) * _CUTOFF
    half = math.ceil(_SINC_ZERO_CROSSINGS / cutoff)
    offsets = np.arange(-half + 1, half + 1, dtype=np.float64)
    phases = np.arange(up, dtype=np.float64)[:, None] / up
    distance = offsets[None, :] - phases
    bank = cutoff * np.sinc(cutoff * distance) * _blackman(distance / half)
    bank /= bank.sum(axis=1, keepdims=True)  # unity gain at DC for every phase
    padded = np.concatenate([np.zeros(half), samples, np.zeros(half + 1)])
    count = (samples.size * up + down - 1) // down
    out = np.empty(count)
    taps = np.arange(-half + 1, half + 1)
    for start in range(0, count, _RESAMPLE_CHUNK):
        n = np.arange(start, min(count, start + _RESAMPLE_CHUNK))
        position = n * down
        base, phase = position // up, position % up
        windows = padded[(base + half)[:, None] + taps[None, :]]
        out[start : start + n.size] = np.einsum("ij,ij->i", windows, bank[phase])
    return out


def to_pcm16(samples: Samples) -> bytes:
    """Floats in [-1, 1) as 16-bit little-endian PCM, clipped."""
    scaled = np.clip(np.rint(samples * 32768.0), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def wav_to_pcm8k(data: bytes) -> bytes:
    """A WAV file's bytes as 8 kHz mono 16-bit PCM."""
    rate, mono = parse_wav(data)
    return to_pcm16(resample(mono, rate, SAMPLE_RATE))


def wav_header(channels: int, sample_rate: int, data_size: int, sample_width: int = 2) -> bytes:
    """The canonical 44-byte header of an integer PCM WAV."""
    block_align = channels * sample_width
    return (
        _RIFF.pack(b"RIFF", 36 + data_size, b"WAVE")
        + _CHUNK.pack(b"fmt ", 16)
        + _FMT.pack(
            WAVE_FORMAT_PCM,
            channels,
            sample_rate,
            sample_rate * block_align,
            block_align,
            8 * sample_width,
        )
        + _CHUNK.pack(b"data", data_size)
    )


def write_wav(path: Path, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    """Write 16-bit PCM as a WAV file in one go."""
    with path.open("wb") as file:
        file.write(wav_header(channels, sample_rate, len(pcm)))
        file.write(pcm)


class IncrementalWavWriter:
    """A 16-bit PCM WAV written as it grows; the header is patched at every `flush`.

    Data is kept in memory between flushes, so the caller decides how much a crash may
    lose (the recorder flushes every second) and the file sees one write per flush.
    """

    def __init__(self, path: Path, channels: int, sample_rate: int = SAMPLE_RATE) -> None:
        if channels < 1:
            raise ValueError(f"{channels} channels: a WAV needs at least one")
        self.path = path
        self.channels = channels
        self.sample_rate = sample_rate
        self._file: BinaryIO | None = path.open("wb")
        self._pending = bytearray()
        self._data_size = 0
        self._file.write(wav_header(channels, sample_rate, 0))
        self._file.flush()

    @property
    def closed(self) -> bool:
        return self._file is None

    @property
    def frames_written(self) -> int:
        """Sample frames handed to `write`, flushed or not."""
        return (self._data_size + len(self._pending)) // (2 * self.channels)

    def write(self, pcm: bytes) -> None:
        if self._file is None:
            raise ValueError(f"recording {self.path} is closed")
        self._pending += pcm

    def flush(self) -> None:
        """Append the pending data and make the header describe everything in the file."""
        file = self._file
        if file is None:
            return
        if self._pending:
            file.seek(WAV_HEADER_SIZE + self._data_size)
            file.write(self._pending)
            self._data_size += len(self._pending)
            self._pending.clear()
        # RIFF size at offset 4, data size at offset 40: the two fields that grow.
        file.seek(4)
        file.write(struct.pack("<I", 36 + self._data_size))
        file.seek(40)
        file.write(struct.pack("<I", self._data_size))
        file.flush()

    def close(self) -> None:
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None
