"""Recording a leg to WAV: what the caller says and what the caller hears.

Channels: STEREO puts the caller (what the leg receives) on the left and the other side
(everything sent to the leg: the agent, prompts, the conference) on the right; MIXED sums
the two into one channel, clipped. Audio reaches the recorder whenever packets move, with
network jitter on both sides; the recorder itself runs on the scheduler, taking one frame
per channel per tick (silence when nothing came), so the file's timeline is the call's
wall time and the two channels stay aligned. Each channel buffers at most MAX_BUFFER_MS:
beyond that the oldest audio is dropped, so a burst cannot make a channel drift behind.

Durability: the file is written through IncrementalWavWriter and flushed every
`flush_every` frames (one second by default), header patched each time; a crash loses
at most that much and leaves a valid WAV. Writes are one buffered `write` per second per
recording, done on the event loop: far below what would delay other streams.

Pause, for card numbers and other sensitive moments: incoming audio is discarded while
paused. With PauseMode.SILENCE the paused time is written as silence, so offsets in the
file stay equal to offsets in the call; with PauseMode.GAP nothing is written and the
file is shorter, the summary lists where the cuts are.
"""

import enum
from dataclasses import dataclass

import numpy as np

from telportal.media.audio import FRAME_PCM_BYTES, FRAME_SAMPLES, SAMPLE_RATE, SILENT_PCM_FRAME
from telportal.media.wav import IncrementalWavWriter

MAX_BUFFER_MS = 100
FLUSH_EVERY_FRAMES = 50
_MAX_BUFFER_BYTES = MAX_BUFFER_MS * SAMPLE_RATE // 1000 * 2


class RecordingLayout(enum.StrEnum):
    STEREO = "stereo"
    MIXED = "mixed"


class PauseMode(enum.StrEnum):
    SILENCE = "silence"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause at `offset` seconds into the file, `duration` seconds of call time long."""

    offset: float
    duration: float


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    path: str
    layout: RecordingLayout
    pause_mode: PauseMode
    duration: float
    pauses: tuple[Pause, ...]


class CallRecorder:
    def __init__(
        self,
        writer: IncrementalWavWriter,
        layout: RecordingLayout = RecordingLayout.STEREO,
        pause_mode: PauseMode = PauseMode.SILENCE,
        *,
        flush_every: int = FLUSH_EVERY_FRAMES,
    ) -> None:
        expected = 2 if layout is RecordingLayout.STEREO else 1
        if writer.channels != expected:
            raise ValueError(f"a {layout} recording needs {expected} channels")
        self.writer = writer
        self.layout = layout
        self.pause_mode = pause_mode
        self.flush_every = flush_every
        self._caller = bytearray()
        self._other = bytearray()
        self._paused_since: int | None = None  # frame count at the pause start
        self._pause_offset = 0
        self._pauses: list[Pause] = []
        self._ticks = 0
        self._frames_since_flush = 0
        self._stereo = np.empty(2 * FRAME_SAMPLES, dtype="<i2")

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    @staticmethod
    def _append(buffer: bytearray, pcm: bytes) -> None:
        buffer += pcm
        excess = len(buffer) - _MAX_BUFFER_BYTES
        if excess > 0:
            del buffer[: excess + (excess & 1)]

    def caller(self, pcm: bytes) -> None:
        """Audio the leg received (the caller speaking)."""
        if self._paused_since is None:
            self._append(self._caller, pcm)

    def other(self, pcm: bytes) -> None:
        """Audio sent to the leg (the agent, prompts, the conference)."""
        if self._paused_since is None:
            self._append(self._other, pcm)

    @staticmethod
    def _take(buffer: bytearray) -> bytes:
        if len(buffer) >= FRAME_PCM_BYTES:
            frame = bytes(buffer[:FRAME_PCM_BYTES])
            del buffer[:FRAME_PCM_BYTES]
            return frame
        frame = bytes(buffer) + bytes(FRAME_PCM_BYTES - len(buffer))
        buffer.clear()
        return frame

    def on_tick(self, frame: int, now: float) -> None:
        self._ticks += 1
        if self._paused_since is not None:
            if self.pause_mode is PauseMode.SILENCE:
                self._write(SILENT_PCM_FRAME, SILENT_PCM_FRAME)
        else:
            self._write(self._take(self._caller), self._take(self._other))
        self._frames_since_flush += 1
        if self._frames_since_flush >= self.flush_every:
            self._frames_since_flush = 0
            self.writer.flush()

    def _write(self, caller: bytes, other: bytes) -> None:
        left = np.frombuffer(caller, dtype="<i2")
        right = np.frombuffer(other, dtype="<i2")
        if self.layout is RecordingLayout.STEREO:
            stereo = self._stereo
            stereo[0::2] = left
            stereo[1::2] = right
            self.writer.write(stereo.tobytes())
        else:
            mixed = np.clip(left.astype(np.int32) + right, -32768, 32767).astype("<i2")
            self.writer.write(mixed.tobytes())

    def pause(self) -> None:
        if self._paused_since is None:
            self._paused_since = self._ticks
            self._pause_offset = self.writer.frames_written
            self._caller.clear()
            self._other.clear()

    def resume(self) -> None:
        if self._paused_since is not None:
            ticks = self._ticks - self._paused_since
            self._pauses.append(
                Pause(self._pause_offset / SAMPLE_RATE, ticks * FRAME_SAMPLES / SAMPLE_RATE)
            )
            self._paused_since = None

    def stop(self) -> RecordingSummary:
        """Close the file and describe it; the recorder must not be ticked afterwards."""
        self.resume()
        self.writer.close()
        return RecordingSummary(
            path=str(self.writer.path),
            layout=self.layout,
            pause_mode=self.pause_mode,
            duration=self.writer.frames_written / SAMPLE_RATE,
            pauses=tuple(self._pauses),
        )
