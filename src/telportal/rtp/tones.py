"""In-band DTMF detection (Goertzel) and call-progress tone generation, 8 kHz linear PCM.

Detection looks at 20 ms windows (160 samples) every 10 ms. Each 10 ms block is run
through the Goertzel recurrence once per DTMF frequency, giving its complex DFT bin; a
window's bin is the sum of its two blocks' bins, the later one phase-shifted by 80
samples. So the overlapping windows cost nothing extra over plain 20 ms blocks, and the
10 ms hop is what tells a 30 ms tone (rejected) from a 45 ms one. A window names a digit
when:
- the strongest row and column tones are each at least MIN_LEVEL_DBM0;
- twist is within limits: the column (high) tone at most NORMAL_TWIST_DB below the row
  tone, at most REVERSE_TWIST_DB above it;
- each peak beats every other frequency of its group by RELATIVE_PEAK_DB;
- the two tones carry at least MIN_ENERGY_RATIO of the window's energy; for a tone that
  fills part of the window the ratio is the filled share, so this check also times the
  tone's edges, and it rejects speech, whose energy is spread over many frequencies;
- neither tone has a second harmonic above MAX_SECOND_HARMONIC_DB relative to it: DTMF
  tones are pure, voiced sounds are not.

Timing, on the windows (a state machine with two states, idle and key down):
- idle -> key down after HITS_TO_START consecutive windows with the same digit, and only
  once the previous digit has been followed by PAUSE_WINDOWS windows with no digit at
  all. With the ratio above, a tone of 44 ms or more always makes 4 hits, one of 33 ms or
  less never does; a pause of 30 ms or more always separates two presses;
- key down -> idle after END_MISSES consecutive windows without the digit, so a dropout
  of 10 ms or less inside a tone does not split it.
Sample positions in events count samples fed since the detector was made.

Known limit: frequencies up to 1% off are accepted, but at the 1.5% Q.24 allows, a 20 ms
window loses up to 4 dB at 1633 Hz and the energy check fails for the A-D and # keys.
"""

import cmath
import enum
import math
import operator
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from telportal.rtp.dtmf import DigitEnded, DigitStarted, DtmfEvent

SAMPLE_RATE = 8000
DTMF_ROW_FREQUENCIES = (697.0, 770.0, 852.0, 941.0)
DTMF_COLUMN_FREQUENCIES = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
# G.711 puts a full-scale u-law sine at +3.17 dBm0, which fixes the 0 dBm0 amplitude.
DBM0_AMPLITUDE = 32124 / 10 ** (3.17 / 20)

BLOCK_SAMPLES = 80
WINDOW_SAMPLES = 2 * BLOCK_SAMPLES
MIN_LEVEL_DBM0 = -30.0
NORMAL_TWIST_DB = 8.0
REVERSE_TWIST_DB = 4.0
RELATIVE_PEAK_DB = 8.0
MIN_ENERGY_RATIO = 0.6
MAX_SECOND_HARMONIC_DB = -6.0
HITS_TO_START = 4
END_MISSES = 3
PAUSE_WINDOWS = 3

_FREQUENCIES = DTMF_ROW_FREQUENCIES + DTMF_COLUMN_FREQUENCIES
_OMEGAS = tuple(2 * math.pi * f / SAMPLE_RATE for f in _FREQUENCIES)
_COEFFICIENTS = tuple(2 * math.cos(w) for w in _OMEGAS)
# Goertzel leaves s1 = s[M-1], s2 = s[M-2]; the DFT bin is e^-jw(M-1) * s1 - e^-jwM * s2.
_S1_FACTORS = tuple(cmath.exp(-1j * w * (BLOCK_SAMPLES - 1)) for w in _OMEGAS)
_S2_FACTORS = tuple(cmath.exp(-1j * w * BLOCK_SAMPLES) for w in _OMEGAS)
# The later block of a window starts BLOCK_SAMPLES in: its bin turns by e^-jwM.
_SHIFTS = _S2_FACTORS
_ZERO_SPECTRUM = (0j,) * len(_FREQUENCIES)
# |X|^2 of a sine of amplitude A filling N samples is (A * N / 2)^2.
_MIN_POWER = (10 ** (MIN_LEVEL_DBM0 / 20) * DBM0_AMPLITUDE * WINDOW_SAMPLES / 2) ** 2
# A block below a quarter of the weakest acceptable tone's energy cannot help any window.
_SILENT_BLOCK_ENERGY = (10 ** (MIN_LEVEL_DBM0 / 20) * DBM0_AMPLITUDE) ** 2 / 2 * BLOCK_SAMPLES / 4
_RELATIVE_PEAK = 10 ** (RELATIVE_PEAK_DB / 10)
_SECOND_HARMONIC = 10 ** (MAX_SECOND_HARMONIC_DB / 10)
# A window hits once the tone fills MIN_ENERGY_RATIO of it; with the start uniform over a
# hop, the tone began on average this many samples after the first hit window began...
_START_LAG = round(WINDOW_SAMPLES * (1 - MIN_ENERGY_RATIO)) - BLOCK_SAMPLES // 2
# ... and ended this many samples after the last hit window began.
_END_LEAD = round(WINDOW_SAMPLES * MIN_ENERGY_RATIO) + BLOCK_SAMPLES // 2


class Rejection(enum.Enum):
    """Why a window names no digit, in the order the checks run."""

    LOW_LEVEL = "low level"
    NORMAL_TWIST = "normal twist"
    REVERSE_TWIST = "reverse twist"
    RELATIVE_PEAK = "relative peak"
    ENERGY_RATIO = "energy ratio"
    SECOND_HARMONIC = "second harmonic"


@dataclass(frozen=True, slots=True)
class WindowAnalysis:
    """The verdict on one 20 ms window; levels are those of the strongest row and column."""

    digit: str | None
    rejection: Rejection | None
    row_dbm0: float
    column_dbm0: float


def _samples(pcm: bytes) -> "array[int]":
    if len(pcm) % 2:
        raise ValueError(f"linear PCM has an odd length of {len(pcm)} bytes")
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _goertzel(block: list[float], coefficient: float) -> tuple[float, float]:
    s1 = s2 = 0.0
    for x in block:
        s1, s2 = x + coefficient * s1 - s2, s1
    return s1, s2


def _block_spectrum(block: list[float]) -> tuple[complex, ...]:
    bins = []
    for coefficient, f1, f2 in zip(_COEFFICIENTS, _S1_FACTORS, _S2_FACTORS, strict=True):
        s1, s2 = _goertzel(block, coefficient)
        bins.append(f1 * s1 - f2 * s2)
    return tuple(bins)


def _block_bin(block: list[float], frequency: float) -> complex:
    """The DFT bin of one block at any frequency, for the second-harmonic check."""
    omega = 2 * math.pi * frequency / SAMPLE_RATE
    s1, s2 = _goertzel(block, 2 * math.cos(omega))
    return (
        cmath.exp(-1j * omega * (BLOCK_SAMPLES - 1)) * s1
        - cmath.exp(-1j * omega * BLOCK_SAMPLES) * s2
    )


def _window_bin(earlier: complex, later: complex, frequency: float) -> complex:
    return earlier + cmath.exp(-2j * math.pi * frequency * BLOCK_SAMPLES / SAMPLE_RATE) * later


def _dbm0(power: float) -> float:
    if power <= 0:
        return -math.inf
    return 20 * math.log10(2 * math.sqrt(power) / (WINDOW_SAMPLES * DBM0_AMPLITUDE))


def _level_and_twist(row_power: float, column_power: float) -> Rejection | None:
    if row_power < _MIN_POWER or column_power < _MIN_POWER:
        return Rejection.LOW_LEVEL
    # Power ratio in dB; amplitude twist is the same number.
    twist = 10 * math.log10(column_power / row_power)
    if twist < -NORMAL_TWIST_DB:
        return Rejection.NORMAL_TWIST
    if twist > REVERSE_TWIST_DB:
        return Rejection.REVERSE_TWIST
    return None


def _relative_peaks(group: list[float], peak: int) -> Rejection | None:
    threshold = group[peak] / _RELATIVE_PEAK
    if any(power > threshold for index, power in enumerate(group) if index != peak):
        return Rejection.RELATIVE_PEAK
    return None


def _harmonics(
    harmonic_power: Callable[[float], float], tones: tuple[tuple[float, float], ...]
) -> Rejection | None:
    for frequency, power in tones:
        if harmonic_power(2 * frequency) > power * _SECOND_HARMONIC:
            return Rejection.SECOND_HARMONIC
    return None


def _judge(
    powers: list[float], energy: float, harmonic_power: Callable[[float], float]
) -> WindowAnalysis:
    rows, columns = powers[:4], powers[4:]
    row = max(range(4), key=rows.__getitem__)
    column = max(range(4), key=columns.__getitem__)
    row_power, column_power = rows[row], columns[column]
    rejection = (
        _level_and_twist(row_power, column_power)
        or _relative_peaks(rows, row)
        or _relative_peaks(columns, column)
        or (
            Rejection.ENERGY_RATIO
            if (row_power + column_power) * 2 / WINDOW_SAMPLES < MIN_ENERGY_RATIO * energy
            else None
        )
        or _harmonics(
            harmonic_power,
            (
                (DTMF_ROW_FREQUENCIES[row], row_power),
                (DTMF_COLUMN_FREQUENCIES[column], column_power),
            ),
        )
    )
    digit = None if rejection else DTMF_KEYPAD[row][column]
    return WindowAnalysis(digit, rejection, _dbm0(row_power), _dbm0(column_power))


def _window_powers(earlier: tuple[complex, ...], later: tuple[complex, ...]) -> list[float]:
    return [abs(a + shift * b) ** 2 for a, b, shift in zip(earlier, later, _SHIFTS, strict=True)]


def analyze_window(pcm: bytes) -> WindowAnalysis:
    """Judge one 20 ms window (160 samples of 16-bit little-endian PCM) on its own."""
    samples = [float(x) for x in _samples(pcm)]
    if len(samples) != WINDOW_SAMPLES:
        raise ValueError(f"a window is {WINDOW_SAMPLES} samples, got {len(samples)}")
    first, second = samples[:BLOCK_SAMPLES], samples[BLOCK_SAMPLES:]
    powers = _window_powers(_block_spectrum(first), _block_spectrum(second))

    def harmonic_power(frequency: float) -> float:
        bin_ = _window_bin(_block_bin(first, frequency), _block_bin(second, frequency), frequency)
        return abs(bin_) ** 2

    return _judge(powers, math.fsum(x * x for x in samples), harmonic_power)


class DtmfDetector:
    """Feeds 8 kHz linear PCM in, gets digit events out; see the rules at the top."""

    def __init__(self) -> None:
        self._pending = array("h")
        self._position = 0  # samples consumed so far
        self._previous_block: list[float] = [0.0] * BLOCK_SAMPLES
        self._previous_spectrum = _ZERO_SPECTRUM
        self._previous_energy = 0.0
        self._previous_harmonics: dict[float, complex] = {}
        self._candidate: str | None = None
        self._hits = 0
        self._first_hit = 0
        self._digit: str | None = None
        self._digit_start = 0
        self._last_hit = 0
        self._misses = 0
        self._quiet = PAUSE_WINDOWS
        self._armed = True

    def feed(self, pcm: bytes) -> list[DtmfEvent]:
        self._pending.extend(_samples(pcm))
        events: list[DtmfEvent] = []
        while len(self._pending) >= BLOCK_SAMPLES:
            block = list(map(float, self._pending[:BLOCK_SAMPLES]))
            del self._pending[:BLOCK_SAMPLES]
            events.extend(self._block(block))
        return events

    def flush(self) -> list[DtmfEvent]:
        """End a digit still down; call it when the stream stops."""
        return [] if self._digit is None else [self._end(self._digit)]

    def _block(self, block: list[float]) -> list[DtmfEvent]:
        energy = math.fsum(map(operator.mul, block, block))
        # Skipping the Goertzel pass on quiet blocks makes silence nearly free.
        spectrum = _ZERO_SPECTRUM if energy < _SILENT_BLOCK_ENERGY else _block_spectrum(block)
        window_start = self._position - BLOCK_SAMPLES
        window_energy = self._previous_energy + energy
        digit = None
        harmonics: dict[float, complex] = {}
        if spectrum is not _ZERO_SPECTRUM or self._previous_spectrum is not _ZERO_SPECTRUM:
            previous_block, previous_harmonics = self._previous_block, self._previous_harmonics

            def harmonic_power(frequency: float) -> float:
                # Each block's harmonic bins are kept, so a held key costs one block each.
                earlier = previous_harmonics.get(frequency)
                if earlier is None:
                    earlier = _block_bin(previous_block, frequency)
                later = harmonics[frequency] = _block_bin(block, frequency)
                return abs(_window_bin(earlier, later, frequency)) ** 2

            powers = _window_powers(self._previous_spectrum, spectrum)
            digit = _judge(powers, window_energy, harmonic_power).digit
        self._previous_harmonics = harmonics
        self._previous_block = block
        self._previous_spectrum = spectrum
        self._previous_energy = energy
        self._position += BLOCK_SAMPLES
        return self._step(digit, window_start)

    def _step(self, digit: str | None, window_start: int) -> list[DtmfEvent]:
        events: list[DtmfEvent] = []
        self._quiet = self._quiet + 1 if digit is None else 0
        if self._quiet >= PAUSE_WINDOWS:
            self._armed = True
        if self._digit is not None:
            if digit == self._digit:
                self._misses = 0
                self._last_hit = window_start
                return events
            self._misses += 1
            if self._misses < END_MISSES:
                return events
            events.append(self._end(self._digit))
        if digit is None or not self._armed:
            self._candidate, self._hits = None, 0
            return events
        if digit != self._candidate:
            self._candidate, self._hits, self._first_hit = digit, 0, window_start
        self._hits += 1
        if self._hits >= HITS_TO_START:
            self._digit = digit
            self._digit_start = max(0, self._first_hit + _START_LAG)
            self._last_hit = window_start
            self._misses = 0
            self._armed = False
            events.append(DigitStarted(digit, self._digit_start))
        return events

    def _end(self, digit: str) -> DigitEnded:
        duration = self._last_hit + _END_LEAD - self._digit_start
        event = DigitEnded(digit, self._digit_start, duration)
        self._digit = None
        self._candidate, self._hits = None, 0
        return event


def _amplitude(dbm0: float) -> float:
    return DBM0_AMPLITUDE * 10 ** (dbm0 / 20)


@dataclass(frozen=True, slots=True)
class Tone:
    """A tone: frequencies with their levels, and a cadence of on/off periods in ms.

    An empty cadence is a continuous tone; `repeat=False` plays the cadence once.
    """

    frequencies: tuple[float, ...]
    levels_dbm0: tuple[float, ...]
    cadence_ms: tuple[int, ...] = ()
    repeat: bool = True

    def __post_init__(self) -> None:
        if len(self.frequencies) != len(self.levels_dbm0):
            raise ValueError("a tone needs one level per frequency")
        if not self.frequencies:
            raise ValueError("a tone needs at least one frequency")
        if any(not 0 < f < SAMPLE_RATE / 2 for f in self.frequencies):
            raise ValueError("tone frequencies must lie between 0 and 4000 Hz")
        if any(period <= 0 for period in self.cadence_ms):
            raise ValueError("cadence periods must be positive")


# North America (ANSI T1.401 / Telcordia GR-506): 440+480 Hz, 2 s on, 4 s off.
RINGBACK_NORTH_AMERICA = Tone((440.0, 480.0), (-19.0, -19.0), (2000, 4000))
# China (YD/T 1277): 450 Hz, 1 s on, 4 s off.
RINGBACK_CHINA = Tone((450.0,), (-10.0,), (1000, 4000))
BUSY_NORTH_AMERICA = Tone((480.0, 620.0), (-24.0, -24.0), (500, 500))
BUSY_CHINA = Tone((450.0,), (-10.0,), (350, 350))
DIAL_NORTH_AMERICA = Tone((350.0, 440.0), (-13.0, -13.0))
BEEP = Tone((1000.0,), (-10.0,), (250,), repeat=False)

DTMF_LOW_GROUP_DBM0 = -7.0
# Phones send the high group about 2 dB stronger to offset line loss at high frequencies.
DTMF_HIGH_GROUP_DBM0 = -5.0


def dtmf_tone(
    digit: str,
    low_dbm0: float = DTMF_LOW_GROUP_DBM0,
    high_dbm0: float = DTMF_HIGH_GROUP_DBM0,
) -> Tone:
    """The continuous dual tone of one key; read as many samples as the press lasts."""
    key = digit.upper()
    for row, keys in enumerate(DTMF_KEYPAD):
        column = keys.find(key) if len(key) == 1 else -1
        if column >= 0:
            return Tone(
                (DTMF_ROW_FREQUENCIES[row], DTMF_COLUMN_FREQUENCIES[column]),
                (low_dbm0, high_dbm0),
            )
    raise ValueError(f"{digit!r} is not a DTMF digit")


class ToneGenerator:
    """Produces a tone as 16-bit little-endian PCM, frame after frame, keeping cadence."""

    def __init__(self, tone: Tone) -> None:
        self.tone = tone
        self._position = 0
        self._steps = [2 * math.pi * f / SAMPLE_RATE for f in tone.frequencies]
        self._amplitudes = [_amplitude(level) for level in tone.levels_dbm0]
        # Cadence in samples: (start of period, on?) boundaries within one cycle.
        self._periods = [period * SAMPLE_RATE // 1000 for period in tone.cadence_ms]
        self._cycle = sum(self._periods)

    @property
    def finished(self) -> bool:
        """Whether a one-shot cadence has played out; silence follows."""
        return not self.tone.repeat and bool(self._cycle) and self._position >= self._cycle

    def _is_on(self, position: int) -> bool:
        if not self._cycle:
            return True
        if not self.tone.repeat and position >= self._cycle:
            return False
        offset = position % self._cycle
        for index, period in enumerate(self._periods):
            if offset < period:
                return index % 2 == 0
            offset -= period
        return False

    def read(self, samples: int) -> bytes:
        out = array("h", bytes(2 * samples))
        for index in range(samples):
            position = self._position + index
            if self._is_on(position):
                value = sum(
                    amplitude * math.sin(step * position)
                    for step, amplitude in zip(self._steps, self._amplitudes, strict=True)
                )
                out[index] = max(-32768, min(32767, round(value)))
        self._position += samples
        if sys.byteorder == "big":
            out.byteswap()
        return out.tobytes()


def tone_pcm(tone: Tone, duration_ms: int) -> bytes:
    """`duration_ms` of a tone from its start."""
    return ToneGenerator(tone).read(duration_ms * SAMPLE_RATE // 1000)
