"""What the ACD decides, as data: the caller carries each decision out and may store it.

decision             the caller should
-------------------  ------------------------------------------------------------------
Offer                ring the agent (for ring all: one Offer per agent, same record)
OfferCallback        call the agent first; when the agent answers, call the customer
Withdraw             stop ringing the agent (answered elsewhere, abandoned, timed out,
                     signed out): the offer no longer exists
Overflow             the contact left its queue; if `moved_to` is set the ACD already
                     placed it in that queue, otherwise the caller takes it to `target`
                     (or, with no target, does what the service says: voicemail, a
                     message, hang up)
AgentStateChanged    tell the desktop and the supervisors
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from telportal.acd.agents import AgentState
from telportal.acd.queues import OverflowTarget, Strategy
from telportal.acd.skills import Needs

Trigger = Literal["contact_arrived", "agent_free", "requeued"]
WithdrawReason = Literal["answered_elsewhere", "abandoned", "no_answer", "signed_out"]
OverflowReason = Literal["max_wait", "queue_full"]


@dataclass(frozen=True, slots=True)
class RoutingRecord:
    """Why a contact went to an agent: the figures the choice was made on."""

    tenant_id: str
    queue_id: str
    contact_id: str
    agent_ids: tuple[str, ...]
    trigger: Trigger
    strategy: Strategy
    needs: Needs
    free_agents: int
    """Agents free for these needs at the moment of choice, the chosen ones included."""
    waiting: int
    """Contacts waiting in the queue at the moment of choice, this one included if it was."""
    longest_wait: float
    contact_wait: float
    decided_at: datetime


@dataclass(frozen=True, slots=True)
class Offer:
    tenant_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    endpoints: tuple[str, ...]
    ring_timeout: float
    ring_all: bool
    record: RoutingRecord


@dataclass(frozen=True, slots=True)
class OfferCallback:
    tenant_id: str
    contact_id: str
    agent_id: str
    queue_id: str
    endpoints: tuple[str, ...]
    number: str
    ring_timeout: float
    record: RoutingRecord


@dataclass(frozen=True, slots=True)
class Withdraw:
    tenant_id: str
    contact_id: str
    agent_id: str
    reason: WithdrawReason


@dataclass(frozen=True, slots=True)
class Overflow:
    tenant_id: str
    contact_id: str
    queue_id: str
    reason: OverflowReason
    target: OverflowTarget | None
    moved_to: str | None
    waited: float
    callback_number: str | None


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    tenant_id: str
    agent_id: str
    state: AgentState
    reason: str | None


Decision = Offer | OfferCallback | Withdraw | Overflow | AgentStateChanged
