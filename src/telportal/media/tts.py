"""Speech prompts: espeak-ng through ctypes, English and Mandarin, cached as WAV files.

The library and its voice data come from the `espeakng-loader` wheel, so no system
package is needed. Synthesis is synchronous (AUDIO_OUTPUT_SYNCHRONOUS): `espeak_Synth`
returns once the whole text is spoken, handing audio to our callback on the calling
thread. It takes a few milliseconds per second of speech, which is still too long for the
event loop: the engine calls `SpeechPrompts.wav_path` from a worker thread, and ctypes
releases the GIL while the C code runs.

espeak-ng keeps its state in globals (current voice, rate, callback), so one process can
only synthesize one text at a time: every synthesis holds `_ESPEAK_LOCK`, a lock for the
process-wide library rather than for any object.

Mandarin: the plain `cmn` voice reads Han characters poorly, so Chinese text is turned
into tone-numbered pinyin (pypinyin, Style.TONE3, neutral tone as 5) and read with the
`cmn-latn-pinyin` voice. Digits are read one by one, as a phone menu says them, and
full-width punctuation becomes ASCII so that espeak pauses on it.
"""

import ctypes
import hashlib
import os
import re
import threading
from pathlib import Path

import espeakng_loader  # type: ignore[import-untyped]  # the wheel ships no type hints
from pypinyin import Style, lazy_pinyin

from telportal.media.wav import write_wav

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
ESPEAK_RATE = 1
ESPEAK_OK = 0
ESPEAK_RATE_MIN = 80
ESPEAK_RATE_MAX = 450
DEFAULT_RATE = 160
DEFAULT_VOICE = "en"
MANDARIN_VOICE = "cmn-latn-pinyin"
# The voice file that defines MANDARIN_VOICE inside espeak-ng-data.
MANDARIN_VOICE_FILE = Path("lang") / "sit" / "cmn-Latn-pinyin"
MANDARIN_ALIASES = frozenset({"zh", "zh-cn", "cmn", "mandarin", MANDARIN_VOICE})
SPEECH_CACHE_FORMAT = "telportal-speech-1"

_DIGIT_PINYIN = ("ling2", "yi1", "er4", "san1", "si4", "wu3", "liu4", "qi1", "ba1", "jiu3")
# Full-width punctuation (written as escapes: the characters look like ASCII ones).
_PUNCTUATION = str.maketrans(
    {
        "\uff0c": ",",  # full-width comma
        "\u3001": ",",  # enumeration comma
        "\uff1b": ";",
        "\uff1a": ":",
        "\u3002": ".",  # ideographic full stop
        "\uff01": "!",
        "\uff1f": "?",
        "\uff08": "(",
        "\uff09": ")",
        "\u3000": " ",  # ideographic space
    }
)
_NON_HAN_TOKEN = re.compile(r"[0-9]|[A-Za-z']+|\s+|.")
_PAUSES = frozenset(",.;:!?()")
_ESPEAK_LOCK = threading.Lock()
# The data folder espeak-ng was last initialized with: the library has one per process,
# so an Espeak object with another folder initializes it again before speaking.
_INITIALIZED: dict[str, str] = {}
_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class SpeechError(RuntimeError):
    """espeak-ng could not be loaded or could not speak a text."""


class VoiceUnavailableError(SpeechError):
    """The voice asked for is not in the shipped voice data."""


def _non_han(segment: str) -> str:
    """Words for a run of text pypinyin left alone: digits, Latin words, punctuation."""
    words: list[str] = []
    for token in _NON_HAN_TOKEN.findall(segment.translate(_PUNCTUATION)):
        if token.isdigit():
            words.append(_DIGIT_PINYIN[int(token)])
        elif not token.isspace():
            words.append(token)
    return " ".join(words)


def mandarin_to_pinyin(text: str) -> str:
    """Chinese text as tone-numbered pinyin for the cmn-latn-pinyin voice: 你好 -> ni3 hao3."""
    syllables: list[str] = []
    converted = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors=_non_han)
    for word in " ".join(converted).split():
        if word in _PAUSES and syllables:
            # Attach punctuation to the previous syllable so espeak pauses after it.
            syllables[-1] += word
        elif word not in _PAUSES:
            syllables.append(word)
    return " ".join(syllables)


class Espeak:
    """The espeak-ng library, initialized for synchronous synthesis to memory."""

    def __init__(self, library_path: str | None = None, data_path: str | None = None) -> None:
        self.library_path = library_path or str(espeakng_loader.get_library_path())
        self.data_path = data_path or str(espeakng_loader.get_data_path())
        try:
            lib = ctypes.CDLL(self.library_path)
        except OSError as exc:
            raise SpeechError(f"cannot load espeak-ng from {self.library_path}: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        self._lib = lib
        self._buffer = bytearray()
        # ctypes frees a callback that is no longer referenced; C would then call freed memory.
        self._callback = _SynthCallback(self._collect)
        self.sample_rate = 0
        with _ESPEAK_LOCK:
            self._initialize()

    def _initialize(self) -> None:
        """Point the process-wide library at our data folder; call with the lock held.

        One limit of the library: it lists the voices once per process, so a second data
        folder in the same process still sees the first folder's voice list.
        """
        if _INITIALIZED.get("data_path") == self.data_path:
            # Initialized already (perhaps by another Espeak object): initializing the
            # library again frees buffers a synthesis may still reach, and crashed the
            # process when many engines came and went in one run.
            self.sample_rate = int(_INITIALIZED["rate"])
            return
        rate = self._lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path.encode(), 0)
        if rate <= 0:
            raise SpeechError(f"espeak_Initialize failed with data at {self.data_path}")
        _INITIALIZED["data_path"] = self.data_path
        _INITIALIZED["rate"] = str(rate)
        self.sample_rate = rate

    def _collect(
        self, wav: "ctypes._Pointer[ctypes.c_short]", count: int, _events: int | None
    ) -> int:
        if count > 0 and wav:
            self._buffer += ctypes.string_at(wav, 2 * count)
        return 0  # go on synthesizing

    def check_voice(self, voice: str) -> None:
        """Raise VoiceUnavailableError, naming where it looked, if `voice` is not installed."""
        with _ESPEAK_LOCK:
            self._initialize()
            result = self._lib.espeak_SetVoiceByName(voice.encode())
        if result != ESPEAK_OK:
            raise self._missing(voice)

    def _missing(self, voice: str) -> VoiceUnavailableError:
        detail = ""
        if voice == MANDARIN_VOICE:
            present = (Path(self.data_path) / MANDARIN_VOICE_FILE).is_file()
            detail = (
                f"; the voice file {MANDARIN_VOICE_FILE} is "
                f"{'present but was rejected' if present else 'missing'}"
            )
        return VoiceUnavailableError(
            f"espeak-ng voice {voice!r} is not available in {self.data_path}{detail}"
        )

    def synthesize(self, text: str, voice: str, rate: int = DEFAULT_RATE) -> bytes:
        """16-bit mono PCM at `sample_rate` of `text` spoken by `voice` at `rate` words/min."""
        if not ESPEAK_RATE_MIN <= rate <= ESPEAK_RATE_MAX:
            raise ValueError(f"speech rate {rate} is out of range 80-450 words per minute")
        encoded = text.encode()
        with _ESPEAK_LOCK:
            self._initialize()
            lib = self._lib
            lib.espeak_SetSynthCallback(self._callback)
            if lib.espeak_SetVoiceByName(voice.encode()) != ESPEAK_OK:
                raise self._missing(voice)
            lib.espeak_SetParameter(ESPEAK_RATE, rate, 0)
            self._buffer = bytearray()
            # size counts the terminating NUL that ctypes adds to a c_char_p.
            result = lib.espeak_Synth(
                encoded, len(encoded) + 1, 0, 0, 0, ESPEAK_CHARS_UTF8, None, None
            )
            pcm = bytes(self._buffer)
            self._buffer = bytearray()
        if result != ESPEAK_OK:
            raise SpeechError(f"espeak_Synth failed with error {result} for voice {voice!r}")
        return pcm


def espeak_input(text: str, voice: str) -> tuple[str, str]:
    """(text, espeak voice) to synthesize: Mandarin becomes pinyin for the pinyin voice."""
    if voice.lower() in MANDARIN_ALIASES:
        return mandarin_to_pinyin(text), MANDARIN_VOICE
    return text, voice


class SpeechPrompts:
    """Speech as WAV files in a cache folder, one per (text, voice, rate); thread safe.

    espeak-ng is loaded on first use, so an engine that never speaks never loads it.
    """

    def __init__(self, folder: Path, espeak: Espeak | None = None) -> None:
        self.folder = folder
        self._espeak = espeak
        self._lock = threading.Lock()
        self.synthesized = 0

    def _engine(self) -> Espeak:
        with self._lock:
            if self._espeak is None:
                self._espeak = Espeak()
            return self._espeak

    def cache_path(self, text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE) -> Path:
        key = f"{SPEECH_CACHE_FORMAT}\0{voice.lower()}\0{rate}\0{text}"
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.wav"

    def wav_path(self, text: str, voice: str = DEFAULT_VOICE, rate: int = DEFAULT_RATE) -> Path:
        """The cached WAV of `text`, synthesizing it first if needed. Blocking."""
        if not text.strip():
            raise ValueError("cannot speak an empty text")
        path = self.cache_path(text, voice, rate)
        if path.is_file():
            return path
        espeak = self._engine()
        spoken, espeak_voice = espeak_input(text, voice)
        pcm = espeak.synthesize(spoken, espeak_voice, rate)
        if not pcm:
            raise SpeechError(f"espeak-ng produced no audio for {text!r} in voice {voice!r}")
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        write_wav(temporary, pcm, espeak.sample_rate)
        temporary.replace(path)
        self.synthesized += 1
        return path
