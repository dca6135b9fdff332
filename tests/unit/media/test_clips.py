"""Clips: frames pre-encoded once, cached in memory and in a folder."""

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from telportal.media.audio import FRAME_SAMPLES, G711Law
from telportal.media.clips import ClipCache, EncodedClip, render_tone
from telportal.rtp.g711 import pcma_encode, pcmu_encode
from telportal.rtp.tones import BEEP, DIAL_NORTH_AMERICA, RINGBACK_NORTH_AMERICA
from tests.unit.media.support import goertzel_level, sine


def write_tone_wav(path: Path, rate: int = 44100, seconds: float = 0.25) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        tone = np.rint(sine(1000, seconds, 8000, rate)).astype("<i2")
        out.writeframes(np.repeat(tone, 2).tobytes())
    path.write_bytes(buffer.getvalue())


def test_clip_frames_are_pre_encoded_in_both_laws() -> None:
    pcm = np.rint(sine(440, 0.05, 5000)).astype("<i2").tobytes()  # 400 samples: 2.5 frames
    clip = EncodedClip.from_pcm(pcm)
    assert clip.frame_count == 3
    assert clip.duration == pytest.approx(0.06)
    padded = pcm + bytes(160)
    assert b"".join(clip.frames(G711Law.PCMU)) == pcmu_encode(padded)
    assert b"".join(clip.frames(G711Law.PCMA)) == pcma_encode(padded)
    assert all(len(f) == FRAME_SAMPLES for f in clip.frames(G711Law.PCMA))
    with pytest.raises(ValueError, match="odd length"):
        EncodedClip.from_pcm(b"\0")


def test_file_is_converted_once_then_served_from_memory(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    write_tone_wav(path)
    cache = ClipCache()
    first = cache.load_file(path)
    second = cache.load_file(path)
    assert first is second
    assert (cache.misses, cache.hits) == (1, 1)
    assert first.frame_count == 13  # 0.25 s at 8 kHz is 12.5 frames
    assert goertzel_level(first.pcm[400:-400], 1000) == pytest.approx(8000, rel=0.05)


def test_disk_cache_survives_a_new_cache_object(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    folder = tmp_path / "cache"
    write_tone_wav(path, rate=22050)
    first = ClipCache(folder).load_file(path)
    assert len(list(folder.iterdir())) == 3
    fresh = ClipCache(folder)
    again = fresh.load_file(path)
    assert (fresh.misses, fresh.disk_hits) == (0, 1)
    assert again.pcm == first.pcm
    assert again.frames(G711Law.PCMU) == first.frames(G711Law.PCMU)


def test_a_changed_file_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    write_tone_wav(path, seconds=0.1)
    cache = ClipCache(tmp_path / "cache")
    short = cache.load_file(path)
    write_tone_wav(path, seconds=0.3)
    longer = cache.load_file(path)
    assert longer.frame_count > short.frame_count
    assert cache.misses == 2


def test_damaged_disk_entry_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "prompt.wav"
    folder = tmp_path / "cache"
    write_tone_wav(path)
    ClipCache(folder).load_file(path)
    for entry in folder.glob("*.pcmu"):
        entry.write_bytes(b"short")
    fresh = ClipCache(folder)
    assert fresh.load_file(path).frame_count == 13
    assert fresh.misses == 1


def test_memory_budget_evicts_least_recently_used(tmp_path: Path) -> None:
    paths = []
    for index in range(3):
        path = tmp_path / f"p{index}.wav"
        write_tone_wav(path, seconds=0.1 * (index + 1))
        paths.append(path)
    one = EncodedClip.from_pcm(bytes(2 * 800)).size
    cache = ClipCache(memory_budget=one * 4)
    for path in paths:
        cache.load_file(path)
    cache.load_file(paths[2])
    assert cache.hits == 1
    cache.load_file(paths[0])  # evicted: the budget holds the two newest only
    assert cache.misses == 4


def test_tones_render_with_their_cadence() -> None:
    cycle = render_tone(RINGBACK_NORTH_AMERICA)
    assert len(cycle) == 2 * 6 * 8000
    on, off = cycle[: 2 * 16000], cycle[2 * 16000 :]
    assert goertzel_level(on, 440) > 500
    assert goertzel_level(on, 480) > 500
    assert off == bytes(len(off))
    longer = render_tone(RINGBACK_NORTH_AMERICA, 13000)
    assert longer[: len(cycle)] == cycle
    assert longer[len(cycle) : 2 * len(cycle)] == cycle
    beep = render_tone(BEEP, 1000)  # one-shot: 250 ms of tone, then silence
    assert goertzel_level(beep[: 2 * 2000], 1000) > 1000
    assert beep[2 * 2000 :] == bytes(2 * 6000)
    continuous = render_tone(DIAL_NORTH_AMERICA, 2500)
    assert len(continuous) == 2 * 20000
    with pytest.raises(ValueError, match="positive"):
        render_tone(BEEP, 0)


def test_tone_clips_are_cached() -> None:
    cache = ClipCache()
    assert cache.tone(BEEP) is cache.tone(BEEP)
    assert cache.tone(BEEP, 500) is not cache.tone(BEEP)
