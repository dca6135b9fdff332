"""Helpers for the ACD tests: a distributor on a fake clock and short ways to say things."""

from collections.abc import Iterable, Sequence
from typing import Any

from telportal.acd import (
    AgentProfile,
    AgentStateChanged,
    ContactView,
    Decision,
    Distributor,
    Offer,
    OfferCallback,
    Overflow,
    QueueConfig,
    SkillNeed,
    Strategy,
    Withdraw,
)
from telportal.clock import FakeClock

T = "tenant-1"


def make() -> tuple[FakeClock, Distributor]:
    clock = FakeClock()
    return clock, Distributor(clock)


def queue(
    queue_id: str = "sales",
    *,
    tenant_id: str = T,
    skills: Iterable[SkillNeed] = (),
    **options: Any,
) -> QueueConfig:
    return QueueConfig(tenant_id, queue_id, skills=frozenset(skills), **options)


def agent(
    agent_id: str,
    *,
    queues: Sequence[str] = ("sales",),
    skills: dict[str, int] | None = None,
    tenant_id: str = T,
    capacity: int = 1,
    wrap_up: float | None = None,
) -> AgentProfile:
    return AgentProfile(
        tenant_id,
        agent_id,
        skills or {},
        frozenset(queues),
        capacity=capacity,
        wrap_up=wrap_up,
        endpoints=(f"sip:{agent_id}@phones",),
    )


def offers(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    """(contact, agent) of every Offer, in order."""
    return [(d.contact_id, d.agent_id) for d in decisions if isinstance(d, Offer)]


def callbacks(decisions: Sequence[Decision]) -> list[OfferCallback]:
    return [d for d in decisions if isinstance(d, OfferCallback)]


def withdrawals(decisions: Sequence[Decision]) -> list[tuple[str, str, str]]:
    return [(d.contact_id, d.agent_id, d.reason) for d in decisions if isinstance(d, Withdraw)]


def overflows(decisions: Sequence[Decision]) -> list[Overflow]:
    return [d for d in decisions if isinstance(d, Overflow)]


def state_changes(decisions: Sequence[Decision]) -> list[tuple[str, str]]:
    return [(d.agent_id, d.state.value) for d in decisions if isinstance(d, AgentStateChanged)]


def staffed(
    distributor: Distributor,
    *agent_ids: str,
    strategy: Strategy = Strategy.LONGEST_IDLE,
    **options: Any,
) -> None:
    """One queue `sales` with the given agents signed in and ready, in that order."""
    distributor.configure_queue(queue(strategy=strategy, **options))
    for agent_id in agent_ids:
        distributor.sign_in(agent(agent_id), ready=True)


def live(distributor: Distributor, contact_id: str) -> ContactView:
    """A contact that must still be in the ACD."""
    view = distributor.contact(T, contact_id)
    assert view is not None, f"{contact_id} has left the ACD"
    return view
