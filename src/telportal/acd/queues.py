"""Queues: their configuration (data), and the runtime lists the distributor keeps.

A queue's waiting contacts are split into pools by what they need (the queue's
skills merged with the contact's own). A pool knows which signed-in members of the
queue meet its needs, and keeps two sorted lists: its waiting contacts (best first)
and its free agents (in the order the queue's strategy prefers). The distributor
keeps one rule: a pool never has both a waiting contact and a free agent. So a
contact that arrives looks at one list of one pool, and an agent that comes free
looks at the heads of the pools it belongs to: no decision scans all contacts or
all agents.
"""

from dataclasses import dataclass
from enum import StrEnum

from telportal.acd.agents import AgentKey
from telportal.acd.contacts import AgeKey, ContactKey
from telportal.acd.estimates import RecentDurations
from telportal.acd.ordering import SortedKeys
from telportal.acd.skills import Needs
from telportal.acd.stats import QueueTally
from telportal.errors import Invalid


class Strategy(StrEnum):
    """How a queue chooses among free agents (the API's `QueueStrategy` is this)."""

    LONGEST_IDLE = "longest_idle"
    LEAST_CALLS = "least_calls"
    SKILLS_WEIGHTED = "skills_weighted"
    ROUND_ROBIN = "round_robin"
    RING_ALL = "ring_all"


class OverflowKind(StrEnum):
    QUEUE = "queue"
    SERVICE = "service"
    VOICEMAIL = "voicemail"
    CALLBACK = "callback"
    SUPERVISOR = "supervisor"


@dataclass(frozen=True, slots=True)
class OverflowTarget:
    """Where a contact goes when it has waited too long or the queue is full.

    Only a queue target is acted on by the ACD (the contact moves there); for the
    others the caller receives an `Overflow` decision and does the work.
    """

    kind: OverflowKind
    ref: str


@dataclass(frozen=True, slots=True)
class QueueConfig:
    tenant_id: str
    queue_id: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    priority: int = 0
    """Among queues an agent answers, a higher one is served first."""
    skills: Needs = frozenset()
    """What every contact of the queue needs."""
    ring_timeout: float = 20.0
    wrap_up: float = 10.0
    max_wait: float | None = None
    max_size: int | None = None
    overflow: OverflowTarget | None = None
    service_level_seconds: float = 20.0
    callback_max_wait: float | None = None
    """How long a queued callback may wait; None: until an agent is free."""

    def __post_init__(self) -> None:
        if self.ring_timeout <= 0:
            raise Invalid("ring_timeout", "must be positive")
        if self.wrap_up < 0:
            raise Invalid("wrap_up", "must not be negative")
        if self.max_wait is not None and self.max_wait <= 0:
            raise Invalid("max_wait", "must be positive")
        if self.callback_max_wait is not None and self.callback_max_wait <= 0:
            raise Invalid("callback_max_wait", "must be positive")
        if self.max_size is not None and self.max_size < 1:
            raise Invalid("max_size", "must be at least 1")
        if self.service_level_seconds < 0:
            raise Invalid("service_level_seconds", "must not be negative")
        if self.overflow is not None and self.overflow == OverflowTarget(
            OverflowKind.QUEUE, self.queue_id
        ):
            raise Invalid("overflow", "a queue cannot overflow to itself")


class QueueState:
    __slots__ = (
        "answer_waits",
        "by_age",
        "config",
        "contacts",
        "handle_times",
        "last_order",
        "merged",
        "pools",
        "tally",
        "waiting",
    )

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self.pools: dict[Needs, Pool] = {}
        self.merged: dict[Needs, Needs] = {}  # a contact's needs -> with the queue's added
        self.waiting: SortedKeys[ContactKey] = SortedKeys()
        self.by_age: SortedKeys[AgeKey] = SortedKeys()
        self.contacts: set[str] = set()  # every live contact of the queue, in any state
        self.last_order = -1  # round robin: the order of the agent offered last
        self.tally = QueueTally()
        self.handle_times = RecentDurations()
        self.answer_waits = RecentDurations()

    @property
    def queue_id(self) -> str:
        return self.config.queue_id


class Pool:
    """The contacts of one queue that need the same skills, and the agents who have them."""

    __slots__ = ("eligible", "needs", "queue", "ready", "waiting")

    def __init__(self, queue: QueueState, needs: Needs) -> None:
        self.queue = queue
        self.needs = needs
        self.eligible: set[str] = set()  # signed-in members who meet the needs
        self.waiting: SortedKeys[ContactKey] = SortedKeys()
        self.ready: SortedKeys[AgentKey] = SortedKeys()
