"""Waiting lists: priority, skills, overflow, abandon, queued callbacks, reconfiguration."""

import pytest

from telportal.acd import (
    ContactKind,
    ContactState,
    IllegalTransition,
    Offer,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    SkillNeed,
    Strategy,
    UnknownContact,
)
from telportal.errors import Conflict, Invalid
from tests.unit.acd.support import (
    T,
    agent,
    callbacks,
    live,
    make,
    offers,
    overflows,
    queue,
    staffed,
    withdrawals,
)

VOICEMAIL = OverflowTarget(OverflowKind.VOICEMAIL, "box-1")


def test_higher_priority_first_then_first_come_first_served() -> None:
    clock, d = make()
    staffed(d)
    for contact_id, priority in [("c1", 0), ("c2", 5), ("c3", 0), ("c4", 5), ("c5", 9)]:
        d.enqueue(T, contact_id, "sales", priority=priority)
        clock.advance(1)
    assert d.waiting(T, "sales") == ["c5", "c2", "c4", "c1", "c3"]
    assert [d.position(T, c) for c in ("c5", "c2", "c4", "c1", "c3")] == [1, 2, 3, 4, 5]
    d.sign_in(agent("a1"), ready=True)
    assert offers(d.enqueue(T, "c6", "sales")) == []  # a1 took c5 on sign-in
    assert live(d, "c5").state is ContactState.OFFERED
    assert d.position(T, "c5") is None


def test_customer_importance_raises_priority() -> None:
    _, d = make()
    staffed(d)
    d.enqueue(T, "plain", "sales", priority=3)
    d.enqueue(T, "vip", "sales", priority=1, importance=5)
    assert d.waiting(T, "sales") == ["vip", "plain"]
    assert live(d, "vip").priority == 6


def test_skills_with_minimum_levels() -> None:
    _, d = make()
    d.configure_queue(queue(skills=[SkillNeed("sales", 5)]))
    d.sign_in(agent("junior", skills={"sales": 4}), ready=True)
    d.sign_in(agent("senior", skills={"sales": 7, "german": 3}), ready=True)
    assert offers(d.enqueue(T, "c1", "sales")) == [("c1", "senior")]
    assert offers(d.enqueue(T, "c2", "sales")) == []  # junior is below level 5
    d.configure_queue(queue(skills=[SkillNeed("sales", 4)]))  # lowered: junior qualifies
    assert live(d, "c2").state is ContactState.OFFERED
    assert live(d, "c2").offers == {"junior"}


def test_contact_skills_add_to_the_queues_and_the_higher_level_counts() -> None:
    _, d = make()
    d.configure_queue(queue(skills=[SkillNeed("sales", 3)]))
    d.sign_in(agent("a1", skills={"sales": 3}), ready=True)
    d.sign_in(agent("a2", skills={"sales": 3, "german": 5}), ready=True)
    out = d.enqueue(T, "c1", "sales", skills=[SkillNeed("sales", 6), "german"])
    assert offers(out) == []
    assert live(d, "c1").needs == {SkillNeed("sales", 6), SkillNeed("german", 1)}
    assert offers(d.enqueue(T, "c2", "sales", skills=["german"])) == [("c2", "a2")]
    assert offers(d.enqueue(T, "c3", "sales")) == [("c3", "a1")]


def test_an_agent_free_takes_the_best_contact_it_can_serve() -> None:
    clock, d = make()
    d.configure_queue(queue())
    d.configure_queue(queue("vip", priority=10))
    d.sign_in(agent("a1", queues=["sales", "vip"], skills={"german": 2}))
    d.enqueue(T, "old", "sales", priority=1)
    clock.advance(1)
    d.enqueue(T, "expert", "sales", priority=9, skills=[SkillNeed("german", 8)])
    d.enqueue(T, "urgent", "sales", priority=5)
    d.enqueue(T, "vip-low", "vip", priority=0)
    # the higher queue first, whatever the priorities inside the other queue
    assert offers(d.ready(T, "a1")) == [("vip-low", "a1")]
    d.offer_accepted(T, "vip-low", "a1")
    d.contact_ended(T, "vip-low")
    # then the best contact the agent can serve: not "expert" (needs german 8)
    assert offers(d.end_wrap_up(T, "a1")) == [("urgent", "a1")]


def test_overflow_on_max_wait_to_a_non_queue_target() -> None:
    clock, d = make()
    staffed(d, max_wait=30.0, overflow=VOICEMAIL)
    d.enqueue(T, "c1", "sales")
    clock.advance(10)
    d.enqueue(T, "c2", "sales")
    assert d.next_deadline() == 30.0
    clock.advance(20)
    [overflow] = overflows(d.tick())
    assert (overflow.contact_id, overflow.reason, overflow.target, overflow.moved_to) == (
        "c1",
        "max_wait",
        VOICEMAIL,
        None,
    )
    assert overflow.waited == 30.0
    assert d.contact(T, "c1") is None
    assert d.waiting(T, "sales") == ["c2"]
    clock.advance(10)
    assert [o.contact_id for o in overflows(d.tick())] == ["c2"]


def test_the_callers_max_wait_replaces_the_queues() -> None:
    clock, d = make()
    staffed(d, max_wait=300.0)
    d.enqueue(T, "c1", "sales", max_wait=5.0)
    clock.advance(5)
    [overflow] = overflows(d.tick())
    assert (overflow.target, overflow.moved_to) == (None, None)


def test_overflow_to_another_queue_moves_the_contact() -> None:
    clock, d = make()
    d.configure_queue(queue(max_wait=30.0, overflow=OverflowTarget(OverflowKind.QUEUE, "backup")))
    d.configure_queue(queue("backup", max_wait=60.0, overflow=VOICEMAIL))
    d.sign_in(agent("b1", queues=["backup"]))
    d.enqueue(T, "c1", "sales", priority=4)
    clock.advance(30)
    [overflow] = overflows(d.tick())
    assert overflow.moved_to == "backup"
    view = live(d, "c1")
    assert (view.queue_id, view.state, view.priority) == ("backup", ContactState.WAITING, 4)
    assert view.arrived_at == 0.0
    assert view.enqueued_at == 30.0
    assert offers(d.ready(T, "b1")) == [("c1", "b1")]


def test_overflow_chains_never_loop() -> None:
    clock, d = make()
    to_b = OverflowTarget(OverflowKind.QUEUE, "b")
    to_a = OverflowTarget(OverflowKind.QUEUE, "a")
    d.configure_queue(queue("a", max_wait=10.0, overflow=to_b))
    d.configure_queue(queue("b", max_wait=10.0, overflow=to_a))
    d.enqueue(T, "c1", "a")
    clock.advance(10)
    assert [o.moved_to for o in overflows(d.tick())] == ["b"]
    clock.advance(10)
    [back] = overflows(d.tick())
    assert (back.target, back.moved_to) == (to_a, None)  # a was visited: the caller decides
    assert d.contact(T, "c1") is None


def test_overflow_when_the_queue_is_full() -> None:
    _, d = make()
    d.configure_queue(queue(max_size=2, overflow=OverflowTarget(OverflowKind.QUEUE, "big")))
    d.configure_queue(queue("big", max_size=1, overflow=VOICEMAIL))
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    [moved] = overflows(d.enqueue(T, "c3", "sales"))
    assert (moved.reason, moved.moved_to) == ("queue_full", "big")
    assert d.waiting(T, "big") == ["c3"]
    # sales is full, and so is big: on to big's target, which the caller handles
    moved, full = overflows(d.enqueue(T, "c4", "sales"))
    assert (moved.queue_id, moved.moved_to) == ("sales", "big")
    assert (full.queue_id, full.reason, full.target, full.moved_to) == (
        "big",
        "queue_full",
        VOICEMAIL,
        None,
    )
    assert d.contact(T, "c4") is None
    assert d.waiting(T, "sales") == ["c1", "c2"]


def test_a_full_queue_still_offers_to_a_free_agent() -> None:
    _, d = make()
    d.configure_queue(queue(max_size=1, overflow=VOICEMAIL))
    d.sign_in(agent("fr", skills={"french": 5}), ready=True)
    assert d.enqueue(T, "de1", "sales", skills=["german"]) == []  # nobody speaks German
    assert d.waiting(T, "sales") == ["de1"]  # the queue is full now
    out = d.enqueue(T, "fr1", "sales", skills=["french"])
    assert (offers(out), overflows(out)) == ([("fr1", "fr")], [])  # it never had to wait
    [overflow] = overflows(d.enqueue(T, "de2", "sales", skills=["german"]))
    assert (overflow.reason, overflow.target) == ("queue_full", VOICEMAIL)
    assert d.waiting(T, "sales") == ["de1"]


def test_abandon_while_waiting_and_while_ringing() -> None:
    _, d = make()
    staffed(d, "a1")
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "c2", "sales")
    d.enqueue(T, "c3", "sales")
    assert d.abandon(T, "c3") == []
    assert d.waiting(T, "sales") == ["c2"]
    out = d.abandon(T, "c1")  # ringing at a1: withdrawn, a1 takes c2
    assert withdrawals(out) == [("c1", "a1", "abandoned")]
    assert offers(out) == [("c2", "a1")]
    assert d.contact(T, "c1") is None
    assert d.queue_snapshot(T, "sales").abandoned == 2
    with pytest.raises(UnknownContact):
        d.abandon(T, "c1")


def test_a_queued_callback_keeps_its_place_and_calls_the_agent_first() -> None:
    clock, d = make()
    staffed(d, max_wait=60.0, callback_max_wait=3600.0)
    d.enqueue(T, "c1", "sales")
    clock.advance(1)
    d.enqueue(T, "c2", "sales")
    clock.advance(1)
    d.enqueue(T, "c3", "sales")
    assert d.convert_to_callback(T, "c2", "+8613800000000") == []
    assert d.waiting(T, "sales") == ["c1", "c2", "c3"]
    assert live(d, "c2").kind is ContactKind.CALLBACK
    clock.advance(58)
    # the calls that are still on hold overflow; the callback waits for its own limit
    assert [o.contact_id for o in overflows(d.tick())] == ["c1"]
    d.sign_in(agent("a1"))
    [offer] = callbacks(d.ready(T, "a1"))
    assert (offer.contact_id, offer.agent_id, offer.number) == ("c2", "a1", "+8613800000000")
    assert offer.endpoints == ("sip:a1@phones",)
    d.offer_accepted(T, "c2", "a1")  # the agent's leg answered: now dial the customer
    assert live(d, "c2").state is ContactState.CONNECTED


def test_a_callback_under_ring_all_rings_one_agent() -> None:
    _, d = make()
    staffed(d, strategy=Strategy.RING_ALL)
    d.enqueue(T, "c1", "sales")
    d.convert_to_callback(T, "c1", "555")
    d.sign_in(agent("a1"), ready=True)
    d.sign_in(agent("a2"), ready=True)
    d.offer_failed(T, "c1", "a1")
    assert [(o.contact_id, o.agent_id) for o in callbacks(d.ready(T, "a1"))] == []  # a2 has it
    assert live(d, "c1").offers == {"a2"}


def test_callback_rules() -> None:
    clock, d = make()
    staffed(d, callback_max_wait=100.0)
    d.enqueue(T, "c1", "sales")
    with pytest.raises(Invalid):
        d.convert_to_callback(T, "c1", "")
    d.convert_to_callback(T, "c1", "555")
    with pytest.raises(IllegalTransition, match="become a callback"):
        d.convert_to_callback(T, "c1", "555")
    clock.advance(100)
    [overflow] = overflows(d.tick())
    assert overflow.callback_number == "555"
    d.enqueue(T, "c2", "sales")
    d.convert_to_callback(T, "c2", "556")
    d.abandon(T, "c2")  # the customer cancelled it
    snap = d.queue_snapshot(T, "sales")
    assert (snap.callbacks, snap.callbacks_cancelled, snap.abandoned) == (2, 1, 0)


def test_duplicate_contact_ids_are_refused() -> None:
    _, d = make()
    staffed(d)
    d.enqueue(T, "c1", "sales")
    with pytest.raises(Conflict, match="already in the ACD"):
        d.enqueue(T, "c1", "sales")


def test_tenants_never_share_agents() -> None:
    _, d = make()
    d.configure_queue(queue(tenant_id="t1"))
    d.configure_queue(queue(tenant_id="t2"))
    d.sign_in(agent("a1", tenant_id="t1"), ready=True)
    assert d.enqueue("t2", "c1", "sales") == []
    assert d.waiting("t2", "sales") == ["c1"]
    assert d.agent("t1", "a1").available


def test_changing_the_strategy_resorts_the_free_agents() -> None:
    clock, d = make()
    staffed(d, "a1", "a2", "a3")
    d.update_agent(agent("a3", skills={"sales": 9}))
    d.configure_queue(queue(strategy=Strategy.SKILLS_WEIGHTED, skills=[SkillNeed("sales", 1)]))
    clock.advance(1)
    assert offers(d.enqueue(T, "c1", "sales")) == [("c1", "a3")]


def test_queue_config_validation() -> None:
    with pytest.raises(Invalid, match="overflow to itself"):
        QueueConfig(T, "q", overflow=OverflowTarget(OverflowKind.QUEUE, "q"))
    with pytest.raises(Invalid, match="ring_timeout"):
        QueueConfig(T, "q", ring_timeout=0)
    with pytest.raises(Invalid, match="max_size"):
        QueueConfig(T, "q", max_size=0)
    with pytest.raises(Invalid, match="minimum level"):
        SkillNeed("sales", 0)


def test_routing_records_carry_the_figures() -> None:
    clock, d = make()
    staffed(d, max_wait=None)
    d.sign_in(agent("a1"))
    d.enqueue(T, "c1", "sales")
    clock.advance(4)
    d.enqueue(T, "c2", "sales")
    clock.advance(6)
    [offer] = [o for o in d.ready(T, "a1") if isinstance(o, Offer)]
    record = offer.record
    assert (record.trigger, record.free_agents, record.waiting) == ("agent_free", 1, 2)
    assert (record.longest_wait, record.contact_wait) == (10.0, 10.0)
    assert record.decided_at == clock.now()
    d.sign_in(agent("a2"), ready=True)  # takes c2
    d.sign_in(agent("a3"), ready=True)
    d.sign_in(agent("a4"), ready=True)
    [offer] = [o for o in d.enqueue(T, "c3", "sales") if isinstance(o, Offer)]
    record = offer.record
    assert (record.trigger, record.free_agents, record.waiting, record.agent_ids) == (
        "contact_arrived",
        2,
        0,
        ("a3",),
    )
