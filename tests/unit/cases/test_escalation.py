"""Escalation chains step as configured, in business time, and idempotently."""

from datetime import datetime

import pytest

from telportal.cases import (
    Assign,
    BusinessHours,
    Case,
    Command,
    EscalationChain,
    EscalationStep,
    EscalationTrigger,
    Note,
    Resolve,
    Respond,
    SlaPolicy,
    WaitForCustomer,
    deadlines,
    due_escalations,
    open_case,
    transition,
)
from telportal.errors import Invalid, NotFound
from tests.unit.cases.support import OFFICE, OTHER, T, hours, minutes, office, sh

MON, TUE, WED = "2026-03-02", "2026-03-03", "2026-03-04"
STANDARD = SlaPolicy(T, "standard", hours(2), hours(16))

UNASSIGNED = EscalationChain(
    T,
    "unassigned",
    EscalationTrigger.UNASSIGNED,
    (
        EscalationStep(minutes(30), "department"),
        EscalationStep(hours(1), "supervisor"),
        EscalationStep(hours(2), "manager", reassign=True),
    ),
)
UNTOUCHED = EscalationChain(
    T,
    "untouched",
    EscalationTrigger.UNTOUCHED,
    (EscalationStep(hours(2), "assignee"), EscalationStep(hours(2), "supervisor", reassign=True)),
)
URGENT_BREACH = EscalationChain(
    T,
    "urgent-breach",
    EscalationTrigger.RESOLUTION_BREACHED,
    (EscalationStep(hours(0), "manager"),),
    urgencies=frozenset({"high"}),
)
BREACH = EscalationChain(
    T,
    "breach",
    EscalationTrigger.RESOLUTION_BREACHED,
    (EscalationStep(hours(0), "supervisor"), EscalationStep(hours(4), "manager")),
)
CHAINS = [UNASSIGNED, UNTOUCHED, URGENT_BREACH, BREACH]


def make_case(created: datetime, *commands: tuple[Command, datetime], **fields: str) -> Case:
    case = open_case(T, "c-1", actor="ivr", at=created, **fields).case
    for command, at in commands:
        case = transition(T, case, command, actor="agent-1", at=at).case
    return case


def steps(case: Case, now: datetime, done: set[str] | None = None) -> list[tuple[str, int]]:
    plan = due_escalations(
        T, case, CHAINS, office(), now, done or set(), deadlines(T, case, STANDARD, office())
    )
    return [(e.chain_id, e.level) for e in plan.due]


def test_an_unassigned_case_climbs_the_chain_in_business_time() -> None:
    case = make_case(sh(MON, "10:00"))
    bh = office()
    plan = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "10:15"), set())
    assert (plan.due, plan.next_at) == ((), sh(MON, "10:30"))

    plan = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "10:30"), set())
    (first,) = plan.due
    assert (first.level, first.notify, first.reassign, first.due_at) == (
        1,
        "department",
        False,
        sh(MON, "10:30"),
    )
    assert (first.trigger, first.since) == (EscalationTrigger.UNASSIGNED, sh(MON, "10:00"))
    assert first.key == "tenant-1/c-1/escalation/unassigned/20260302T020000.000000Z/1"
    assert plan.next_at == sh(MON, "11:30")

    plan = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "12:45"), {first.key})
    assert [(e.level, e.notify, e.due_at) for e in plan.due] == [
        (2, "supervisor", sh(MON, "11:30"))
    ]
    assert plan.next_at == sh(MON, "14:30")  # 2 business hours after 11:30, over lunch

    third = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "14:30"), set()).due[-1]
    assert (third.level, third.notify, third.reassign) == (3, "manager", True)


def test_stepping_is_idempotent() -> None:
    case = make_case(sh(MON, "10:00"))
    bh = office()
    once = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "15:00"), set())
    twice = due_escalations(T, case, [UNASSIGNED], bh, sh(MON, "15:00"), set())
    assert once == twice
    assert [e.level for e in once.due] == [1, 2, 3]
    done = {e.key for e in once.due}
    after = due_escalations(T, case, [UNASSIGNED], bh, sh(TUE, "15:00"), done)
    assert (after.due, after.next_at) == ((), None)


def test_assigning_ends_the_unassigned_chain() -> None:
    case = make_case(sh(MON, "10:00"), (Assign("agent-1"), sh(MON, "10:40")))
    plan = due_escalations(T, case, [UNASSIGNED], office(), sh(MON, "17:00"), set())
    assert (plan.due, plan.next_at) == ((), None)


def test_an_untouched_case_starts_a_new_episode_when_touched() -> None:
    case = make_case(sh(MON, "10:00"), (Assign("agent-1"), sh(MON, "10:00")))
    bh = office()
    plan = due_escalations(T, case, [UNTOUCHED], bh, sh(MON, "12:00"), set())
    assert [(e.level, e.notify, e.due_at) for e in plan.due] == [(1, "assignee", sh(MON, "12:00"))]
    assert plan.next_at == sh(MON, "15:00")
    old_key = plan.due[0].key

    touched = transition(T, case, Note("checked the order"), actor="a", at=sh(MON, "13:00")).case
    plan = due_escalations(T, touched, [UNTOUCHED], bh, sh(MON, "14:00"), {old_key})
    assert (plan.due, plan.next_at) == ((), sh(MON, "15:00"))
    plan = due_escalations(T, touched, [UNTOUCHED], bh, sh(TUE, "10:00"), {old_key})
    assert [(e.level, e.since, e.due_at) for e in plan.due] == [
        (1, sh(MON, "13:00"), sh(MON, "15:00")),
        (2, sh(MON, "13:00"), sh(MON, "17:00")),
    ]
    assert old_key not in {e.key for e in plan.due}


def test_a_breached_case_escalates_from_its_due_instant() -> None:
    case = make_case(
        sh(MON, "10:00"), (Assign("agent-1"), sh(MON, "10:00")), (Respond(), sh(MON, "10:30"))
    )
    chains = [BREACH]
    bh = office()
    sla = deadlines(T, case, STANDARD, bh)  # resolution due Wednesday 10:00
    plan = due_escalations(T, case, chains, bh, sh(WED, "09:59"), set(), sla)
    assert (plan.due, plan.next_at) == ((), None)  # no breach yet: nothing to wait for
    plan = due_escalations(T, case, chains, bh, sh(WED, "10:00"), set(), sla)
    assert [(e.notify, e.since, e.due_at) for e in plan.due] == [
        ("supervisor", sh(WED, "10:00"), sh(WED, "10:00"))
    ]
    assert plan.next_at == sh(WED, "15:00")
    # without SLA deadlines, breach chains never fire
    assert due_escalations(T, case, chains, bh, sh(WED, "16:00"), set()).due == ()


def test_the_first_matching_chain_of_a_trigger_applies() -> None:
    urgent = make_case(
        sh(MON, "10:00"),
        (Assign("agent-1"), sh(MON, "10:00")),
        (Respond(), sh(MON, "10:30")),
        urgency="high",
    )
    normal = make_case(
        sh(MON, "10:00"), (Assign("agent-1"), sh(MON, "10:00")), (Respond(), sh(MON, "10:30"))
    )
    later = sh(WED, "10:30")
    breach = {"urgent-breach", "breach"}
    assert [s for s in steps(urgent, later) if s[0] in breach] == [("urgent-breach", 1)]
    assert [s for s in steps(normal, later) if s[0] in breach] == [("breach", 1)]


def test_no_escalation_while_waiting_or_after_resolution() -> None:
    base: list[tuple[Command, datetime]] = [
        (Assign("agent-1"), sh(MON, "10:00")),
        (Respond(), sh(MON, "10:10")),
    ]
    waiting = make_case(sh(MON, "10:00"), *base, (WaitForCustomer(), sh(MON, "10:20")))
    resolved = make_case(sh(MON, "10:00"), *base, (Resolve(), sh(MON, "10:20")))
    for case in (waiting, resolved):
        assert steps(case, sh(WED, "17:00")) == []


def test_after_a_restart_every_overdue_step_comes_out_once_in_order() -> None:
    case = make_case(sh(MON, "10:00"))
    plan = due_escalations(
        T, case, CHAINS, office(), sh(WED, "17:00"), set(), deadlines(T, case, STANDARD, office())
    )
    assert [(e.chain_id, e.level, e.due_at) for e in plan.due] == [
        ("unassigned", 1, sh(MON, "10:30")),
        ("unassigned", 2, sh(MON, "11:30")),
        ("untouched", 1, sh(MON, "12:00")),
        ("unassigned", 3, sh(MON, "14:30")),
        ("untouched", 2, sh(MON, "15:00")),
        ("breach", 1, sh(WED, "10:00")),
        ("breach", 2, sh(WED, "15:00")),
    ]
    assert len({e.key for e in plan.due}) == 7


def test_chains_are_checked_and_per_tenant() -> None:
    with pytest.raises(Invalid, match="no steps"):
        EscalationChain(T, "empty", EscalationTrigger.UNTOUCHED, ())
    with pytest.raises(Invalid, match="negative"):
        EscalationChain(
            T, "neg", EscalationTrigger.UNTOUCHED, (EscalationStep(-hours(1), "supervisor"),)
        )
    case = make_case(sh(MON, "10:00"))
    with pytest.raises(NotFound):
        due_escalations(OTHER, case, [], BusinessHours(OTHER, OFFICE), sh(MON, "11:00"), set())
    stranger = EscalationChain(OTHER, "x", EscalationTrigger.UNTOUCHED, UNTOUCHED.steps)
    with pytest.raises(Invalid, match="another tenant"):
        due_escalations(T, case, [stranger], office(), sh(MON, "11:00"), set())
