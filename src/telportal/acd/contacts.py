"""Contacts: a call (or a callback request) from the moment it reaches a queue until it
leaves the ACD.

    state      event                              next
    ---------  ---------------------------------  -----------------------------------------
    arriving   an eligible agent is free          offered
    arriving   none free, the queue is full       overflowed (as below)
    arriving   none free                          waiting
    waiting    an eligible agent is free          offered (one agent; all under ring-all)
    waiting    converted to a callback            waiting, same place, kind callback
    waiting    maximum wait                       overflowed: arriving in the target queue,
                                                  or gone (the caller acts on the target)
    waiting    abandoned                          finished
    offered    accepted by one agent              connected; any other offers withdrawn
    offered    every offer failed or timed out    offered to another free agent; else
                                                  overflowed if past its maximum wait; else
                                                  waiting with its old key (its old place)
    offered    abandoned                          finished; offers withdrawn
    connected  ended                              finished; the agent wraps up

A contact is in exactly one of these places at a time; finished contacts are forgotten.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from telportal.acd.errors import IllegalTransition
from telportal.acd.skills import Needs
from telportal.acd.timers import Due, TimerEntry

if TYPE_CHECKING:
    from telportal.acd.queues import Pool, QueueState

ContactKey = tuple[int, float, int, str]
"""Place in a waiting list: (-priority, enqueued at, sequence, contact id)."""
AgeKey = tuple[float, int, str]
"""Place by age alone, for the longest wait: (enqueued at, sequence, contact id)."""


class ContactKind(StrEnum):
    CALL = "call"
    CALLBACK = "callback"


class ContactState(StrEnum):
    NEW = "new"  # arriving in a queue; never seen outside a distributor call
    WAITING = "waiting"
    OFFERED = "offered"
    CONNECTED = "connected"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class ContactView:
    tenant_id: str
    contact_id: str
    queue_id: str
    kind: ContactKind
    state: ContactState
    priority: int
    """The effective priority: the contact's own plus the customer's importance."""
    needs: Needs
    offers: frozenset[str]
    agent_id: str | None
    enqueued_at: float
    arrived_at: float
    callback_number: str | None


class Contact:
    __slots__ = (
        "age_key",
        "agent_id",
        "answered_at",
        "arrived_at",
        "callback_number",
        "contact_id",
        "deadline",
        "deadline_timer",
        "enqueued_at",
        "importance",
        "key",
        "kind",
        "max_wait",
        "needs",
        "offers",
        "own_needs",
        "pool",
        "priority",
        "queue",
        "state",
        "tenant_id",
        "visited",
    )

    def __init__(
        self,
        tenant_id: str,
        contact_id: str,
        queue: "QueueState",
        priority: int,
        importance: int,
        own_needs: Needs,
        max_wait: float | None,
        now: float,
    ) -> None:
        self.tenant_id = tenant_id
        self.contact_id = contact_id
        self.queue = queue
        self.priority = priority
        self.importance = importance
        self.own_needs = own_needs
        self.max_wait = max_wait  # the caller's limit (an IVR queue step's); else the queue's
        self.kind = ContactKind.CALL
        self.callback_number: str | None = None
        self.state = ContactState.NEW
        self.arrived_at = now
        self.enqueued_at = now
        self.needs: Needs = own_needs
        self.pool: Pool | None = None
        self.key: ContactKey = (0, now, 0, contact_id)
        self.age_key: AgeKey = (now, 0, contact_id)
        self.deadline: float | None = None
        self.deadline_timer: TimerEntry[Due] | None = None
        self.offers: dict[str, TimerEntry[Due]] = {}
        self.agent_id: str | None = None
        self.answered_at = 0.0
        self.visited: set[str] = set()

    @property
    def effective_priority(self) -> int:
        return self.priority + self.importance

    def refuse(self, event: str) -> IllegalTransition:
        return IllegalTransition(f"contact {self.contact_id}", self.state, event)

    def view(self) -> ContactView:
        return ContactView(
            self.tenant_id,
            self.contact_id,
            self.queue.config.queue_id,
            self.kind,
            self.state,
            self.effective_priority,
            self.needs,
            frozenset(self.offers),
            self.agent_id,
            self.enqueued_at,
            self.arrived_at,
            self.callback_number,
        )
