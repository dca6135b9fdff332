"""Wrap-up: timed per queue or per agent, ended by a timer or early, never slept on."""

import pytest

from telportal.acd import AgentState, Distributor, IllegalTransition
from tests.unit.acd.support import T, agent, make, offers, queue, staffed, state_changes


def talk(d: Distributor, contact_id: str, agent_id: str) -> None:
    d.offer_accepted(T, contact_id, agent_id)
    d.contact_ended(T, contact_id)


def test_wrap_up_from_the_queue_then_ready_and_the_next_contact() -> None:
    clock, d = make()
    staffed(d, "a1", wrap_up=30.0)
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    clock.advance(60)
    talk(d, "c1", "a1")
    view = d.agent(T, "a1")
    assert (view.state, view.wrap_up_until, view.available) == (AgentState.WRAP_UP, 90.0, False)
    assert d.next_deadline() == 90.0
    clock.advance(29.9)
    assert d.tick() == []
    clock.advance(0.1)
    out = d.tick()
    assert offers(out) == [("c2", "a1")]
    assert state_changes(out) == [("a1", "ringing")]  # passing through ready is not reported


def test_the_agents_wrap_up_overrides_the_queues() -> None:
    clock, d = make()
    d.configure_queue(queue(wrap_up=30.0))
    d.sign_in(agent("a1", wrap_up=5.0), ready=True)
    d.enqueue(T, "c1", "sales")
    talk(d, "c1", "a1")
    assert d.agent(T, "a1").wrap_up_until == 5.0
    clock.advance(5)
    assert state_changes(d.tick()) == [("a1", "ready")]


def test_zero_wrap_up_is_free_at_once() -> None:
    _, d = make()
    staffed(d, "a1", wrap_up=0.0)
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    d.offer_accepted(T, "c1", "a1")
    assert offers(d.contact_ended(T, "c1")) == [("c2", "a1")]
    assert d.next_deadline() == 20.0  # only c2's ring timeout


def test_ending_wrap_up_early_and_not_ready_during_wrap_up() -> None:
    clock, d = make()
    staffed(d, "a1", wrap_up=30.0)
    d.enqueue(T, "c1", "sales")
    talk(d, "c1", "a1")
    clock.advance(3)
    assert state_changes(d.end_wrap_up(T, "a1")) == [("a1", "ready")]
    with pytest.raises(IllegalTransition, match="cannot end wrap-up"):
        d.end_wrap_up(T, "a1")
    clock.advance(100)
    assert d.tick() == []  # the wrap-up timer was cancelled
    d.enqueue(T, "c2", "sales")
    talk(d, "c2", "a1")
    d.not_ready(T, "a1", "meeting")
    assert d.agent(T, "a1").state is AgentState.WRAP_UP
    clock.advance(30)
    out = d.tick()
    assert state_changes(out) == [("a1", "not_ready")]
    assert d.agent(T, "a1").reason == "meeting"


def test_signing_out_during_wrap_up_closes_it() -> None:
    clock, d = make()
    staffed(d, "a1", wrap_up=30.0)
    d.enqueue(T, "c1", "sales")
    clock.advance(10)
    talk(d, "c1", "a1")
    clock.advance(4)
    d.sign_out(T, "a1")
    assert d.next_deadline() is None
    snap = d.queue_snapshot(T, "sales")
    assert (snap.handled, snap.average_handle_time) == (1, 4.0)
