"""One shared 20 ms clock for every outgoing stream; pure, driven by explicit times.

The frame period (20 ms, one RTP packet per stream) is split into `slots` ticks. Each
client (a stream that plays, a mixer, a recorder) is placed in the least loaded slot and
runs once per frame at its slot's tick, with the frame number. Spreading the clients over
the period is what keeps packets on time: 1,000 streams sent in one burst take several
milliseconds, so the last ones would leave late; 100 per 2 ms tick do not.

Clients in one tick run by phase (mixers, then senders, then recorders, then
housekeeping), so a mixer's output is ready before the recorder that writes it.

Rules for late wake-ups (the event loop was busy, the machine stalled):
- tick t is due at `start + t * tick_seconds`; `run_due(now)` runs due ticks in order;
- one wake-up runs the due ticks oldest first, at most `1 + catch_up_per_wake` frames'
  worth (that many ticks per slot), so no client runs more than 1 + catch_up_per_wake
  times in a row (by default one late packet plus the current one, never a burst);
- when that budget runs out with ticks still due, `next_wake` points at the next FUTURE
  tick rather than straight back: a longer backlog is worked off over the following
  periods instead of all at once;
- ticks without clients are passed over freely, they cost nothing;
- when more than `max_late_frames` frames of ticks are pending, the oldest are skipped:
  their clients never see those frames (streams show a timestamp gap, exactly like loss
  on the network, rather than a burst) and `stats.ticks_skipped` counts them.
An idle call subscribes nothing, so its cost here is zero.
"""

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

FRAME_SECONDS = 0.020
PHASE_MIX = 0
PHASE_SEND = 1
PHASE_RECORD = 2
PHASE_HOUSEKEEPING = 3
PHASES = 4
# Floating point: a time a hair before a deadline (from adding up float periods) still
# counts as that deadline.
_EPSILON = 1e-9

logger = logging.getLogger(__name__)


class TickClient(Protocol):
    def on_tick(self, frame: int, now: float) -> None:
        """Produce frame number `frame` (its media time is frame * 20 ms)."""
        ...


@dataclass(slots=True)
class SchedulerStats:
    wakeups: int = 0
    ticks_run: int = 0
    # Ticks run at least one tick length after their deadline: the catch-up.
    ticks_late: int = 0
    ticks_skipped: int = 0
    max_lateness: float = 0.0
    client_errors: int = 0


class TickScheduler:
    def __init__(
        self,
        start: float,
        *,
        frame_seconds: float = FRAME_SECONDS,
        slots: int = 1,
        max_late_frames: int = 3,
        catch_up_per_wake: int = 1,
        early: float = 0.0,
    ) -> None:
        if slots < 1:
            raise ValueError(f"{slots} slots: at least one is needed")
        if max_late_frames < 0 or catch_up_per_wake < 0:
            raise ValueError("late-frame and catch-up limits cannot be negative")
        if not 0 <= early < frame_seconds / slots:
            raise ValueError(f"early {early} s must be under one tick")
        self.start = start
        self.frame_seconds = frame_seconds
        self.slots = slots
        self.tick_seconds = frame_seconds / slots
        self.max_late_frames = max_late_frames
        self.catch_up_per_wake = catch_up_per_wake
        # A tick may run this much before its deadline: real-time timers have millisecond
        # granularity, and a packet leaving 1 ms early does a jitter buffer no more harm
        # than one leaving 1 ms late, while waking twice for it costs a wake-up.
        self.early = early
        self.stats = SchedulerStats()
        # Called when a client is added, so a sleeping real-time driver can wake up.
        self.wake: Callable[[], None] | None = None
        self._next = 0  # the first tick not run yet
        # Set when the first client arrives after an idle spell: the ticks that passed
        # with nobody subscribed are not a backlog.
        self._resync = True
        # Set when a wake-up stopped on its budget with ticks still due: the next wake-up
        # then waits for a future tick instead of coming straight back (the pacing).
        self._paced = False
        self._table: list[list[dict[TickClient, None]]] = [
            [{} for _ in range(PHASES)] for _ in range(slots)
        ]
        self._load = [0] * slots
        self._where: dict[TickClient, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, client: object) -> bool:
        return client in self._where

    def deadline(self, tick: int) -> float:
        return self.start + tick * self.tick_seconds

    def slot_of(self, client: TickClient) -> int:
        return self._where[client][0]

    def subscribe(self, client: TickClient, phase: int = PHASE_SEND) -> None:
        if client in self._where:
            return
        if not 0 <= phase < PHASES:
            raise ValueError(f"phase {phase} is out of range 0-{PHASES - 1}")
        if not self._where:
            self._resync = True
        slot = min(range(self.slots), key=self._load.__getitem__)
        self._table[slot][phase][client] = None
        self._load[slot] += 1
        self._where[client] = (slot, phase)
        if self.wake is not None:
            self.wake()

    def unsubscribe(self, client: TickClient) -> None:
        where = self._where.pop(client, None)
        if where is None:
            return
        slot, phase = where
        del self._table[slot][phase][client]
        self._load[slot] -= 1

    def _due_last(self, now: float) -> int:
        return math.floor((now + self.early - self.start) / self.tick_seconds + _EPSILON)

    def _busy_ticks(self, first: int, count: int) -> int:
        """How many of `count` ticks from `first` fall in slots that have clients."""
        whole, rest = divmod(count, self.slots)
        busy = whole * sum(1 for load in self._load if load)
        return busy + sum(1 for i in range(rest) if self._load[(first + i) % self.slots])

    def run_due(self, now: float) -> int:
        """Run the ticks due at `now` under the rules above; returns how many ran."""
        due_last = self._due_last(now)
        if self._resync:
            self._resync = False
            self._next = max(self._next, due_last)
        if due_last < self._next:
            return 0
        self.stats.wakeups += 1
        backlog = due_last - self._next + 1
        allowed = (self.max_late_frames + 1) * self.slots
        if backlog > allowed:
            skipped = backlog - allowed
            self.stats.ticks_skipped += self._busy_ticks(self._next, skipped)
            self._next += skipped
        budget = (1 + self.catch_up_per_wake) * self.slots
        ran = 0
        while self._next <= due_last and budget:
            tick = self._next
            self._next += 1
            slot = tick % self.slots
            if not self._load[slot]:
                continue
            budget -= 1
            ran += 1
            lateness = now - self.deadline(tick)
            stats = self.stats
            stats.ticks_run += 1
            if lateness >= self.tick_seconds:
                stats.ticks_late += 1
            stats.max_lateness = max(stats.max_lateness, lateness)
            self._run(tick // self.slots, slot, now)
        self._paced = budget == 0 and self._next <= due_last
        return ran

    def _run(self, frame: int, slot: int, now: float) -> None:
        for clients in self._table[slot]:
            if not clients:
                continue
            # A client may unsubscribe itself (a prompt that ended) while the tick runs.
            for client in list(clients):
                try:
                    client.on_tick(frame, now)
                except Exception:
                    # One broken stream must not silence the others: drop it, loudly.
                    logger.exception("media tick client %r failed and was removed", client)
                    self.stats.client_errors += 1
                    self.unsubscribe(client)

    def next_wake(self, now: float) -> float | None:
        """When to call `run_due` next (maybe already past); None when nothing is
        subscribed. After a wake-up that spent its budget, the next future tick: that
        is what paces a catch-up."""
        if not self._where:
            return None
        due_last = self._due_last(now)
        if self._resync:
            # After an idle spell the current tick runs at once (a prompt starts now).
            tick = max(self._next, due_last)
        elif self._paced:
            tick = max(self._next, due_last + 1)
        else:
            tick = self._next
        for _ in range(self.slots):
            if self._load[tick % self.slots]:
                break
            tick += 1
        # Aim inside the early window, not at its edge: a timer that fires a little
        # before the time asked for then still finds the tick due.
        return self.deadline(tick) - self.early / 2
