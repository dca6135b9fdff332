"""Speech prompts through the real espeak-ng library shipped by espeakng-loader."""

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from telportal.media.clips import ClipCache
from telportal.media.tts import (
    MANDARIN_VOICE,
    MANDARIN_VOICE_FILE,
    Espeak,
    SpeechPrompts,
    VoiceUnavailableError,
    espeak_input,
    mandarin_to_pinyin,
)
from tests.unit.media.support import rms

ENGLISH = "Welcome to Telportal. Press one for sales, or two for support."
MANDARIN = "欢迎致电，销售请按1，技术支持请按2。"  # noqa: RUF001 - real Chinese punctuation


@pytest.fixture(scope="module")
def espeak() -> Espeak:
    return Espeak()


def read_wav(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth()) == (1, 2)
        return reader.getframerate(), reader.readframes(reader.getnframes())


def test_pinyin_with_tone_numbers() -> None:
    assert mandarin_to_pinyin("你好") == "ni3 hao3"
    assert mandarin_to_pinyin("你好吗？") == "ni3 hao3 ma5?"  # noqa: RUF001
    assert (
        mandarin_to_pinyin("欢迎致电Telportal，请按1。")  # noqa: RUF001
        == "huan1 ying2 zhi4 dian4 Telportal, qing3 an4 yi1."
    )
    assert mandarin_to_pinyin("转人工请按0") == "zhuan3 ren2 gong1 qing3 an4 ling2"


def test_voice_aliases() -> None:
    assert espeak_input("你好", "zh") == ("ni3 hao3", MANDARIN_VOICE)
    assert espeak_input("你好", "cmn") == ("ni3 hao3", MANDARIN_VOICE)
    assert espeak_input("hello", "en") == ("hello", "en")


def test_the_pinyin_voice_is_shipped(espeak: Espeak) -> None:
    assert (Path(espeak.data_path) / MANDARIN_VOICE_FILE).is_file()
    espeak.check_voice(MANDARIN_VOICE)
    espeak.check_voice("en")


@pytest.mark.parametrize(
    ("text", "voice", "shortest", "longest"),
    [(ENGLISH, "en", 2.0, 8.0), (MANDARIN, "zh", 1.5, 10.0)],
)
def test_speech_is_non_silent_and_of_plausible_length(
    tmp_path: Path, espeak: Espeak, text: str, voice: str, shortest: float, longest: float
) -> None:
    prompts = SpeechPrompts(tmp_path, espeak)
    path = prompts.wav_path(text, voice)
    rate, pcm = read_wav(path)
    assert rate == espeak.sample_rate
    duration = len(pcm) / 2 / rate
    assert shortest < duration < longest
    assert rms(pcm) > 800
    # Converted for the phone network, it keeps its length and its energy.
    clip = ClipCache().load_file(path)
    assert clip.duration == pytest.approx(duration, abs=0.03)
    assert rms(clip.pcm) > 500


def test_cached_by_text_voice_and_rate(tmp_path: Path, espeak: Espeak) -> None:
    prompts = SpeechPrompts(tmp_path, espeak)
    first = prompts.wav_path("Your call is important to us.")
    assert prompts.wav_path("Your call is important to us.") == first
    assert prompts.synthesized == 1
    faster = prompts.wav_path("Your call is important to us.", rate=240)
    assert faster != first
    assert read_wav(faster)[1].__len__() < read_wav(first)[1].__len__()
    assert prompts.wav_path("Your call is important to us.", "en-us") != first
    assert prompts.synthesized == 3
    # A new object on the same folder synthesizes nothing.
    again = SpeechPrompts(tmp_path, espeak)
    assert again.wav_path("Your call is important to us.") == first
    assert again.synthesized == 0


def test_bad_requests(tmp_path: Path, espeak: Espeak) -> None:
    prompts = SpeechPrompts(tmp_path, espeak)
    with pytest.raises(ValueError, match="empty"):
        prompts.wav_path("   ")
    with pytest.raises(ValueError, match="out of range"):
        espeak.synthesize("hello", "en", rate=10)
    with pytest.raises(VoiceUnavailableError, match="'xx-nonexistent' is not available"):
        prompts.wav_path("hello", "xx-nonexistent")


def test_missing_pinyin_voice_is_reported_precisely(tmp_path: Path, espeak: Espeak) -> None:
    # A copy of the voice data without the pinyin voice file (big files linked, not copied).
    source = Path(espeak.data_path)
    data = tmp_path / "espeak-ng-data"
    data.mkdir()
    for entry in source.iterdir():
        if entry.name not in ("lang", "voices"):
            (data / entry.name).symlink_to(entry)
    shutil.copytree(source / "lang", data / "lang")
    (data / MANDARIN_VOICE_FILE).unlink()
    # In a child process: espeak-ng lists its voices once per process, so this one, which
    # has loaded the real data, would still find the voice.
    script = (
        "import sys\n"
        "from telportal.media.tts import MANDARIN_VOICE, Espeak, VoiceUnavailableError\n"
        "try:\n"
        "    Espeak(data_path=sys.argv[1]).check_voice(MANDARIN_VOICE)\n"
        "except VoiceUnavailableError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    message = result.stdout.strip()
    assert "'cmn-latn-pinyin' is not available" in message
    assert str(data) in message
    assert f"{MANDARIN_VOICE_FILE} is missing" in message
