"""Failed-login limiting: too many failures for one key in a window ban it for a while.

Pure and clocked from outside, so the SIP side (per source address) and the API
(per username and address) share it, and tests move a fake clock.
"""

from collections import deque
from dataclasses import dataclass, field

from telportal.clock import Clock


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    banned_until: float = 0.0


class Lockout:
    def __init__(
        self, clock: Clock, max_failures: int, window_seconds: float, ban_seconds: float
    ) -> None:
        self._clock = clock
        self.max_failures = max_failures
        self.window = window_seconds
        self.ban = ban_seconds
        self._records: dict[str, _Record] = {}

    def banned_for(self, key: str) -> float:
        """Seconds left on a ban, 0 when the key may try."""
        rec = self._records.get(key)
        if rec is None:
            return 0.0
        return max(0.0, rec.banned_until - self._clock.monotonic())

    def failed(self, key: str) -> None:
        now = self._clock.monotonic()
        rec = self._records.setdefault(key, _Record())
        rec.failures.append(now)
        while rec.failures and rec.failures[0] <= now - self.window:
            rec.failures.popleft()
        if len(rec.failures) >= self.max_failures:
            rec.banned_until = now + self.ban
            rec.failures.clear()
        self._prune(now)

    def succeeded(self, key: str) -> None:
        self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        # Bounded memory under a spray of distinct keys: forget quiet, unbanned ones.
        if len(self._records) < 10_000:
            return
        stale = [
            k
            for k, r in self._records.items()
            if r.banned_until <= now and (not r.failures or r.failures[-1] <= now - self.window)
        ]
        for k in stale:
            del self._records[k]
