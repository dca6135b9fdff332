"""The asyncio side of the scheduler: one timer handle, re-armed for the next tick.

There is one timer for the whole engine whatever the number of streams, and none at all
while nothing is subscribed. `now` comes from the injected clock (time.monotonic in
production) rather than `loop.time()`, which uvloop only updates once per loop iteration
and in whole milliseconds.

The timer is armed with `call_at` on an absolute deadline, never `call_later` with a
delay: uvloop counts a delay from its cached loop time, which is already stale by however
long the current tick took, so every wake-up would come that much late. Both asyncio and
uvloop keep loop time on CLOCK_MONOTONIC, the clock of time.monotonic; for another clock
the offset between the two is measured once.
"""

import asyncio

from telportal.clock import Clock
from telportal.media.scheduler import TickScheduler


class AsyncioTicker:
    def __init__(
        self, scheduler: TickScheduler, clock: Clock, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.scheduler = scheduler
        self.clock = clock
        self.loop = loop
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._closed = False
        offset = loop.time() - clock.monotonic()
        # Within a second: the same clock, the difference being uvloop's stale cached time.
        self._offset = 0.0 if abs(offset) < 1.0 else offset
        scheduler.wake = self.wake

    def wake(self) -> None:
        """(Re-)arm the timer for the scheduler's next tick, or disarm it when idle."""
        if self._closed:
            return
        now = self.clock.monotonic()
        deadline = self.scheduler.next_wake(now)
        if deadline is None:
            self._cancel()
            return
        if self._handle is not None and self._deadline <= deadline:
            return
        self._cancel()
        self._deadline = deadline
        self._handle = self.loop.call_at(deadline + self._offset, self._fire)

    def _fire(self) -> None:
        self._handle = None
        self.scheduler.run_due(self.clock.monotonic())
        self.wake()

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def close(self) -> None:
        self._closed = True
        self._cancel()
        self.scheduler.wake = None
