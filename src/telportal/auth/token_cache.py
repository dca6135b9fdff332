"""Who a bearer is, remembered for a few seconds (decision 0011).

Every API request names its caller with a bearer; looking it up in the store costs
a read per request. This cache keeps the answer for `ttl` seconds of the monotonic
clock, at most `max_entries` of them (the oldest go first), keyed by the bearer's
SHA-256 as the store is. A hit is still refused once the token's own expiry has
passed. `clear()` and `forget()` take effect at once; a lookup that began before one
of them does not put its (possibly stale) answer back, thanks to `generation`.
"""

from dataclasses import dataclass
from datetime import datetime

from telportal.clock import Clock
from telportal.tenancy.roles import Scope


@dataclass(frozen=True, slots=True)
class _Entry:
    scope: Scope
    expires_at: datetime | None
    stored_at: float


class TokenCache:
    def __init__(self, clock: Clock, ttl: float, max_entries: int = 10_000) -> None:
        self.clock = clock
        self.ttl = ttl
        self.max_entries = max_entries
        self.generation = 0
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Scope | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock.monotonic() - entry.stored_at >= self.ttl or (
            entry.expires_at is not None and entry.expires_at <= self.clock.now()
        ):
            del self._entries[key]
            return None
        return entry.scope

    def put(self, key: str, scope: Scope, expires_at: datetime | None, generation: int) -> None:
        """Remember `scope`, unless the cache was cleared since `generation` was read."""
        if self.ttl <= 0 or generation != self.generation:
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self.max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(scope, expires_at, self.clock.monotonic())

    def forget(self, key: str) -> None:
        self.generation += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
