"""The ACD (automatic call distribution): agents, queues, routing, estimates, statistics.

A pure core: events in, decisions out, time from an injected clock. `Distributor`
is the entry point (its module docstring says which call the signaling layer makes
when); `choose_center` is the resource view across service centers.
"""

from telportal.acd.agents import (
    NO_ANSWER_REASON,
    SIGNED_IN_REASON,
    AgentProfile,
    AgentState,
    AgentView,
)
from telportal.acd.centers import CenterChoice, CenterFigures, SkillLoad, choose_center
from telportal.acd.contacts import ContactKind, ContactState, ContactView
from telportal.acd.decisions import (
    AgentStateChanged,
    Decision,
    Offer,
    OfferCallback,
    Overflow,
    RoutingRecord,
    Withdraw,
)
from telportal.acd.distributor import Distributor
from telportal.acd.errors import (
    IllegalTransition,
    UnknownAgent,
    UnknownContact,
    UnknownObject,
    UnknownQueue,
)
from telportal.acd.estimates import RecentDurations, WaitEstimate, estimate_wait, expected_wait
from telportal.acd.queues import OverflowKind, OverflowTarget, QueueConfig, Strategy
from telportal.acd.skills import SkillNeed, needs_of
from telportal.acd.stats import AgentSnapshot, QueueSnapshot, service_level

__all__ = [
    "NO_ANSWER_REASON",
    "SIGNED_IN_REASON",
    "AgentProfile",
    "AgentSnapshot",
    "AgentState",
    "AgentStateChanged",
    "AgentView",
    "CenterChoice",
    "CenterFigures",
    "ContactKind",
    "ContactState",
    "ContactView",
    "Decision",
    "Distributor",
    "IllegalTransition",
    "Offer",
    "OfferCallback",
    "Overflow",
    "OverflowKind",
    "OverflowTarget",
    "QueueConfig",
    "QueueSnapshot",
    "RecentDurations",
    "RoutingRecord",
    "SkillLoad",
    "SkillNeed",
    "Strategy",
    "UnknownAgent",
    "UnknownContact",
    "UnknownObject",
    "UnknownQueue",
    "WaitEstimate",
    "Withdraw",
    "choose_center",
    "estimate_wait",
    "expected_wait",
    "needs_of",
    "service_level",
]
