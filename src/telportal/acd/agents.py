"""Agents: their profile (data the caller gives), their state, and the rules between states.

An agent's state is derived from what the agent holds, so that an agent with room for
several contacts (chat) still has exactly one state. In order of precedence:

    state        holds / chose                              may be offered a contact
    -----------  -----------------------------------------  ---------------------------------
    signed out   -                                          no
    ringing      at least one offer (reserved for it)       if ready, reachable, room left
    talking      at least one connected contact             if ready, reachable, room left
    wrap up      a wrap-up deadline (after the last call)   no
    not ready    chose not ready (a reason code), or missed no
                 an offer ("no-answer")
    ready        nothing                                    when reachable

    event                 allowed when                 effect
    --------------------  ---------------------------  -----------------------------------
    sign in               signed out (or never seen)   not ready ("signed-in"), or ready
    sign out              signed in, not talking       offers withdrawn, wrap-up closed
    ready / not ready     signed in                    the agent's choice; offers and calls
                                                       are kept
    offer                 may be offered               ringing
    accept                holds that offer             talking; one more call today
    offer failed          holds that offer             not ready (reason given, "no-answer")
    contact ended         connected to that contact    wrap up, or at once free when the
                                                       wrap-up time is 0
    wrap-up ends (timer)  wrap up                      ready or not ready, as chosen
    end wrap-up (early)   wrap up                      the same, now

`reachable` is the signaling layer's: false while the agent's only endpoint is a SIP
phone that is not registered. An unreachable agent keeps its state but is never offered.
Anything else raises `IllegalTransition` naming the agent, its state and the event.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from telportal.acd.errors import IllegalTransition
from telportal.acd.skills import check_levels
from telportal.acd.timers import Due, TimerEntry
from telportal.errors import Invalid

if TYPE_CHECKING:
    from telportal.acd.queues import Pool, QueueState

SIGNED_IN_REASON = "signed-in"
NO_ANSWER_REASON = "no-answer"

AgentKey = tuple[float, float, int, str]
"""An agent's place in a ready list: (primary, secondary, order, agent id); see strategies."""


class AgentState(StrEnum):
    SIGNED_OUT = "signed_out"
    READY = "ready"
    NOT_READY = "not_ready"
    RINGING = "ringing"
    TALKING = "talking"
    WRAP_UP = "wrap_up"


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """Who the agent is, as the caller's configuration says; the ACD never changes it."""

    tenant_id: str
    agent_id: str
    skills: Mapping[str, int] = field(default_factory=dict)
    """Skill name to proficiency, 1 (novice) to 10 (expert)."""
    queues: frozenset[str] = frozenset()
    """The queues the agent answers."""
    capacity: int = 1
    """Contacts held at once (offered or connected): 1 for voice, more for chat."""
    wrap_up: float | None = None
    """Seconds of wrap-up after a contact; None takes the queue's."""
    kinds: frozenset[str] = frozenset()
    """Agent kinds (ordinary, expert, supervisor, mobile, ...): data for the caller."""
    endpoints: tuple[str, ...] = ()
    """Where to ring the agent (a phone, a mobile number): data for the caller."""

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise Invalid("capacity", "an agent holds at least one contact")
        if self.wrap_up is not None and self.wrap_up < 0:
            raise Invalid("wrap_up", "must not be negative")
        check_levels(self.skills)


@dataclass(frozen=True, slots=True)
class AgentView:
    """An agent as the ACD sees it now."""

    tenant_id: str
    agent_id: str
    state: AgentState
    reason: str | None
    reachable: bool
    capacity: int
    offers: frozenset[str]
    connected: frozenset[str]
    wrap_up_until: float | None
    available: bool
    """Would be offered a contact now (ready, reachable, room left, not wrapping up)."""
    calls_today: int


class Agent:
    """The ACD's record of one agent; the distributor keeps its indexes in step."""

    __slots__ = (
        "agent_id",
        "available_since",
        "calls_today",
        "connected",
        "listed",
        "offers",
        "order",
        "pools",
        "profile",
        "reachable",
        "ready",
        "ready_keys",
        "reason",
        "reported",
        "reported_reason",
        "signed_in",
        "wrap_pending",
        "wrap_timer",
        "wrap_until",
    )

    def __init__(self, profile: AgentProfile, order: int, now: float) -> None:
        self.profile = profile
        self.agent_id = profile.agent_id  # profiles change, the id never does
        self.order = order  # stable per tenant: round robin goes round in this order
        self.signed_in = False
        self.ready = False
        self.reason: str | None = None
        self.reachable = True
        self.offers: set[str] = set()
        self.connected: set[str] = set()
        self.wrap_until: float | None = None
        self.wrap_timer: TimerEntry[Due] | None = None
        # (queue, talk seconds, ended at) of each contact the wrap-up belongs to
        self.wrap_pending: list[tuple[QueueState, float, float]] = []
        self.calls_today = 0
        self.available_since = now
        self.pools: list[Pool] = []
        self.listed = False  # in the ready lists of its pools
        self.ready_keys: list[tuple[Pool, AgentKey]] = []
        self.reported = AgentState.SIGNED_OUT  # what the caller was last told
        self.reported_reason: str | None = None

    @property
    def load(self) -> int:
        return len(self.offers) + len(self.connected)

    @property
    def state(self) -> AgentState:
        if not self.signed_in:
            return AgentState.SIGNED_OUT
        if self.offers:
            return AgentState.RINGING
        if self.connected:
            return AgentState.TALKING
        if self.wrap_until is not None:
            return AgentState.WRAP_UP
        return AgentState.READY if self.ready else AgentState.NOT_READY

    def can_take(self) -> bool:
        return (
            self.signed_in
            and self.ready
            and self.reachable
            and self.wrap_until is None
            and len(self.offers) + len(self.connected) < self.profile.capacity
        )

    def staffed(self) -> bool:
        """Counts as serving its queues: signed in, reachable, and ready or busy."""
        return self.signed_in and self.reachable and (self.ready or self.load > 0)

    def refuse(self, event: str) -> IllegalTransition:
        return IllegalTransition(f"agent {self.agent_id}", self.state, event)

    def require_signed_in(self, event: str) -> None:
        if not self.signed_in:
            raise self.refuse(event)

    def view(self) -> AgentView:
        return AgentView(
            self.profile.tenant_id,
            self.agent_id,
            self.state,
            self.reason,
            self.reachable,
            self.profile.capacity,
            frozenset(self.offers),
            frozenset(self.connected),
            self.wrap_until,
            self.can_take(),
            self.calls_today,
        )
