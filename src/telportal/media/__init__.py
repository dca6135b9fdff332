"""The media engine: RTP legs, prompts, speech, digits, recording, bridges and mixing.

The call layer depends on `MediaEngine` only; `EmbeddedMediaEngine` is the in-process
implementation built on the pure `MediaSwitch` and `TickScheduler`.
"""

from telportal.media.audio import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, G711Law
from telportal.media.clips import ClipCache, EncodedClip
from telportal.media.config import MediaConfig
from telportal.media.digits import DigitDeduplicator, DtmfMethod
from telportal.media.engine import (
    EmbeddedMediaEngine,
    EndpointInfo,
    EventSubscription,
    MediaEngine,
)
from telportal.media.errors import (
    MediaError,
    MediaStateError,
    PortsExhaustedError,
    UnknownEndpointError,
)
from telportal.media.events import (
    DigitReceived,
    DigitsSent,
    EndpointClosed,
    EndpointTimedOut,
    MediaEvent,
    PlayFinished,
    RecordingStopped,
    SourceLatched,
)
from telportal.media.mixer import Mixer, MixRole
from telportal.media.player import PlayEndReason, Player
from telportal.media.playlist import (
    PlayFile,
    PlayItem,
    Playlist,
    PlaySilence,
    PlaySpeech,
    PlayTone,
    music_on_hold,
)
from telportal.media.recorder import (
    CallRecorder,
    PauseMode,
    RecordingLayout,
    RecordingSummary,
)
from telportal.media.scheduler import SchedulerStats, TickScheduler
from telportal.media.session import InbandDtmf, MediaSession, MediaStats, SessionOptions
from telportal.media.switch import MediaSwitch, Transmit
from telportal.media.tts import (
    Espeak,
    SpeechError,
    SpeechPrompts,
    VoiceUnavailableError,
    mandarin_to_pinyin,
)

__all__ = [
    "FRAME_MS",
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "CallRecorder",
    "ClipCache",
    "DigitDeduplicator",
    "DigitReceived",
    "DigitsSent",
    "DtmfMethod",
    "EmbeddedMediaEngine",
    "EncodedClip",
    "EndpointClosed",
    "EndpointInfo",
    "EndpointTimedOut",
    "Espeak",
    "EventSubscription",
    "G711Law",
    "InbandDtmf",
    "MediaConfig",
    "MediaEngine",
    "MediaError",
    "MediaEvent",
    "MediaSession",
    "MediaStateError",
    "MediaStats",
    "MediaSwitch",
    "MixRole",
    "Mixer",
    "PauseMode",
    "PlayEndReason",
    "PlayFile",
    "PlayFinished",
    "PlayItem",
    "PlaySilence",
    "PlaySpeech",
    "PlayTone",
    "Player",
    "Playlist",
    "PortsExhaustedError",
    "RecordingLayout",
    "RecordingStopped",
    "RecordingSummary",
    "SchedulerStats",
    "SessionOptions",
    "SourceLatched",
    "SpeechError",
    "SpeechPrompts",
    "TickScheduler",
    "Transmit",
    "UnknownEndpointError",
    "VoiceUnavailableError",
    "mandarin_to_pinyin",
    "music_on_hold",
]
