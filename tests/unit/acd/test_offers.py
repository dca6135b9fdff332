"""Offers that are not answered: ring timeouts, failures, and where the contact goes."""

from telportal.acd import NO_ANSWER_REASON, AgentState, ContactState, Offer
from tests.unit.acd.support import (
    T,
    agent,
    live,
    make,
    offers,
    overflows,
    staffed,
    state_changes,
    withdrawals,
)


def test_ring_timeout_makes_the_agent_not_ready_and_the_contact_keeps_the_head() -> None:
    clock, d = make()
    staffed(d, "a1", ring_timeout=15.0)
    d.sign_in(agent("a2"))
    d.enqueue(T, "c1", "sales")
    clock.advance(5)
    d.enqueue(T, "c2", "sales")
    d.enqueue(T, "c3", "sales", priority=1)  # more important: may pass c1
    assert d.next_deadline() == 15.0
    clock.advance(9.9)
    assert d.tick() == []
    clock.advance(0.1)
    out = d.tick()
    assert withdrawals(out) == [("c1", "a1", "no_answer")]
    assert state_changes(out) == [("a1", "not_ready")]
    assert d.agent(T, "a1").reason == NO_ANSWER_REASON
    assert d.waiting(T, "sales") == ["c3", "c1", "c2"]
    assert live(d, "c1").enqueued_at == 0.0
    # the next agent gets the head, not the missed agent
    assert offers(d.ready(T, "a2")) == [("c3", "a2")]


def test_offer_failed_reports_the_reason_and_requeues_at_the_head() -> None:
    _, d = make()
    staffed(d, "a1")
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    out = d.offer_failed(T, "c1", "a1", "busy")
    assert withdrawals(out) == []  # the signaling layer told us: nothing to stop
    assert (d.agent(T, "a1").state, d.agent(T, "a1").reason) == (AgentState.NOT_READY, "busy")
    assert d.waiting(T, "sales") == ["c1", "c2"]
    assert d.position(T, "c1") == 1
    assert d.agent_snapshot(T, "a1").missed == 1


def test_a_missed_contact_goes_straight_to_another_free_agent() -> None:
    _, d = make()
    staffed(d, "a1", "a2")
    d.enqueue(T, "c1", "sales")
    out = d.offer_failed(T, "c1", "a1")
    [offer] = [o for o in out if isinstance(o, Offer)]
    assert (offer.agent_id, offer.record.trigger) == ("a2", "requeued")


def test_max_wait_passing_while_ringing_overflows_when_the_offer_fails() -> None:
    clock, d = make()
    staffed(d, "a1", max_wait=10.0, ring_timeout=20.0)
    d.enqueue(T, "c1", "sales")
    clock.advance(10)
    assert overflows(d.tick()) == []  # ringing: the agent may still answer
    assert live(d, "c1").state is ContactState.OFFERED
    clock.advance(10)
    out = d.tick()
    assert withdrawals(out) == [("c1", "a1", "no_answer")]
    [overflow] = overflows(out)
    assert (overflow.reason, overflow.waited) == ("max_wait", 20.0)
    assert d.contact(T, "c1") is None


def test_an_answer_after_max_wait_still_counts() -> None:
    clock, d = make()
    staffed(d, "a1", max_wait=10.0, ring_timeout=20.0)
    d.enqueue(T, "c1", "sales")
    clock.advance(12)
    d.tick()
    d.offer_accepted(T, "c1", "a1")
    clock.advance(100)
    assert d.tick() == []
    assert live(d, "c1").state is ContactState.CONNECTED


def test_answering_cancels_the_ring_timer() -> None:
    clock, d = make()
    staffed(d, "a1", ring_timeout=10.0)
    d.enqueue(T, "c1", "sales")
    d.offer_accepted(T, "c1", "a1")
    clock.advance(30)
    assert d.tick() == []
    assert d.agent(T, "a1").state is AgentState.TALKING
