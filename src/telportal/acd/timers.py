"""What the distributor's deadlines are for (ring timeouts, wrap-up ends, maximum
waits); they live on one `telportal.timer_heap.TimerHeap`."""

from dataclasses import dataclass
from enum import Enum

from telportal.timer_heap import TimerEntry, TimerHeap

__all__ = ["Due", "DueKind", "TimerEntry", "TimerHeap"]


class DueKind(Enum):
    RING_TIMEOUT = "ring_timeout"
    WRAP_UP_END = "wrap_up_end"
    MAX_WAIT = "max_wait"


@dataclass(frozen=True, slots=True)
class Due:
    """What a deadline of the distributor is for."""

    kind: DueKind
    tenant_id: str
    contact_id: str = ""
    agent_id: str = ""
