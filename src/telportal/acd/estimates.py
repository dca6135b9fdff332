"""Expected wait and position, for announcements ("you are number 3; about 2 minutes").

Pure functions over recent history. The model is the simplest that behaves: with
`n` agents serving a queue and an average handle time `h`, an agent comes free about
every `h / n` seconds, so the contact at position `p` waits about `p * h / n`. When no
handle time is known yet, the recent answered waits stand in for it.
"""

from collections import deque
from dataclasses import dataclass
from typing import Literal

DEFAULT_WINDOW_SECONDS = 1800.0
DEFAULT_MAX_SAMPLES = 200


class RecentDurations:
    """Durations seen over the last `window_seconds` (at most `max_samples` of them).

    A window rather than the whole day so that an estimate follows the afternoon's
    traffic, not the morning's; a sample cap so that memory stays bounded when busy.
    """

    __slots__ = ("_max_samples", "_samples", "_total", "_window")

    def __init__(
        self, window_seconds: float = DEFAULT_WINDOW_SECONDS, max_samples: int = DEFAULT_MAX_SAMPLES
    ) -> None:
        if window_seconds <= 0 or max_samples < 1:
            raise ValueError("a window needs a positive length and room for one sample")
        self._window = window_seconds
        self._max_samples = max_samples
        self._samples: deque[tuple[float, float]] = deque()
        self._total = 0.0

    def add(self, at: float, seconds: float) -> None:
        self._samples.append((at, seconds))
        self._total += seconds
        if len(self._samples) > self._max_samples:
            self._total -= self._samples.popleft()[1]

    def average(self, now: float) -> float | None:
        """The mean of the samples still in the window; None when there are none."""
        samples = self._samples
        horizon = now - self._window
        while samples and samples[0][0] < horizon:
            self._total -= samples.popleft()[1]
        if not samples:
            self._total = 0.0  # no float dust left behind by the subtractions
            return None
        return max(self._total / len(samples), 0.0)

    def __len__(self) -> int:
        return len(self._samples)


Basis = Literal["handle_time", "answered_waits", "unknown"]


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    position: int
    """1 for the next contact to be served."""
    expected_wait: float | None
    """Seconds; None when there is nothing to base an estimate on."""
    basis: Basis


def expected_wait(position: int, serving_agents: int, average_handle: float) -> float:
    if position < 1:
        raise ValueError("positions start at 1")
    if serving_agents < 1:
        raise ValueError("an expected wait needs at least one serving agent")
    return position * average_handle / serving_agents


def estimate_wait(
    position: int,
    serving_agents: int,
    average_handle: float | None,
    average_answered_wait: float | None,
) -> WaitEstimate:
    """The estimate to announce, and what it rests on.

    With no agent serving the queue there is no honest figure to give: `unknown`.
    """
    if serving_agents >= 1 and average_handle is not None:
        return WaitEstimate(
            position, expected_wait(position, serving_agents, average_handle), "handle_time"
        )
    if serving_agents >= 1 and average_answered_wait is not None:
        return WaitEstimate(position, average_answered_wait, "answered_waits")
    return WaitEstimate(position, None, "unknown")
