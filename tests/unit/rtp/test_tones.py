import itertools
import math
import random
import struct

import pytest

from telportal.rtp.dtmf import DigitEnded, DigitStarted, DtmfEvent
from telportal.rtp.tones import (
    BEEP,
    BUSY_CHINA,
    BUSY_NORTH_AMERICA,
    DBM0_AMPLITUDE,
    DIAL_NORTH_AMERICA,
    RINGBACK_CHINA,
    RINGBACK_NORTH_AMERICA,
    DtmfDetector,
    Rejection,
    Tone,
    ToneGenerator,
    analyze_window,
    dtmf_tone,
    tone_pcm,
)

DIGITS = "0123456789*#ABCD"
SAMPLES_PER_MS = 8


def silence(ms: int) -> bytes:
    return bytes(2 * SAMPLES_PER_MS * ms)


def key(digit: str, ms: int, low_dbm0: float = -7.0, high_dbm0: float = -5.0) -> bytes:
    return tone_pcm(dtmf_tone(digit, low_dbm0, high_dbm0), ms)


def unpack(pcm: bytes) -> tuple[int, ...]:
    return struct.unpack(f"<{len(pcm) // 2}h", pcm)


def add_noise(pcm: bytes, snr_db: float, seed: int) -> bytes:
    """White Gaussian noise at `snr_db` below the signal's average power."""
    values = unpack(pcm)
    power = sum(v * v for v in values) / len(values)
    sigma = math.sqrt(power / 10 ** (snr_db / 10))
    rng = random.Random(seed)
    noisy = [max(-32768, min(32767, round(v + rng.gauss(0, sigma)))) for v in values]
    return struct.pack(f"<{len(noisy)}h", *noisy)


def detect(pcm: bytes, chunk_bytes: int = 320) -> list[DtmfEvent]:
    detector = DtmfDetector()
    events: list[DtmfEvent] = []
    for start in range(0, len(pcm), chunk_bytes):
        events.extend(detector.feed(pcm[start : start + chunk_bytes]))
    return events + detector.flush()


def pressed(events: list[DtmfEvent]) -> str:
    return "".join(e.digit for e in events if isinstance(e, DigitStarted))


def all_digits() -> bytes:
    return b"".join(key(digit, 100) + silence(100) for digit in DIGITS)


def test_all_sixteen_digits_are_detected_once_each() -> None:
    events = detect(all_digits())
    assert [(type(e).__name__, e.digit) for e in events] == [
        (kind, digit) for digit in DIGITS for kind in ("DigitStarted", "DigitEnded")
    ]


def test_start_and_duration_are_within_10_ms() -> None:
    events = detect(silence(37) + key("7", 100) + silence(100))
    assert len(events) == 2
    start, end = events
    assert isinstance(start, DigitStarted)
    assert isinstance(end, DigitEnded)
    assert abs(start.timestamp - 37 * SAMPLES_PER_MS) <= 80
    assert end.timestamp == start.timestamp
    assert abs(end.duration - 100 * SAMPLES_PER_MS) <= 80


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_all_digits_survive_noise_at_20_db_snr(seed: int) -> None:
    assert pressed(detect(add_noise(all_digits(), 20, seed))) == DIGITS


def test_feeding_in_odd_sized_pieces_changes_nothing() -> None:
    signal = add_noise(b"".join(key(d, 70) + silence(60) for d in "159#"), 25, 7)
    assert detect(signal, chunk_bytes=74) == detect(signal, chunk_bytes=len(signal))


@pytest.mark.parametrize("offset", range(0, 80, 8))
def test_a_30_ms_tone_is_too_short(offset: int) -> None:
    assert detect(bytes(2 * offset) + key("5", 30) + silence(100)) == []


@pytest.mark.parametrize("offset", range(0, 80, 8))
def test_a_50_ms_tone_is_long_enough(offset: int) -> None:
    assert pressed(detect(bytes(2 * offset) + key("5", 50) + silence(100))) == "5"


def test_a_held_key_is_one_press() -> None:
    events = detect(key("9", 2000) + silence(100))
    assert pressed(events) == "9"
    end = events[-1]
    assert isinstance(end, DigitEnded)
    assert abs(end.duration - 2000 * SAMPLES_PER_MS) <= 80


def test_a_10_ms_dropout_does_not_split_a_press() -> None:
    assert pressed(detect(key("4", 100) + silence(10) + key("4", 100) + silence(100))) == "4"


def test_a_40_ms_pause_separates_two_presses() -> None:
    assert pressed(detect(key("4", 100) + silence(40) + key("4", 100) + silence(100))) == "44"


def test_a_new_digit_needs_a_pause_first() -> None:
    assert pressed(detect(key("1", 100) + key("2", 100) + silence(100))) == "1"


def mix(*tones: tuple[float, float]) -> Tone:
    return Tone(tuple(f for f, _ in tones), tuple(level for _, level in tones))


@pytest.mark.parametrize(
    "tone",
    [
        mix((700.0, -5.0)),
        mix((600.0, -10.0), (1100.0, -10.0), (1800.0, -10.0)),
        # Voiced speech: a 150 Hz and a 233 Hz fundamental with falling harmonics,
        # which pass close to several DTMF frequencies.
        Tone(tuple(150.0 * k for k in range(1, 23)), tuple(-10.0 - 1.5 * k for k in range(1, 23))),
        Tone(tuple(232.5 * k for k in range(1, 15)), tuple(-10.0 - 1.5 * k for k in range(1, 15))),
        DIAL_NORTH_AMERICA,
        RINGBACK_NORTH_AMERICA,
        BUSY_NORTH_AMERICA,
        RINGBACK_CHINA,
    ],
    ids=[
        "700Hz",
        "non-dtmf-triple",
        "voice-150Hz",
        "voice-233Hz",
        "dial",
        "ringback",
        "busy",
        "ringback-cn",
    ],
)
def test_speech_like_and_call_progress_signals_are_not_digits(tone: Tone) -> None:
    assert detect(tone_pcm(tone, 1500)) == []


@pytest.mark.parametrize(
    ("low_dbm0", "high_dbm0", "rejection"),
    [
        (-4.0, -14.0, Rejection.NORMAL_TWIST),  # high group 10 dB weaker; 8 allowed
        (-10.0, -4.0, Rejection.REVERSE_TWIST),  # high group 6 dB stronger; 4 allowed
        (-33.0, -33.0, Rejection.LOW_LEVEL),
    ],
)
def test_excessive_twist_and_low_level_are_rejected(
    low_dbm0: float, high_dbm0: float, rejection: Rejection
) -> None:
    assert analyze_window(key("5", 20, low_dbm0, high_dbm0)).rejection is rejection
    assert detect(key("5", 200, low_dbm0, high_dbm0) + silence(60)) == []


@pytest.mark.parametrize(("low_dbm0", "high_dbm0"), [(-4.0, -11.0), (-7.0, -4.0), (-28.0, -28.0)])
def test_twist_and_level_within_limits_are_accepted(low_dbm0: float, high_dbm0: float) -> None:
    assert pressed(detect(key("5", 200, low_dbm0, high_dbm0) + silence(60))) == "5"


def test_second_harmonics_are_rejected() -> None:
    # Digit 5 (770 + 1336 Hz) plus both second harmonics 3 dB down: too rich for DTMF.
    tone = mix((770.0, -7.0), (1336.0, -7.0), (1540.0, -10.0), (2672.0, -10.0))
    assert analyze_window(tone_pcm(tone, 20)).rejection is Rejection.SECOND_HARMONIC
    assert detect(tone_pcm(tone, 300)) == []


def test_a_tone_between_two_rows_fails_the_relative_peak_check() -> None:
    tone = mix((697.0, -7.0), (770.0, -9.0), (1209.0, -5.0))
    assert analyze_window(tone_pcm(tone, 20)).rejection is Rejection.RELATIVE_PEAK


def test_window_analysis_reports_levels() -> None:
    analysis = analyze_window(key("D", 20))
    assert analysis.digit == "D"
    assert analysis.rejection is None
    assert analysis.row_dbm0 == pytest.approx(-7.0, abs=0.3)
    assert analysis.column_dbm0 == pytest.approx(-5.0, abs=0.3)
    with pytest.raises(ValueError, match="a window is 160 samples, got 80"):
        analyze_window(key("D", 10))


def rms_dbm0(pcm: bytes) -> float:
    values = unpack(pcm)
    rms = math.sqrt(sum(v * v for v in values) / len(values))
    return 20 * math.log10(rms * math.sqrt(2) / DBM0_AMPLITUDE) if rms else -math.inf


def zero_crossings(pcm: bytes) -> int:
    values = unpack(pcm)
    return sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))


@pytest.mark.parametrize(
    ("tone", "on_ms", "off_ms"),
    [
        (RINGBACK_NORTH_AMERICA, 2000, 4000),
        (RINGBACK_CHINA, 1000, 4000),
        (BUSY_NORTH_AMERICA, 500, 500),
        (BUSY_CHINA, 350, 350),
    ],
)
def test_cadence_repeats(tone: Tone, on_ms: int, off_ms: int) -> None:
    generator = ToneGenerator(tone)
    for _ in range(2):
        on = generator.read(on_ms * SAMPLES_PER_MS)
        off = generator.read(off_ms * SAMPLES_PER_MS)
        # Sound in every 10 ms of the on period, silence throughout the off period.
        assert min(rms_dbm0(on[i : i + 160]) for i in range(0, len(on), 160)) > -30
        assert off == silence(off_ms)
    assert not generator.finished


def test_china_ringback_is_450_hz_at_the_level_asked() -> None:
    on = tone_pcm(RINGBACK_CHINA, 1000)
    assert zero_crossings(on) == pytest.approx(900, abs=2)
    assert rms_dbm0(on) == pytest.approx(-10.0, abs=0.1)


def test_north_american_ringback_has_both_tones() -> None:
    on = tone_pcm(RINGBACK_NORTH_AMERICA, 20)
    # Two tones at -19 dBm0 each add up to -16 dBm0.
    assert rms_dbm0(tone_pcm(RINGBACK_NORTH_AMERICA, 1000)) == pytest.approx(-16.0, abs=0.1)
    assert analyze_window(on).digit is None


def test_beep_plays_once() -> None:
    generator = ToneGenerator(BEEP)
    beep = generator.read(250 * SAMPLES_PER_MS)
    assert zero_crossings(beep) == pytest.approx(500, abs=2)
    assert generator.finished
    assert generator.read(800) == silence(100)


def test_frames_continue_the_waveform() -> None:
    generator = ToneGenerator(dtmf_tone("8"))
    frames = b"".join(generator.read(160) for _ in range(10))
    assert frames == key("8", 200)


def test_tone_and_digit_validation() -> None:
    with pytest.raises(ValueError, match="'X' is not a DTMF digit"):
        dtmf_tone("X")
    with pytest.raises(ValueError, match="a tone needs one level per frequency"):
        Tone((440.0,), ())
    with pytest.raises(ValueError, match="between 0 and 4000 Hz"):
        Tone((4400.0,), (-10.0,))
    with pytest.raises(ValueError, match="cadence periods must be positive"):
        Tone((440.0,), (-10.0,), (0, 100))
