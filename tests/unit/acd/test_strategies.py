"""Each strategy chooses the agent it promises to."""

from telportal.acd import AgentState, Distributor, Offer, SkillNeed, Strategy
from telportal.tenancy.schemas import QueueStrategy
from tests.unit.acd.support import T, agent, live, make, offers, queue, staffed, withdrawals


def serve(d: Distributor, contact_id: str) -> str:
    """Enqueue a contact, let the chosen agent answer and finish it; who was it?"""
    [(_, agent_id)] = offers(d.enqueue(T, contact_id, "sales"))
    d.offer_accepted(T, contact_id, agent_id)
    d.contact_ended(T, contact_id)
    return agent_id


def test_strategy_values_match_the_configuration_schema() -> None:
    assert {s.value for s in Strategy} == {s.value for s in QueueStrategy}


def test_longest_idle_picks_the_agent_free_the_longest() -> None:
    clock, d = make()
    staffed(d, strategy=Strategy.LONGEST_IDLE, wrap_up=0.0)
    for agent_id in ("a1", "a2", "a3"):
        d.sign_in(agent(agent_id), ready=True)
        clock.advance(1)
    assert serve(d, "c1") == "a1"
    clock.advance(1)
    # a1 is free again but only just: a2 has waited longest now
    assert [serve(d, "c2"), serve(d, "c3")] == ["a2", "a3"]
    clock.advance(1)
    assert serve(d, "c4") == "a1"


def test_going_not_ready_and_back_restarts_idle_time() -> None:
    clock, d = make()
    staffed(d, "a1", "a2")
    clock.advance(5)
    d.not_ready(T, "a1", "break")
    d.ready(T, "a1")
    assert offers(d.enqueue(T, "c1", "sales")) == [("c1", "a2")]


def test_least_calls_picks_the_fewest_calls_today() -> None:
    clock, d = make()
    staffed(d, strategy=Strategy.LEAST_CALLS, wrap_up=0.0)
    d.sign_in(agent("a1"), ready=True)
    clock.advance(1)
    d.sign_in(agent("a2"), ready=True)
    clock.advance(1)
    # a1 then a2 take a call (the tie on zero calls goes to the longest idle, a1)
    assert serve(d, "c1") == "a1"
    assert serve(d, "c2") == "a2"
    assert serve(d, "c3") == "a1"  # both have one: a1 has been free longer
    clock.advance(1)
    d.sign_in(agent("a3"), ready=True)  # newest and least idle, but no calls yet
    assert serve(d, "c4") == "a3"
    assert serve(d, "c5") == "a2"  # one call against a1's two
    assert [d.agent(T, a).calls_today for a in ("a1", "a2", "a3")] == [2, 2, 1]
    d.start_day(T)
    assert [d.agent(T, a).calls_today for a in ("a1", "a2", "a3")] == [0, 0, 0]


def test_skills_weighted_picks_the_most_proficient() -> None:
    _, d = make()
    d.configure_queue(
        queue(strategy=Strategy.SKILLS_WEIGHTED, skills=[SkillNeed("sales", 2)], wrap_up=0.0)
    )
    d.sign_in(agent("a1", skills={"sales": 3, "french": 9}), ready=True)
    d.sign_in(agent("a2", skills={"sales": 9}), ready=True)
    d.sign_in(agent("a3", skills={"sales": 6, "french": 5}), ready=True)
    d.sign_in(agent("a4", skills={"sales": 1}), ready=True)  # below the minimum
    assert offers(d.enqueue(T, "c1", "sales")) == [("c1", "a2")]
    # with French needed too: a1 scores 3 + 9, a3 scores 6 + 5
    assert offers(d.enqueue(T, "c2", "sales", skills=["french"])) == [("c2", "a1")]
    assert offers(d.enqueue(T, "c3", "sales")) == [("c3", "a3")]
    assert offers(d.enqueue(T, "c4", "sales")) == []  # a4 lacks the level


def test_round_robin_goes_round_in_order_skipping_busy_agents() -> None:
    clock, d = make()
    staffed(d, "a1", "a2", "a3", strategy=Strategy.ROUND_ROBIN, wrap_up=0.0)
    clock.advance(1)
    # a3 is now the longest idle; round robin does not care
    d.not_ready(T, "a1", "x")
    d.ready(T, "a1")
    d.not_ready(T, "a2", "x")
    d.ready(T, "a2")
    assert serve(d, "c1") == "a1"
    assert offers(d.enqueue(T, "c2", "sales")) == [("c2", "a2")]  # a2 keeps ringing
    assert serve(d, "c3") == "a3"
    assert serve(d, "c4") == "a1"  # wraps round, skipping nobody
    assert serve(d, "c5") == "a3"  # a2 is still ringing: skipped


def test_ring_all_offers_everyone_and_the_first_to_accept_wins() -> None:
    _, d = make()
    staffed(d, "a1", "a2", "a3", strategy=Strategy.RING_ALL)
    d.sign_in(agent("a4"))  # not ready: not rung
    out = d.enqueue(T, "c1", "sales")
    assert offers(out) == [("c1", "a1"), ("c1", "a2"), ("c1", "a3")]
    assert all(o.ring_all for o in out if isinstance(o, Offer))
    assert live(d, "c1").offers == {"a1", "a2", "a3"}
    out = d.offer_accepted(T, "c1", "a2")
    assert withdrawals(out) == [
        ("c1", "a1", "answered_elsewhere"),
        ("c1", "a3", "answered_elsewhere"),
    ]
    assert [d.agent(T, a).state for a in ("a1", "a2", "a3")] == [
        AgentState.READY,
        AgentState.TALKING,
        AgentState.READY,
    ]
    assert live(d, "c1").offers == frozenset()
    # the losers are free at once for the next contact
    assert offers(d.enqueue(T, "c2", "sales")) == [("c2", "a1"), ("c2", "a3")]


def test_ring_all_losers_take_a_waiting_contact_at_once() -> None:
    _, d = make()
    d.configure_queue(queue(strategy=Strategy.RING_ALL))
    d.configure_queue(queue("support"))
    d.sign_in(agent("a1", queues=["sales"]), ready=True)
    d.sign_in(agent("a2", queues=["sales", "support"]), ready=True)
    d.enqueue(T, "c1", "sales")
    d.enqueue(T, "s1", "support")  # a2 is ringing for c1: s1 waits
    assert d.waiting(T, "support") == ["s1"]
    out = d.offer_accepted(T, "c1", "a1")
    assert withdrawals(out) == [("c1", "a2", "answered_elsewhere")]
    assert offers(out) == [("s1", "a2")]


def test_ring_all_when_nobody_answers_everyone_goes_not_ready() -> None:
    clock, d = make()
    staffed(d, "a1", "a2", strategy=Strategy.RING_ALL, ring_timeout=10.0)
    d.enqueue(T, "c1", "sales")
    d.offer_failed(T, "c1", "a1", "declined")
    assert live(d, "c1").offers == {"a2"}
    clock.advance(10)
    out = d.tick()
    assert withdrawals(out) == [("c1", "a2", "no_answer")]
    assert [d.agent(T, a).reason for a in ("a1", "a2")] == ["declined", "no-answer"]
    assert d.waiting(T, "sales") == ["c1"]
