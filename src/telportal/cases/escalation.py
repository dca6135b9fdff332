"""Escalation chains: cases nobody moves find their way up by themselves (MISSION M10-M11).

A tenant configures chains. Each has a trigger and steps; a step names whom to tell
(a role such as `assignee`, `supervisor`, `manager`, or a user id), whether the case is
also handed to them, and a delay in business time after the previous step (the first
step: after the trigger began). The triggers, and when each began:

    trigger                    holds while                              began at
    -------------------------  ---------------------------------------  -------------------
    unassigned                 open, no assignee                        the case's creation
    untouched                  open, no event of any kind since         the last event
    first_response_breached    the first-response target is breached    its due instant
    resolution_breached        the resolution target is breached        its due instant

No trigger holds while the case waits on the customer: nobody on our side can move it,
and the SLA clocks are stopped too. When several chains have the same trigger, the first
whose filters (services, categories, urgencies; empty: any) match the case applies.

**Idempotent stepping.** `due_escalations` is a pure function of the case, the
configuration, the time and the keys already done; it returns every step due by `now`
that is not done, in order, plus when the next one will be due. Each step's key is
`<tenant>/<case>/escalation/<chain>/<episode start>/<level>`: calling again returns the
same steps with the same keys, so stepping twice records nothing twice. The episode
start is the instant the trigger began, so an untouched case that is touched and then
left alone again starts a new episode from level 1. After a restart the overdue steps
all come out at once, oldest first. Escalation records are not case events: the
adapter must not record them as notes (that would touch the case and end the episode);
a step with `reassign` is carried out with `lifecycle.Assign`, which does.
"""

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from telportal.cases.business_time import BusinessHours
from telportal.cases.lifecycle import Case, CaseState
from telportal.cases.sla import SlaDeadlines
from telportal.errors import Invalid, NotFound


class EscalationTrigger(StrEnum):
    UNASSIGNED = "unassigned"
    UNTOUCHED = "untouched"
    FIRST_RESPONSE_BREACHED = "first_response_breached"
    RESOLUTION_BREACHED = "resolution_breached"


_TRIGGER_ORDER = {trigger: i for i, trigger in enumerate(EscalationTrigger)}


@dataclass(frozen=True, slots=True)
class EscalationStep:
    after: timedelta
    """Business time after the previous step (the first step: after the trigger began)."""
    notify: str
    """A role (`assignee`, `supervisor`, `manager`, ...) or a user id; the adapter resolves it."""
    reassign: bool = False
    """Also hand the case to whom `notify` names."""


@dataclass(frozen=True, slots=True)
class EscalationChain:
    tenant_id: str
    chain_id: str
    trigger: EscalationTrigger
    steps: tuple[EscalationStep, ...]
    services: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    urgencies: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.steps:
            raise Invalid("steps", f"chain {self.chain_id} has no steps")
        if any(step.after < timedelta(0) for step in self.steps):
            raise Invalid("steps", f"chain {self.chain_id}: a delay cannot be negative")

    def matches(self, case: Case) -> bool:
        return (
            (not self.services or case.service in self.services)
            and (not self.categories or case.category in self.categories)
            and (not self.urgencies or case.urgency in self.urgencies)
        )


@dataclass(frozen=True, slots=True)
class Escalation:
    """One step that came due: the adapter notifies (and maybe reassigns) and stores it."""

    tenant_id: str
    case_id: str
    chain_id: str
    trigger: EscalationTrigger
    level: int
    """1 for the chain's first step."""
    notify: str
    reassign: bool
    since: datetime
    """When the trigger began (the episode start)."""
    due_at: datetime
    key: str


@dataclass(frozen=True, slots=True)
class EscalationPlan:
    due: tuple[Escalation, ...]
    """Steps due by `now` and not yet done, oldest first."""
    next_at: datetime | None
    """When the next step falls due if nothing changes; the adapter's wake-up."""


_WAITING = CaseState.WAITING_ON_CUSTOMER


def trigger_starts(
    case: Case, sla: SlaDeadlines | None, now: datetime
) -> dict[EscalationTrigger, datetime]:
    """The triggers holding at `now` and when each began (the table above)."""
    if not case.is_open or case.state is _WAITING:
        return {}
    starts: dict[EscalationTrigger, datetime] = {EscalationTrigger.UNTOUCHED: case.updated_at}
    if not case.assignee:
        starts[EscalationTrigger.UNASSIGNED] = case.created_at
    if sla is not None:
        for deadline, trigger in (
            (sla.first_response, EscalationTrigger.FIRST_RESPONSE_BREACHED),
            (sla.resolution, EscalationTrigger.RESOLUTION_BREACHED),
        ):
            if (
                deadline is not None
                and deadline.done_at is None
                and deadline.due_at is not None
                and deadline.due_at <= now
            ):
                starts[trigger] = deadline.due_at
    return starts


def due_escalations(
    tenant_id: str,
    case: Case,
    chains: Sequence[EscalationChain],
    hours: BusinessHours,
    now: datetime,
    done: Container[str],
    sla: SlaDeadlines | None = None,
) -> EscalationPlan:
    """The escalation steps due at `now` (not in `done`), and when the next one is.

    `sla` is the case's `sla.deadlines(...)` (None: no policy, breach chains never fire).
    The breach triggers are judged at `now`, so a breach chain's `next_at` is None until
    the breach happens; the adapter's SLA breach alert is the moment to call again.
    """
    if case.tenant_id != tenant_id:
        raise NotFound("case")
    if hours.tenant_id != tenant_id or any(c.tenant_id != tenant_id for c in chains):
        raise Invalid("chains", "a chain or the calendar belongs to another tenant")
    starts = trigger_starts(case, sla, now)
    due: list[Escalation] = []
    upcoming: list[datetime] = []
    for trigger, since in starts.items():
        chain = _chain_for(chains, trigger, case)
        if chain is None:
            continue
        for escalation in _steps(tenant_id, case, chain, hours, since):
            if escalation.due_at > now:
                upcoming.append(escalation.due_at)
                break  # later steps of the chain are later still
            if escalation.key not in done:
                due.append(escalation)
    due.sort(key=lambda e: (e.due_at, _TRIGGER_ORDER[e.trigger], e.level))
    return EscalationPlan(tuple(due), min(upcoming, default=None))


def _chain_for(
    chains: Iterable[EscalationChain], trigger: EscalationTrigger, case: Case
) -> EscalationChain | None:
    return next((c for c in chains if c.trigger is trigger and c.matches(case)), None)


def _steps(
    tenant_id: str, case: Case, chain: EscalationChain, hours: BusinessHours, since: datetime
) -> Iterable[Escalation]:
    due_at = since
    for level, step in enumerate(chain.steps, start=1):
        # Each delay counts from the previous step's due instant: business-time addition
        # is associative, so this is also `since` plus the sum of the delays.
        due_at = hours.add(due_at, step.after)
        key = escalation_key(tenant_id, case.case_id, chain.chain_id, since, level)
        yield Escalation(
            tenant_id,
            case.case_id,
            chain.chain_id,
            chain.trigger,
            level,
            step.notify,
            step.reassign,
            since,
            due_at,
            key,
        )


def escalation_key(tenant_id: str, case_id: str, chain_id: str, since: datetime, level: int) -> str:
    # The episode start in UTC, so the same instant gives the same key in any zone.
    stamp = since.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{tenant_id}/{case_id}/escalation/{chain_id}/{stamp}/{level}"
