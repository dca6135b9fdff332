"""Recording: a valid WAV at every moment, stereo or mixed, with pauses."""

import signal
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from telportal.media.audio import FRAME_PCM_BYTES
from telportal.media.clips import EncodedClip
from telportal.media.events import RecordingStopped
from telportal.media.recorder import CallRecorder, PauseMode, RecordingLayout
from telportal.media.wav import IncrementalWavWriter
from tests.unit.media.support import Harness, frames_of, goertzel_level, sine_pcm

CALLER_HZ = 440
AGENT_HZ = 1000


def read(path: Path) -> tuple[int, int, bytes]:
    with wave.open(str(path), "rb") as reader:
        return reader.getnchannels(), reader.getnframes(), reader.readframes(reader.getnframes())


def channel(pcm: bytes, index: int, channels: int = 2) -> bytes:
    return np.frombuffer(pcm, dtype="<i2")[index::channels].tobytes()


def feed(recorder: CallRecorder, ticks: int, start: int = 0) -> None:
    caller = frames_of(sine_pcm(CALLER_HZ, 0.02 * (start + ticks), 6000))[start:]
    agent = frames_of(sine_pcm(AGENT_HZ, 0.02 * (start + ticks), 6000))[start:]
    for index in range(ticks):
        recorder.caller(caller[index])
        recorder.other(agent[index])
        recorder.on_tick(start + index, 0.02 * (start + index))


def test_readable_while_recording(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    recorder = CallRecorder(IncrementalWavWriter(path, 2), RecordingLayout.STEREO)
    assert read(path)[:2] == (2, 0)
    feed(recorder, 150)  # three seconds: three flushes
    channels, frames, pcm = read(path)
    assert (channels, frames) == (2, 150 * 160)
    assert goertzel_level(channel(pcm, 0), CALLER_HZ) > 5000
    assert goertzel_level(channel(pcm, 0), AGENT_HZ) < 100
    assert goertzel_level(channel(pcm, 1), AGENT_HZ) > 5000
    assert goertzel_level(channel(pcm, 1), CALLER_HZ) < 100
    feed(recorder, 30, start=150)
    assert read(path)[1] == 150 * 160  # not flushed yet
    recorder.stop()
    assert read(path)[1] == 180 * 160


CRASHING_RECORDER = """
import os, signal, sys
from pathlib import Path
from telportal.media.recorder import CallRecorder
from telportal.media.wav import IncrementalWavWriter
from tests.unit.media.support import frames_of, sine_pcm

recorder = CallRecorder(IncrementalWavWriter(Path(sys.argv[1]), 2))
caller = frames_of(sine_pcm(440, 3.5, 6000))
for tick, frame in enumerate(caller):
    recorder.caller(frame)
    recorder.on_tick(tick, tick * 0.02)
os.kill(os.getpid(), signal.SIGKILL)  # no stop(), no close(), no atexit
"""


def test_a_crash_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "crashed.wav"
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_RECORDER, str(path)],
        cwd=Path(__file__).parents[3],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    channels, frames, pcm = read(path)
    # 3.5 s recorded, flushed at 1, 2 and 3 s: the last half second is lost.
    assert (channels, frames) == (2, 3 * 8000)
    assert goertzel_level(channel(pcm, 0), CALLER_HZ) > 5000


def test_mixed_mono_sums_both_sides(tmp_path: Path) -> None:
    path = tmp_path / "mixed.wav"
    recorder = CallRecorder(IncrementalWavWriter(path, 1), RecordingLayout.MIXED)
    feed(recorder, 60)
    summary = recorder.stop()
    channels, frames, pcm = read(path)
    assert (channels, frames) == (1, 60 * 160)
    assert goertzel_level(pcm, CALLER_HZ) > 5000
    assert goertzel_level(pcm, AGENT_HZ) > 5000
    assert summary.duration == pytest.approx(1.2)


def test_missing_audio_is_silence_and_bursts_are_bounded(tmp_path: Path) -> None:
    path = tmp_path / "gaps.wav"
    recorder = CallRecorder(IncrementalWavWriter(path, 2))
    recorder.caller(bytes(range(200)) * 50)  # a 10 000-byte burst: only 100 ms is kept
    for tick in range(10):
        recorder.on_tick(tick, tick * 0.02)
    recorder.stop()
    _, frames, pcm = read(path)
    assert frames == 1600
    left = channel(pcm, 0)
    assert left[5 * FRAME_PCM_BYTES :] == bytes(5 * FRAME_PCM_BYTES)
    assert channel(pcm, 1) == bytes(frames * 2)


@pytest.mark.parametrize(("mode", "seconds"), [(PauseMode.SILENCE, 3.0), (PauseMode.GAP, 2.0)])
def test_pause_writes_silence_or_leaves_a_gap(
    tmp_path: Path, mode: PauseMode, seconds: float
) -> None:
    path = tmp_path / f"{mode}.wav"
    recorder = CallRecorder(IncrementalWavWriter(path, 2), pause_mode=mode)
    feed(recorder, 50)
    recorder.pause()
    assert recorder.paused
    feed(recorder, 50, start=50)  # the card number: must not be in the file
    recorder.resume()
    feed(recorder, 50, start=100)
    summary = recorder.stop()
    _, frames, pcm = read(path)
    assert frames == seconds * 8000
    assert summary.duration == seconds
    assert [(p.offset, p.duration) for p in summary.pauses] == [(1.0, 1.0)]
    if mode is PauseMode.SILENCE:
        paused = pcm[8000 * 4 : 16000 * 4]
        assert paused == bytes(len(paused))
    left = channel(pcm, 0)
    assert goertzel_level(left[-16000:], CALLER_HZ) > 5000


def test_layout_and_channels_must_agree(tmp_path: Path) -> None:
    writer = IncrementalWavWriter(tmp_path / "x.wav", 1)
    with pytest.raises(ValueError, match="needs 2 channels"):
        CallRecorder(writer, RecordingLayout.STEREO)
    writer.close()


def test_switch_records_what_the_caller_says_and_hears(tmp_path: Path) -> None:
    harness = Harness()
    caller = harness.add("caller", 4000)
    path = tmp_path / "leg.wav"
    harness.switch.record_start("caller", CallRecorder(IncrementalWavWriter(path, 2)))
    prompt = EncodedClip.from_pcm(sine_pcm(AGENT_HZ, 2.0, 6000))
    harness.switch.play("caller", "p1", [prompt])
    voice = frames_of(sine_pcm(CALLER_HZ, 2.0, 6000))
    for index, frame in enumerate(voice):
        if index == 60:
            # Mid-call: already a valid file with what was flushed (every second).
            assert read(path)[1] == 8000
        caller.send(frame)
        harness.tick()
    summary = harness.switch.record_stop("caller")
    assert harness.of_type(RecordingStopped)[0].summary == summary
    _, frames, pcm = read(path)
    assert frames == 100 * 160
    left, right = channel(pcm, 0), channel(pcm, 1)
    assert goertzel_level(left, CALLER_HZ) > 4000
    assert goertzel_level(left, AGENT_HZ) < 200
    assert goertzel_level(right, AGENT_HZ) > 4000
    assert goertzel_level(right, CALLER_HZ) < 200
