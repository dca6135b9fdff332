"""What can be played into a call: files, tones, speech and silence, in order, maybe looped."""

from dataclasses import dataclass
from pathlib import Path
from typing import final

from telportal.media.tts import DEFAULT_RATE, DEFAULT_VOICE
from telportal.rtp.tones import Tone


@dataclass(frozen=True, slots=True)
class PlayFile:
    """A WAV file of any common rate, width and channel count."""

    path: Path


@dataclass(frozen=True, slots=True)
class PlayTone:
    """A tone for `duration_ms`, or one cadence cycle (one second if continuous)."""

    tone: Tone
    duration_ms: int | None = None

    def __post_init__(self) -> None:
        if self.duration_ms is not None and self.duration_ms <= 0:
            raise ValueError(f"tone duration {self.duration_ms} ms must be positive")


@dataclass(frozen=True, slots=True)
class PlaySpeech:
    """Text spoken by espeak-ng; `voice` "en" (or any espeak voice) or "zh" for Mandarin."""

    text: str
    voice: str = DEFAULT_VOICE
    rate: int = DEFAULT_RATE


@dataclass(frozen=True, slots=True)
class PlaySilence:
    duration_ms: int

    def __post_init__(self) -> None:
        if self.duration_ms <= 0:
            raise ValueError(f"silence of {self.duration_ms} ms must be positive")


PlayItem = PlayFile | PlayTone | PlaySpeech | PlaySilence


@final
@dataclass(frozen=True, slots=True)
class Playlist:
    """Items played in order; `loop` starts over at the end (music on hold)."""

    items: tuple[PlayItem, ...]
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a playlist needs at least one item")

    @classmethod
    def of(cls, *items: PlayItem, loop: bool = False) -> "Playlist":
        return Playlist(tuple(items), loop)


def music_on_hold(*items: PlayItem) -> Playlist:
    """A looping playlist; play it with barge_in=False so keys do not stop the music."""
    return Playlist(tuple(items), loop=True)
