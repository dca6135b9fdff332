"""Audio ready to send: 8 kHz PCM cut into 20 ms frames, pre-encoded in both G.711 laws.

A prompt is decoded, resampled and encoded once, when first loaded; a call playing it
only hands out `bytes` objects that already exist, which is what lets one timer drive a
thousand streams. `ClipCache` keeps clips in memory (least recently used evicted past a
byte budget) and, when given a folder, on disk too, so a restart skips the conversion.

Disk cache layout: `<folder>/<key>.s16` (linear PCM), `.pcmu`, `.pcma`; the key hashes
the source's resolved path, size and modification time with CACHE_FORMAT, so an edited
file or a change of format here is a miss, never a stale hit. Files are written to a
temporary name and renamed, so a reader never sees half a file.
"""

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import final

from telportal.media.audio import FRAME_PCM_BYTES, FRAME_SAMPLES, SAMPLE_RATE, G711Law
from telportal.media.wav import wav_to_pcm8k
from telportal.rtp.tones import Tone, ToneGenerator

CACHE_FORMAT = "telportal-clip-1"
DEFAULT_MEMORY_BUDGET = 256 * 1024 * 1024
# A continuous tone is rendered for one second and repeated: whole-hertz frequencies then
# complete whole cycles, so the joins are seamless.
CONTINUOUS_TONE_SECONDS = 1


def _frames(encoded: bytes) -> tuple[bytes, ...]:
    return tuple(encoded[i : i + FRAME_SAMPLES] for i in range(0, len(encoded), FRAME_SAMPLES))


@final
@dataclass(frozen=True, eq=False, slots=True)
class EncodedClip:
    """Mono 8 kHz audio, a whole number of frames long, with its frames in each law."""

    pcm: bytes
    _frames: dict[G711Law, tuple[bytes, ...]] = field(repr=False)

    @classmethod
    def from_pcm(cls, pcm: bytes) -> "EncodedClip":
        if len(pcm) % 2:
            raise ValueError(f"linear PCM has an odd length of {len(pcm)} bytes")
        # The last frame is padded with silence: players send whole frames only.
        pcm += bytes(-len(pcm) % FRAME_PCM_BYTES)
        return EncodedClip(pcm, {law: _frames(law.encode(pcm)) for law in G711Law})

    @classmethod
    def from_encoded(cls, pcm: bytes, encoded: dict[G711Law, bytes]) -> "EncodedClip":
        return EncodedClip(pcm, {law: _frames(data) for law, data in encoded.items()})

    @classmethod
    def silence(cls, duration_ms: int) -> "EncodedClip":
        return cls.from_pcm(bytes(2 * (duration_ms * SAMPLE_RATE // 1000)))

    def frames(self, law: G711Law) -> tuple[bytes, ...]:
        return self._frames[law]

    @property
    def frame_count(self) -> int:
        return len(self.pcm) // FRAME_PCM_BYTES

    @property
    def duration(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)

    @property
    def size(self) -> int:
        """Bytes held: the PCM and one byte per sample per law."""
        return len(self.pcm) + len(self._frames) * len(self.pcm) // 2


def render_tone(tone: Tone, duration_ms: int | None = None) -> bytes:
    """A tone as PCM: `duration_ms` long, or one cadence cycle (one second if continuous)."""
    cycle_ms = sum(tone.cadence_ms) or CONTINUOUS_TONE_SECONDS * 1000
    total_ms = cycle_ms if duration_ms is None else duration_ms
    if total_ms <= 0:
        raise ValueError(f"tone duration {total_ms} ms must be positive")
    generator = ToneGenerator(tone)
    one = generator.read(min(total_ms, cycle_ms) * SAMPLE_RATE // 1000)
    if total_ms <= cycle_ms:
        return one
    if not tone.repeat:
        # A one-shot cadence is followed by silence, not by itself again.
        return one + bytes(2 * (total_ms - cycle_ms) * SAMPLE_RATE // 1000)
    whole, rest = divmod(total_ms * SAMPLE_RATE // 1000 * 2, len(one))
    return one * whole + one[:rest]


class ClipCache:
    """Loaded clips by source, in memory and optionally in a folder; thread safe.

    Loading is synchronous file and CPU work: the engine calls it from a worker thread.
    """

    def __init__(self, folder: Path | None = None, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        self.folder = folder
        self.memory_budget = memory_budget
        self._clips: OrderedDict[object, EncodedClip] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.disk_hits = 0
        self.misses = 0
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    def _get(self, key: object) -> EncodedClip | None:
        with self._lock:
            clip = self._clips.get(key)
            if clip is not None:
                self._clips.move_to_end(key)
                self.hits += 1
            return clip

    def _put(self, key: object, clip: EncodedClip) -> None:
        with self._lock:
            if key in self._clips:
                return
            self._clips[key] = clip
            self._bytes += clip.size
            # Keep at least the newest clip, however large.
            while self._bytes > self.memory_budget and len(self._clips) > 1:
                _, evicted = self._clips.popitem(last=False)
                self._bytes -= evicted.size

    def load_file(self, path: Path) -> EncodedClip:
        """The clip of a WAV file (any rate, width and channel count)."""
        resolved = path.resolve()
        status = resolved.stat()
        key = ("file", str(resolved), status.st_size, status.st_mtime_ns)
        clip = self._get(key)
        if clip is not None:
            return clip
        digest = hashlib.sha256(f"{CACHE_FORMAT}\0{key!r}".encode()).hexdigest()
        clip = self._read_disk(digest)
        if clip is None:
            self.misses += 1
            clip = EncodedClip.from_pcm(wav_to_pcm8k(resolved.read_bytes()))
            self._write_disk(digest, clip)
        else:
            self.disk_hits += 1
        self._put(key, clip)
        return clip

    def tone(self, tone: Tone, duration_ms: int | None = None) -> EncodedClip:
        key = ("tone", tone, duration_ms)
        clip = self._get(key)
        if clip is None:
            self.misses += 1
            clip = EncodedClip.from_pcm(render_tone(tone, duration_ms))
            self._put(key, clip)
        return clip

    @staticmethod
    def _paths(folder: Path, digest: str) -> dict[str, Path]:
        return {suffix: folder / f"{digest}.{suffix}" for suffix in ("s16", "pcmu", "pcma")}

    def _read_disk(self, digest: str) -> EncodedClip | None:
        if self.folder is None:
            return None
        paths = self._paths(self.folder, digest)
        try:
            pcm = paths["s16"].read_bytes()
            encoded = {
                G711Law.PCMU: paths["pcmu"].read_bytes(),
                G711Law.PCMA: paths["pcma"].read_bytes(),
            }
        except FileNotFoundError:
            return None
        samples = len(pcm) // 2
        if len(pcm) % FRAME_PCM_BYTES or any(len(data) != samples for data in encoded.values()):
            return None  # a damaged entry is rebuilt, not trusted
        return EncodedClip.from_encoded(pcm, encoded)

    def _write_disk(self, digest: str, clip: EncodedClip) -> None:
        if self.folder is None:
            return
        contents = {
            "s16": clip.pcm,
            "pcmu": b"".join(clip.frames(G711Law.PCMU)),
            "pcma": b"".join(clip.frames(G711Law.PCMA)),
        }
        # The linear file goes last: its presence is what marks an entry complete enough
        # to try, and the length check above catches any mismatch.
        paths = self._paths(self.folder, digest)
        for suffix in ("pcmu", "pcma", "s16"):
            path = paths[suffix]
            temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(contents[suffix])
            temporary.replace(path)
