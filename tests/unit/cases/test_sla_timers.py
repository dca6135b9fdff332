"""Durable SLA timers: specs as data, alerts in order, once each, also after a restart."""

from datetime import datetime, timedelta

import pytest

from telportal.cases import (
    Assign,
    Case,
    Command,
    CustomerReplied,
    Respond,
    SlaLevel,
    SlaPolicy,
    SlaTarget,
    TimerSpec,
    WaitForCustomer,
    due_alerts,
    next_fire_at,
    open_case,
    timer_specs,
    transition,
)
from telportal.clock import FakeClock
from telportal.errors import NotFound
from tests.unit.cases.support import OTHER, T, hours, office, sh

MON, TUE, WED = "2026-03-02", "2026-03-03", "2026-03-04"
STANDARD = SlaPolicy(T, "standard", hours(2), hours(16))
URGENT = SlaPolicy(T, "urgent", hours(1), hours(8), warning_share=0.5)

FR, RES = SlaTarget.FIRST_RESPONSE, SlaTarget.RESOLUTION
WARN, BREACH = SlaLevel.WARNING, SlaLevel.BREACH


def make_case(case_id: str, created: datetime, *commands: tuple[Command, datetime]) -> Case:
    case = open_case(T, case_id, actor="ivr", at=created).case
    for command, at in commands:
        case = transition(T, case, command, actor="agent-1", at=at).case
    return case


def test_timer_specs_for_a_new_case() -> None:
    case = make_case("c-1", sh(MON, "10:00"))
    specs = timer_specs(T, case, STANDARD, office())
    assert [(s.target, s.level, s.fire_at) for s in specs] == [
        (FR, WARN, sh(MON, "11:36")),
        (FR, BREACH, sh(MON, "12:00")),
        (RES, WARN, sh(TUE, "15:48")),
        (RES, BREACH, sh(WED, "10:00")),
    ]
    assert [s.key for s in specs] == [
        "tenant-1/c-1/sla/first_response/warning",
        "tenant-1/c-1/sla/first_response/breach",
        "tenant-1/c-1/sla/resolution/warning",
        "tenant-1/c-1/sla/resolution/breach",
    ]
    assert specs[0].due_at == sh(MON, "12:00")
    assert all(s.tenant_id == T and s.case_id == "c-1" for s in specs)
    assert timer_specs(T, case, None, office()) == ()


def test_met_targets_and_paused_instants_have_no_timers() -> None:
    responded = make_case(
        "c-1", sh(MON, "10:00"), (Assign("a"), sh(MON, "10:10")), (Respond(), sh(MON, "10:20"))
    )
    specs = timer_specs(T, responded, STANDARD, office())
    assert [(s.target, s.level) for s in specs] == [(RES, WARN), (RES, BREACH)]
    waiting = transition(T, responded, WaitForCustomer(), actor="a", at=sh(MON, "11:00")).case
    assert timer_specs(T, waiting, STANDARD, office()) == ()
    # waiting after the warning point: the warning instant is known, the breach is not
    late_wait = transition(T, responded, WaitForCustomer(), actor="a", at=sh(TUE, "16:00")).case
    specs = timer_specs(T, late_wait, STANDARD, office())
    assert [(s.level, s.fire_at) for s in specs] == [(WARN, sh(TUE, "15:48"))]


def three_cases() -> list[Case]:
    return [
        make_case("c-1", sh(MON, "10:00")),
        make_case("c-2", sh(MON, "10:30")),
        make_case(
            "c-3", sh(MON, "13:00"), (Assign("a"), sh(MON, "13:10")), (Respond(), sh(MON, "13:30"))
        ),
    ]


EXPECTED_ORDER = [
    ("c-2", FR, WARN, sh(MON, "11:00")),
    ("c-2", FR, BREACH, sh(MON, "11:30")),
    ("c-1", FR, WARN, sh(MON, "11:36")),
    ("c-1", FR, BREACH, sh(MON, "12:00")),
    ("c-2", RES, WARN, sh(MON, "15:30")),
    ("c-2", RES, BREACH, sh(TUE, "10:30")),
    ("c-1", RES, WARN, sh(TUE, "15:48")),
    ("c-3", RES, WARN, sh(TUE, "17:48")),
    ("c-1", RES, BREACH, sh(WED, "10:00")),
    ("c-3", RES, BREACH, sh(WED, "12:00")),
]


def stored_timers() -> list[TimerSpec]:
    bh = office()
    policies = {"c-1": STANDARD, "c-2": URGENT, "c-3": STANDARD}
    return [s for c in three_cases() for s in timer_specs(T, c, policies[c.case_id], bh)]


def test_a_restart_far_past_several_deadlines_fires_each_once_in_order() -> None:
    clock = FakeClock(sh(MON, "10:45"))
    store = stored_timers()
    fired: set[str] = set()
    # Before the process stops, nothing is due yet.
    assert due_alerts(T, store, clock.now(), fired) == []
    assert next_fire_at(store, fired) == sh(MON, "11:00")
    # The process is down for a week; at start it asks for everything due.
    clock.advance(timedelta(days=7).total_seconds())
    alerts = due_alerts(T, store, clock.now(), fired)
    assert [(a.case_id, a.target, a.level, a.fire_at) for a in alerts] == EXPECTED_ORDER
    assert all(a.fired_at == clock.now() and a.late_by > timedelta(days=4) for a in alerts)
    fired.update(a.key for a in alerts)
    # A second start (or a second look) fires nothing again.
    assert due_alerts(T, store, clock.now(), fired) == []
    assert next_fire_at(store, fired) is None


def test_a_crash_half_way_through_fires_the_rest_only() -> None:
    store = stored_timers()
    now = sh(WED, "18:00")
    first = due_alerts(T, store, now, set())
    fired = {a.key for a in first[:4]}  # the process died after recording four
    rest = due_alerts(T, store, now, fired)
    assert [(a.case_id, a.target, a.level) for a in rest] == [e[:3] for e in EXPECTED_ORDER[4:]]


def test_only_timers_due_by_now_fire_and_on_time_means_not_late() -> None:
    store = stored_timers()
    alerts = due_alerts(T, store, sh(MON, "11:36"), set())
    assert [(a.case_id, a.level) for a in alerts] == [("c-2", WARN), ("c-2", BREACH), ("c-1", WARN)]
    assert alerts[-1].late_by == timedelta(0)


def test_the_same_key_stored_twice_fires_once() -> None:
    store = stored_timers()
    alerts = due_alerts(T, store + store, sh(WED, "18:00"), set())
    assert len(alerts) == len(EXPECTED_ORDER)


def test_warnings_come_before_breaches_at_the_same_instant() -> None:
    at = sh(MON, "12:00")
    store = [
        TimerSpec(T, "a", RES, BREACH, at, at, "k-a"),
        TimerSpec(T, "b", FR, WARN, at, at, "k-b"),
        TimerSpec(T, "a", FR, BREACH, at, at, "k-c"),
    ]
    assert [a.key for a in due_alerts(T, store, at, set())] == ["k-b", "k-c", "k-a"]


def test_a_moved_deadline_does_not_fire_its_warning_again() -> None:
    bh = office()
    case = make_case(
        "c-1", sh(MON, "10:00"), (Assign("a"), sh(MON, "10:00")), (Respond(), sh(MON, "10:30"))
    )
    fired = {
        a.key for a in due_alerts(T, timer_specs(T, case, STANDARD, bh), sh(TUE, "15:50"), set())
    }
    assert fired == {"tenant-1/c-1/sla/resolution/warning"}
    case = transition(T, case, WaitForCustomer(), actor="a", at=sh(TUE, "16:00")).case
    case = transition(T, case, CustomerReplied(), actor="c", at=sh(WED, "10:00")).case
    # the adapter replaces the case's unfired timers with the new specs
    specs = timer_specs(T, case, STANDARD, bh)
    assert [(s.level, s.fire_at) for s in specs] == [
        (WARN, sh(TUE, "15:48")),
        (BREACH, sh(WED, "14:00")),  # 3 business hours of waiting added
    ]
    assert due_alerts(T, specs, sh(WED, "13:00"), fired) == []
    (breach,) = due_alerts(T, specs, sh(WED, "14:00"), fired)
    assert (breach.level, breach.due_at) == (BREACH, sh(WED, "14:00"))


def test_alerts_are_per_tenant() -> None:
    stranger = TimerSpec(OTHER, "x", FR, WARN, sh(MON, "10:00"), None, "k")
    with pytest.raises(NotFound):
        due_alerts(T, [stranger], sh(MON, "11:00"), set())
