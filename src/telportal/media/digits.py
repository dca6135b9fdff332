"""One stream of key presses per call, whichever way the digits arrive.

A digit can reach us three ways: RFC 4733 telephone-events, tones in the audio (in-band),
and SIP INFO (signaling). Some phones send two at once (4733 plus the tones left in the
audio, or 4733 plus INFO), and a caller must not select "1" twice for one press. Rules:
- presses from ONE method are never merged: each method already separates its own
  presses (4733 by timestamp, in-band by the pause between tones, INFO by message);
- a press of digit D from method M is a duplicate when a press of D from another method
  N is still down, or ended at most DUPLICATE_WINDOW seconds ago, began at most MAX_SKEW
  seconds ago, and has not already absorbed a press from M. Each press can absorb at
  most one press per other method, so "1 1" typed quickly stays two presses;
- the newest candidate is tried first, so a lost press on one method does not shift the
  pairing of the presses after it;
- a duplicate is dropped whole: its end is ignored too.
Times are the receiver's monotonic seconds, never RTP timestamps, because the methods do
not share a clock: in-band detection lags key down by about 40 ms, INFO takes the
signaling path and can be 100 ms or more apart from the media.
"""

import enum
from collections import deque
from dataclasses import dataclass, field

DUPLICATE_WINDOW = 0.3
MAX_SKEW = 1.5
_REMEMBERED = 16


class DtmfMethod(enum.StrEnum):
    RFC4733 = "rfc4733"
    INBAND = "inband"
    SIGNALING = "signaling"


@dataclass(slots=True)
class _Press:
    digit: str
    method: DtmfMethod
    start: float
    end: float | None = None
    absorbed: set[DtmfMethod] = field(default_factory=set)


class DigitDeduplicator:
    """Merges key-down/key-up reports from several methods into one press per key press."""

    def __init__(self) -> None:
        self._recent: deque[_Press] = deque(maxlen=_REMEMBERED)
        # The press each method's key is currently holding down (None: merged or up).
        self._down: dict[DtmfMethod, _Press | None] = {}

    def key_down(self, digit: str, method: DtmfMethod, now: float) -> bool:
        """Whether this key down is a new press (True) or a duplicate of one reported."""
        self._down[method] = None
        for press in reversed(self._recent):
            if now - press.start > MAX_SKEW:
                break
            if (
                press.digit == digit
                and press.method is not method
                and method not in press.absorbed
                and (press.end is None or now - press.end <= DUPLICATE_WINDOW)
            ):
                press.absorbed.add(method)
                return False
        press = _Press(digit, method, now)
        self._recent.append(press)
        self._down[method] = press
        return True

    def key_up(self, method: DtmfMethod, now: float) -> None:
        press = self._down.get(method)
        if press is not None:
            press.end = now
            self._down[method] = None

    def press(self, digit: str, method: DtmfMethod, now: float) -> bool:
        """A press reported whole (SIP INFO): key down and up at once."""
        new = self.key_down(digit, method, now)
        self.key_up(method, now)
        return new
