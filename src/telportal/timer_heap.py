"""Deadlines for thousands of timers: a binary heap with cheap cancellation.

Shared by the SIP transaction layer (timers A-K) and the ACD (ring timeouts, wrap-up
ends, maximum waits); it depends on nothing else. Cancelling marks an entry dead
instead of searching the heap for it; dead entries are skipped when they reach the
top, and the heap is rebuilt without them once they are more than a quarter of it,
so memory stays proportional to the live timers (asyncio's event loop does the same
for its scheduled callbacks, at half). A quarter, because the SIP layer cancels a 32 s
Timer F or B for nearly every transaction: at half, a heap of SIP timers held nearly as
many dead entries as live ones, each two objects for the garbage collector to walk
(decision 0023). Rebuilding is linear, after a quarter of the heap's size of
cancellations: still a few steps a cancellation.

A cancelled entry lets go of its payload at once. Until it reaches the top of the heap
a dead entry still takes a slot, but it no longer keeps what the payload refers to
alive: for the SIP layer that is a whole transaction, and Timer F or B is armed for 32
seconds and cancelled by nearly every response.
"""

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")


class TimerEntry(Generic[T]):
    __slots__ = ("_payload", "alive", "deadline")

    def __init__(self, deadline: float, payload: T) -> None:
        self.deadline = deadline
        self._payload: T | None = payload
        self.alive = True

    @property
    def payload(self) -> T:
        """What the timer is for; LookupError once the entry has been cancelled."""
        payload = self._payload
        if payload is None:
            raise LookupError("a cancelled timer has no payload")
        return payload


class TimerHeap(Generic[T]):
    __slots__ = ("_dead", "_heap", "_sequence")

    def __init__(self) -> None:
        # (deadline, sequence, entry): tuples compare in C, and the sequence number makes
        # equal deadlines fire in the order they were armed, never comparing entries.
        self._heap: list[tuple[float, int, TimerEntry[T]]] = []
        self._dead = 0
        self._sequence = 0

    def push(self, deadline: float, payload: T) -> TimerEntry[T]:
        self._sequence += 1
        entry = TimerEntry(deadline, payload)
        heapq.heappush(self._heap, (deadline, self._sequence, entry))
        return entry

    def cancel(self, entry: TimerEntry[T] | None) -> None:
        """Cancel an entry; cancelling None, a fired or a cancelled entry does nothing."""
        if entry is None or not entry.alive:
            return
        entry.alive = False
        entry._payload = None
        self._dead += 1
        if self._dead * 4 > len(self._heap):
            self._heap = [item for item in self._heap if item[2].alive]
            heapq.heapify(self._heap)
            self._dead = 0

    def next_deadline(self) -> float | None:
        heap = self._heap
        while heap and not heap[0][2].alive:
            heapq.heappop(heap)
            self._dead -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> TimerEntry[T] | None:
        """The earliest live entry due at now, removed; None when none is due."""
        deadline = self.next_deadline()
        if deadline is None or deadline > now:
            return None
        entry = heapq.heappop(self._heap)[2]
        entry.alive = False
        return entry

    def __len__(self) -> int:
        """Live entries."""
        return len(self._heap) - self._dead

    @property
    def size(self) -> int:
        """Entries held, dead ones included: what the heap costs in memory."""
        return len(self._heap)
