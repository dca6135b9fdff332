"""Live statistics: service level, abandons, handle times, agent state durations."""

import pytest

from telportal.acd import AgentState, service_level
from tests.unit.acd.support import T, agent, make, queue, staffed


def test_service_level_counts_answers_within_the_threshold_against_answered_and_abandoned() -> None:
    clock, d = make()
    staffed(d, service_level_seconds=20.0, wrap_up=0.0)
    d.sign_in(agent("a1"))
    waits = {"fast": 5.0, "edge": 20.0, "slow": 45.0}
    for contact_id, wait in waits.items():
        d.enqueue(T, contact_id, "sales")
        clock.advance(wait)
        d.ready(T, "a1")
        d.offer_accepted(T, contact_id, "a1")
        clock.advance(60)
        d.not_ready(T, "a1", "x")
        d.contact_ended(T, contact_id)
    d.enqueue(T, "gone", "sales")
    clock.advance(3)
    d.abandon(T, "gone")
    snap = d.queue_snapshot(T, "sales")
    assert (snap.entered, snap.answered, snap.answered_in_time, snap.abandoned) == (4, 3, 2, 1)
    assert snap.service_level == pytest.approx(2 / 4)
    assert snap.average_answer_wait == pytest.approx(70 / 3)
    assert snap.longest_answer_wait == 45.0
    assert snap.handled == 3
    assert snap.average_talk_time == 60.0


def test_average_handle_time_is_talk_plus_wrap_up() -> None:
    clock, d = make()
    staffed(d, "a1", wrap_up=10.0)
    d.enqueue(T, "c1", "sales")
    d.offer_accepted(T, "c1", "a1")
    clock.advance(50)
    d.contact_ended(T, "c1")
    assert d.queue_snapshot(T, "sales").handled == 0  # handled once wrap-up is done
    clock.advance(10)
    d.tick()
    d.enqueue(T, "c2", "sales")
    d.offer_accepted(T, "c2", "a1")
    clock.advance(20)
    d.contact_ended(T, "c2")
    clock.advance(2)
    d.end_wrap_up(T, "a1")
    snap = d.queue_snapshot(T, "sales")
    assert snap.handled == 2
    assert snap.average_handle_time == pytest.approx((60 + 22) / 2)
    agent_snap = d.agent_snapshot(T, "a1")
    assert (agent_snap.handled, agent_snap.answered, agent_snap.talk_time) == (2, 2, 70.0)
    assert agent_snap.average_handle_time == pytest.approx(41.0)


def test_live_figures_now() -> None:
    clock, d = make()
    staffed(d, "a1", "a2")
    d.sign_in(agent("a3"))
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    d.offer_accepted(T, "c1", "a1")
    clock.advance(5)
    d.enqueue(T, "c3", "sales")
    clock.advance(7)
    d.enqueue(T, "c4", "sales")
    snap = d.queue_snapshot(T, "sales")
    assert (snap.waiting, snap.ringing, snap.talking) == (2, 1, 1)
    assert snap.longest_wait == 7.0
    assert (snap.agents_free, snap.agents_staffed) == (0, 2)
    d.ready(T, "a3")  # takes c3
    assert d.queue_snapshot(T, "sales").agents_staffed == 3


def test_agent_state_durations_over_the_day() -> None:
    clock, d = make()
    d.configure_queue(queue(wrap_up=5.0))
    d.sign_in(agent("a1"))
    clock.advance(100)  # not ready 100
    d.ready(T, "a1")
    clock.advance(20)  # ready 20
    d.enqueue(T, "c1", "sales")
    clock.advance(3)  # ringing 3
    d.offer_accepted(T, "c1", "a1")
    clock.advance(40)  # talking 40
    d.contact_ended(T, "c1")
    clock.advance(5)  # wrap-up 5
    d.tick()
    clock.advance(2)  # ready 2 so far
    snap = d.agent_snapshot(T, "a1")
    assert snap.state is AgentState.READY
    assert snap.in_state_for == 2.0
    assert dict(snap.state_seconds) == {
        AgentState.SIGNED_OUT: 0.0,
        AgentState.NOT_READY: 100.0,
        AgentState.READY: 22.0,
        AgentState.RINGING: 3.0,
        AgentState.TALKING: 40.0,
        AgentState.WRAP_UP: 5.0,
    }
    assert (snap.offered, snap.answered, snap.missed) == (1, 1, 0)


def test_start_day_zeroes_the_counters_but_not_the_present() -> None:
    clock, d = make()
    staffed(d, "a1", wrap_up=0.0)
    d.enqueue(T, "c1", "sales")
    d.offer_accepted(T, "c1", "a1")
    d.enqueue(T, "c2", "sales")
    clock.advance(10)
    d.start_day(T)
    clock.advance(1)
    snap = d.queue_snapshot(T, "sales")
    assert (snap.entered, snap.answered, snap.waiting) == (0, 0, 1)
    agent_snap = d.agent_snapshot(T, "a1")
    assert (agent_snap.answered, agent_snap.in_state_for) == (0, 11.0)
    assert agent_snap.state_seconds == {AgentState.TALKING: 1.0}


def test_service_level_formula() -> None:
    assert service_level(0, 0, 0) is None
    assert service_level(8, 9, 1) == 0.8
