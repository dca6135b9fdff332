"""SLA policies: precedence, deadlines in business time, warning and breach, pauses.

The office calendar (support.py) is open 09:00-12:00 and 13:00-18:00 on weekdays in
Shanghai, 8 business hours a day; 2026-03-02 is a Monday.
"""

from datetime import datetime

import pytest

from telportal.cases import (
    Assign,
    BusinessHours,
    Case,
    Command,
    CustomerReplied,
    Reopen,
    Resolve,
    Respond,
    SlaPolicy,
    SlaState,
    Start,
    WaitForCustomer,
    business_time_used,
    check_policies,
    deadlines,
    match_policy,
    open_case,
    policy_for,
    status,
    transition,
)
from telportal.errors import Invalid, NotFound
from tests.unit.cases.support import OFFICE, OTHER, T, hours, minutes, office, sh

MON = "2026-03-02"
TUE = "2026-03-03"
WED = "2026-03-04"
THU = "2026-03-05"

STANDARD = SlaPolicy(T, "standard", first_response=hours(2), resolution=hours(16))

POLICIES = [
    SlaPolicy(T, "default", hours(4), hours(24)),
    SlaPolicy(T, "hotline", hours(2), hours(16), service="hotline"),
    SlaPolicy(T, "billing", hours(3), hours(20), category="billing"),
    SlaPolicy(T, "high", hours(1), hours(8), urgency="high"),
    SlaPolicy(T, "hotline-billing", hours(2), hours(12), service="hotline", category="billing"),
    SlaPolicy(T, "billing-high", hours(1), hours(6), category="billing", urgency="high"),
    SlaPolicy(
        T,
        "all-three",
        minutes(30),
        hours(4),
        service="hotline",
        category="billing",
        urgency="critical",
    ),
]


@pytest.mark.parametrize(
    ("service", "category", "urgency", "chosen"),
    [
        ("hotline", "billing", "critical", "all-three"),
        ("hotline", "billing", "high", "billing-high"),  # two fields each: urgency wins
        ("hotline", "billing", "normal", "hotline-billing"),
        ("hotline", "delivery", "high", "high"),  # one field each: urgency beats service
        ("web", "billing", "normal", "billing"),
        ("hotline", "delivery", "normal", "hotline"),
        ("web", "delivery", "normal", "default"),
        ("web", "billing", "high", "billing-high"),
        ("web", "billing", "critical", "billing"),
    ],
)
def test_the_most_specific_policy_wins(
    service: str, category: str, urgency: str, chosen: str
) -> None:
    check_policies(T, POLICIES)
    found = match_policy(T, POLICIES, service=service, category=category, urgency=urgency)
    assert found is not None and found.policy_id == chosen
    # the order of the list does not matter
    reverse = match_policy(
        T, list(reversed(POLICIES)), service=service, category=category, urgency=urgency
    )
    assert reverse == found


def test_category_beats_service_between_equals_and_none_matches_nothing() -> None:
    pair = [POLICIES[1], POLICIES[2]]
    found = match_policy(T, pair, service="hotline", category="billing", urgency="")
    assert found is not None and found.policy_id == "billing"
    assert match_policy(T, pair, service="web", category="delivery", urgency="") is None
    assert match_policy(T, [], service="web", category="delivery", urgency="") is None


def test_policies_are_checked() -> None:
    twin = SlaPolicy(T, "twin", hours(1), hours(2), category="billing")
    with pytest.raises(Invalid, match="billing and twin have the same"):
        check_policies(T, [*POLICIES, twin])
    stranger = SlaPolicy(OTHER, "x", hours(1), hours(2))
    with pytest.raises(Invalid, match="another tenant"):
        check_policies(T, [stranger])
    with pytest.raises(Invalid, match="another tenant"):
        match_policy(T, [stranger], service="", category="", urgency="")
    with pytest.raises(Invalid, match="positive"):
        SlaPolicy(T, "zero", hours(0), None)
    with pytest.raises(Invalid, match="warning_share"):
        SlaPolicy(T, "share", hours(1), None, warning_share=1.5)


def make_case(created: datetime, *commands: tuple[Command, datetime], **fields: str) -> Case:
    case = open_case(T, "c-1", actor="ivr", at=created, **fields).case
    for command, at in commands:
        case = transition(T, case, command, actor="agent-1", at=at).case
    return case


# ---- deadlines -----------------------------------------------------------------------------


def test_deadlines_in_business_time() -> None:
    case = make_case(sh(MON, "10:00"), service="hotline", category="delivery", urgency="normal")
    policy = policy_for(T, POLICIES, case)
    assert policy is not None and policy.policy_id == "hotline"
    found = deadlines(T, case, STANDARD, office())
    assert found.first_response is not None and found.resolution is not None
    assert found.first_response.warning_at == sh(MON, "11:36")  # 80% of 2 h
    assert found.first_response.due_at == sh(MON, "12:00")
    assert found.resolution.warning_at == sh(TUE, "15:48")  # 12 h 48 of 16 h
    assert found.resolution.due_at == sh(WED, "10:00")
    assert not found.paused


@pytest.mark.parametrize(
    ("now", "first_response", "resolution"),
    [
        (sh(MON, "11:00"), SlaState.OK, SlaState.OK),
        (sh(MON, "11:36"), SlaState.WARNING, SlaState.OK),
        (sh(MON, "11:59"), SlaState.WARNING, SlaState.OK),
        (sh(MON, "12:00"), SlaState.BREACHED, SlaState.OK),
        (sh(MON, "12:30"), SlaState.BREACHED, SlaState.OK),  # lunch: nothing moves
        (sh(TUE, "15:47"), SlaState.BREACHED, SlaState.OK),
        (sh(TUE, "15:48"), SlaState.BREACHED, SlaState.WARNING),
        (sh(WED, "09:59"), SlaState.BREACHED, SlaState.WARNING),
        (sh(WED, "10:00"), SlaState.BREACHED, SlaState.BREACHED),
    ],
)
def test_state_of_each_target(
    now: datetime, first_response: SlaState, resolution: SlaState
) -> None:
    case = make_case(sh(MON, "10:00"))
    found = status(T, case, STANDARD, office(), now)
    assert found.first_response is not None and found.resolution is not None
    assert found.first_response.state is first_response
    assert found.resolution.state is resolution
    assert found.worst is max(
        first_response, resolution, key=[SlaState.OK, SlaState.WARNING, SlaState.BREACHED].index
    )


def test_used_and_remaining() -> None:
    case = make_case(sh(MON, "10:00"))
    found = status(T, case, STANDARD, office(), sh(MON, "14:00")).first_response
    assert found is not None
    assert (found.used, found.remaining, found.done) == (hours(3), -hours(1), False)


@pytest.mark.parametrize(
    ("responded", "state"),
    [
        (sh(MON, "11:50"), SlaState.OK),  # in the warning zone, but met: ok
        (sh(MON, "12:00"), SlaState.BREACHED),  # at the due instant is late
        (sh(MON, "13:10"), SlaState.BREACHED),
    ],
)
def test_a_met_target_keeps_its_verdict(responded: datetime, state: SlaState) -> None:
    case = make_case(sh(MON, "10:00"), (Assign("a"), sh(MON, "10:05")), (Respond(), responded))
    for now in (responded, sh(THU, "10:00")):
        found = status(T, case, STANDARD, office(), now).first_response
        assert found is not None
        assert (found.state, found.done) == (state, True)


def test_the_clock_stops_while_waiting_on_the_customer() -> None:
    steps: list[tuple[Command, datetime]] = [
        (Assign("a"), sh(MON, "10:05")),
        (Respond(), sh(MON, "11:00")),
        (WaitForCustomer("photo of the label?"), sh(TUE, "10:00")),
    ]
    waiting = make_case(sh(MON, "10:00"), *steps)
    bh = office()
    paused = deadlines(T, waiting, STANDARD, bh)
    assert paused.paused
    assert paused.resolution is not None
    assert (paused.resolution.warning_at, paused.resolution.due_at) == (None, None)
    # used so far: Monday 7 h and Tuesday 1 h; it does not grow while waiting
    for now in (sh(TUE, "11:00"), sh(TUE, "17:00"), sh(THU, "17:00")):
        found = status(T, waiting, STANDARD, bh, now).resolution
        assert found is not None
        assert (found.used, found.state, found.paused) == (hours(8), SlaState.OK, True)

    replied = transition(T, waiting, CustomerReplied(), actor="cust", at=sh(TUE, "14:00")).case
    resumed = deadlines(T, replied, STANDARD, bh).resolution
    assert resumed is not None
    # 3 business hours of waiting (10-12, 13-14) move both instants by 3 business hours
    assert resumed.warning_at == sh(WED, "09:48")
    assert resumed.due_at == sh(WED, "14:00")
    assert business_time_used(replied, bh, sh(WED, "14:00")) == hours(16)
    found = status(T, replied, STANDARD, bh, sh(WED, "13:59")).resolution
    assert found is not None and found.state is SlaState.WARNING and not found.paused


def test_a_breach_before_the_pause_stays_known() -> None:
    case = make_case(
        sh(MON, "10:00"),
        (Assign("a"), sh(MON, "10:05")),
        (Respond(), sh(MON, "10:30")),
        (WaitForCustomer(), sh(WED, "11:00")),
    )
    found = deadlines(T, case, STANDARD, office()).resolution
    assert found is not None
    assert (found.warning_at, found.due_at) == (sh(TUE, "15:48"), sh(WED, "10:00"))
    current = status(T, case, STANDARD, office(), sh(THU, "10:00")).resolution
    assert current is not None and current.state is SlaState.BREACHED


def test_time_spent_resolved_does_not_count_after_a_reopen() -> None:
    case = make_case(
        sh(MON, "10:00"),
        (Assign("a"), sh(MON, "10:00")),
        (Start(), sh(MON, "10:00")),
        (Resolve("done"), sh(MON, "17:00")),  # 6 business hours used
    )
    resolved = status(T, case, STANDARD, office(), sh(WED, "10:00")).resolution
    assert resolved is not None and resolved.done and resolved.state is SlaState.OK
    reopened = transition(T, case, Reopen(), actor="cust", at=sh(WED, "10:00")).case
    found = deadlines(T, reopened, STANDARD, office()).resolution
    assert found is not None and found.done_at is None
    assert found.due_at == sh(THU, "12:00")  # 10 h left from Wednesday 10:00
    now = status(T, reopened, STANDARD, office(), sh(WED, "10:00")).resolution
    assert now is not None and now.used == hours(6)


def test_targets_may_be_absent_and_tenants_must_match() -> None:
    case = make_case(sh(MON, "10:00"))
    only_resolution = SlaPolicy(T, "r", None, hours(8), warning_share=1.0)
    found = deadlines(T, case, only_resolution, office())
    assert found.first_response is None
    assert found.resolution is not None and found.resolution.warning_at is None
    assert status(T, case, only_resolution, office(), sh(MON, "11:00")).first_response is None
    with pytest.raises(NotFound):
        deadlines(OTHER, case, STANDARD, office())
    with pytest.raises(Invalid):
        deadlines(T, case, STANDARD, BusinessHours(OTHER, OFFICE))
