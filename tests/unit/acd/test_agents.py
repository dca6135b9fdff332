"""Agent states: every legal transition, and the illegal ones refused with a clear error."""

from collections.abc import Callable

import pytest

from telportal.acd import (
    AgentProfile,
    AgentState,
    AgentStateChanged,
    Distributor,
    IllegalTransition,
    UnknownAgent,
    UnknownObject,
)
from telportal.errors import Conflict, Invalid, NotFound
from tests.unit.acd.support import T, agent, make, offers, queue, state_changes, withdrawals


def test_sign_in_is_not_ready_until_the_agent_says_ready() -> None:
    _, d = make()
    d.configure_queue(queue())
    out = d.sign_in(agent("a1"))
    assert state_changes(out) == [("a1", "not_ready")]
    view = d.agent(T, "a1")
    assert (view.state, view.reason, view.available) == (AgentState.NOT_READY, "signed-in", False)
    assert state_changes(d.ready(T, "a1")) == [("a1", "ready")]
    assert d.agent(T, "a1").available


def test_full_cycle_ready_ringing_talking_wrap_up_ready() -> None:
    clock, d = make()
    d.configure_queue(queue(wrap_up=5.0))
    d.sign_in(agent("a1"), ready=True)
    assert state_changes(d.enqueue(T, "c1", "sales")) == [("a1", "ringing")]
    assert state_changes(d.offer_accepted(T, "c1", "a1")) == [("a1", "talking")]
    assert d.agent(T, "a1").connected == {"c1"}
    assert state_changes(d.contact_ended(T, "c1")) == [("a1", "wrap_up")]
    clock.advance(5.0)
    assert state_changes(d.tick()) == [("a1", "ready")]
    assert state_changes(d.sign_out(T, "a1")) == [("a1", "signed_out")]


def test_not_ready_with_a_reason_and_a_new_reason_is_reported() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True)
    out = d.not_ready(T, "a1", "lunch")
    assert state_changes(out) == [("a1", "not_ready")]
    assert d.agent(T, "a1").reason == "lunch"
    out = d.not_ready(T, "a1", "training")
    assert out == [AgentStateChanged(T, "a1", AgentState.NOT_READY, "training")]
    # not ready: a new contact waits instead of being offered
    assert offers(d.enqueue(T, "c1", "sales")) == []
    assert d.waiting(T, "sales") == ["c1"]


def test_not_ready_while_talking_keeps_the_call_and_applies_after() -> None:
    _, d = make()
    d.configure_queue(queue(wrap_up=0.0))
    d.sign_in(agent("a1"), ready=True)
    d.enqueue(T, "c1", "sales")
    d.offer_accepted(T, "c1", "a1")
    assert state_changes(d.not_ready(T, "a1", "break")) == []  # still talking
    d.enqueue(T, "c2", "sales")
    assert state_changes(d.contact_ended(T, "c1")) == [("a1", "not_ready")]
    assert d.waiting(T, "sales") == ["c2"]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda d: d.ready(T, "a1"), "agent a1 is signed out: cannot go ready"),
        (lambda d: d.not_ready(T, "a1", "x"), "agent a1 is signed out: cannot go not ready"),
        (lambda d: d.sign_out(T, "a1"), "agent a1 is signed out: cannot sign out"),
        (lambda d: d.end_wrap_up(T, "a1"), "agent a1 is signed out: cannot end wrap-up"),
    ],
)
def test_a_signed_out_agent_refuses_work(
    action: Callable[[Distributor], object], message: str
) -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"))
    d.sign_out(T, "a1")
    with pytest.raises(IllegalTransition) as caught:
        action(d)
    assert str(caught.value) == message
    assert isinstance(caught.value, Conflict)
    assert caught.value.code == "illegal_transition"


def test_illegal_transitions_of_a_signed_in_agent() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True)
    with pytest.raises(IllegalTransition, match="agent a1 is ready: cannot sign in"):
        d.sign_in(agent("a1"))
    with pytest.raises(IllegalTransition, match="is ready: cannot end wrap-up"):
        d.end_wrap_up(T, "a1")
    d.enqueue(T, "c1", "sales")
    d.offer_accepted(T, "c1", "a1")
    with pytest.raises(IllegalTransition, match="is talking: cannot sign out while connected"):
        d.sign_out(T, "a1")
    with pytest.raises(IllegalTransition, match="contact c1 is connected: cannot be accepted"):
        d.offer_accepted(T, "c1", "a1")
    with pytest.raises(IllegalTransition, match="contact c1 is connected: cannot be abandoned"):
        d.abandon(T, "c1")
    with pytest.raises(Invalid, match="reason"):
        d.not_ready(T, "a1", "")


def test_accepting_an_offer_made_to_someone_else_is_refused() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True)
    d.sign_in(agent("a2"))
    d.enqueue(T, "c1", "sales")
    with pytest.raises(IllegalTransition, match="not offered to them"):
        d.offer_accepted(T, "c1", "a2")
    with pytest.raises(IllegalTransition, match="not offered to them"):
        d.offer_failed(T, "c1", "a2")
    with pytest.raises(IllegalTransition, match="contact c1 is offered: cannot end"):
        d.contact_ended(T, "c1")


def test_unknown_objects_are_not_found_with_their_id() -> None:
    _, d = make()
    d.configure_queue(queue())
    with pytest.raises(UnknownAgent, match="agent 'nobody' not found"):
        d.ready(T, "nobody")
    with pytest.raises(NotFound, match="queue 'nope' not found"):
        d.enqueue(T, "c1", "nope")
    with pytest.raises(NotFound, match="contact 'c9' not found"):
        d.abandon(T, "c9")
    with pytest.raises(UnknownObject, match="tenant 'other' not found"):
        d.ready("other", "a1")


def test_sign_out_withdraws_offers_and_the_contact_keeps_its_place() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True)
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    out = d.sign_out(T, "a1")
    assert withdrawals(out) == [("c1", "a1", "signed_out")]
    assert d.waiting(T, "sales") == ["c1", "c2"]
    # signing in again keeps the agent's record and takes the head
    assert offers(d.sign_in(agent("a1"), ready=True)) == [("c1", "a1")]


def test_unreachable_agents_are_never_offered() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True, reachable=False)
    assert offers(d.enqueue(T, "c1", "sales")) == []
    assert not d.agent(T, "a1").available
    assert offers(d.set_reachable(T, "a1", True)) == [("c1", "a1")]
    d.offer_accepted(T, "c1", "a1")
    d.contact_ended(T, "c1")
    d.end_wrap_up(T, "a1")
    d.set_reachable(T, "a1", False)
    assert offers(d.enqueue(T, "c2", "sales")) == []


def test_profile_validation() -> None:
    with pytest.raises(Invalid, match="capacity"):
        AgentProfile(T, "a1", capacity=0)
    with pytest.raises(Invalid, match="level must be 1-10"):
        AgentProfile(T, "a1", {"sales": 11})
    with pytest.raises(Invalid, match="wrap_up"):
        AgentProfile(T, "a1", wrap_up=-1)


def test_capacity_two_takes_two_contacts_and_never_three() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1", capacity=2), ready=True)
    assert offers(d.enqueue(T, "c1", "sales")) == [("c1", "a1")]
    assert offers(d.enqueue(T, "c2", "sales")) == [("c2", "a1")]
    assert offers(d.enqueue(T, "c3", "sales")) == []
    d.offer_accepted(T, "c1", "a1")
    view = d.agent(T, "a1")
    assert (view.state, len(view.offers) + len(view.connected)) == (AgentState.RINGING, 2)
    d.offer_accepted(T, "c2", "a1")
    assert d.agent(T, "a1").state is AgentState.TALKING
    assert d.waiting(T, "sales") == ["c3"]


def test_update_agent_reindexes_skills() -> None:
    _, d = make()
    d.configure_queue(queue())
    d.sign_in(agent("a1"), ready=True)
    assert offers(d.enqueue(T, "c1", "sales", skills=["french"])) == []
    out = d.update_agent(agent("a1", skills={"french": 4}))
    assert offers(out) == [("c1", "a1")]
