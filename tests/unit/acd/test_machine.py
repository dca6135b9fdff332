"""A model-based test: random sequences of agent and caller events against the rules.

The machine drives a distributor with every kind of event (sign in and out, ready,
not ready, reachability, arrivals with random priority and skills, answers, failed
offers, hang-ups, abandons, callbacks, wrap-up, time passing) and keeps its own
record of each contact built only from the decisions the distributor returned. After
every step it checks that:
- no agent holds more contacts than its capacity;
- each contact is in exactly one place (waiting, offered, connected, gone), the
  decisions told the caller exactly that, and only a ring-all call is offered to more
  than one agent at once;
- no contact waits while an agent who could take it is free;
- waiting lists are in priority then arrival order, and no call waits past its
  maximum wait.
At the end of every run: with every agent made ready and time moved past the longest
maximum wait, no contact is left waiting.
"""

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from telportal.acd import (
    AgentProfile,
    AgentState,
    ContactKind,
    ContactState,
    Decision,
    Distributor,
    Offer,
    OfferCallback,
    Overflow,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    SkillNeed,
    Strategy,
    Withdraw,
)
from telportal.acd.skills import meets
from telportal.clock import FakeClock

T = "tenant-m"


def _queue(queue_id: str, strategy: Strategy, **options: Any) -> QueueConfig:
    return QueueConfig(T, queue_id, strategy, **options)


QUEUES = {
    q.queue_id: q
    for q in [
        _queue(
            "sales",
            Strategy.LONGEST_IDLE,
            skills=frozenset({SkillNeed("sales", 1)}),
            ring_timeout=10.0,
            wrap_up=5.0,
            max_wait=60.0,
            max_size=4,
            overflow=OverflowTarget(OverflowKind.QUEUE, "backup"),
            callback_max_wait=120.0,
        ),
        _queue(
            "backup",
            Strategy.ROUND_ROBIN,
            ring_timeout=10.0,
            wrap_up=0.0,
            max_wait=90.0,
            overflow=OverflowTarget(OverflowKind.VOICEMAIL, "vm"),
            callback_max_wait=120.0,
        ),
        _queue(
            "vip",
            Strategy.RING_ALL,
            priority=10,
            skills=frozenset({SkillNeed("sales", 5)}),
            ring_timeout=10.0,
            wrap_up=3.0,
            max_wait=45.0,
            max_size=3,
            overflow=OverflowTarget(OverflowKind.QUEUE, "sales"),
            callback_max_wait=120.0,
        ),
        _queue(
            "tech",
            Strategy.LEAST_CALLS,
            skills=frozenset({SkillNeed("tech", 3)}),
            ring_timeout=8.0,
            max_wait=50.0,
            overflow=OverflowTarget(OverflowKind.CALLBACK, "cb"),
            callback_max_wait=120.0,
        ),
        _queue(
            "billing",
            Strategy.SKILLS_WEIGHTED,
            skills=frozenset({SkillNeed("billing", 2)}),
            ring_timeout=12.0,
            max_wait=40.0,
            overflow=OverflowTarget(OverflowKind.SUPERVISOR, "boss"),
            callback_max_wait=100.0,
        ),
    ]
}
LONGEST_WAIT = sum(max(q.max_wait or 0, q.callback_max_wait or 0) for q in QUEUES.values())


def _agent(agent_id: str, queues: set[str], skills: dict[str, int], **options: Any) -> AgentProfile:
    return AgentProfile(T, agent_id, skills, frozenset(queues), **options)


PROFILES = {
    p.agent_id: p
    for p in [
        _agent("a0", {"sales", "backup", "vip"}, {"sales": 5}),
        _agent("a1", {"sales", "vip"}, {"sales": 7, "french": 4}, wrap_up=0.0),
        _agent("a2", {"vip", "tech"}, {"sales": 5, "tech": 6}, capacity=2),
        _agent("a3", {"tech", "billing"}, {"tech": 3, "billing": 8}),
        _agent(
            "a4",
            {"billing", "backup", "sales"},
            {"billing": 2, "sales": 1, "french": 9},
            wrap_up=2.0,
        ),
        _agent("a5", {"backup"}, {}, capacity=3),
    ]
}
AGENTS = sorted(PROFILES)
# "ready" twice: agents are more often ready than not, so that contacts get offered
AGENT_EVENTS = ["sign_in", "sign_out", "ready", "ready", "not_ready", "unreachable", "reachable"]
AGENT_EVENTS.append("end_wrap_up")
EXTRA_SKILLS = [(), ("french",), (SkillNeed("sales", 6),), ("french", SkillNeed("billing", 5))]


@dataclass
class Tracked:
    """What the decisions have told the caller about one contact."""

    first_queue: str
    max_wait: float | None
    offers: set[str] = field(default_factory=set)
    agent: str | None = None
    gone: bool = False

    @property
    def place(self) -> ContactState:
        if self.gone:
            return ContactState.FINISHED
        if self.agent is not None:
            return ContactState.CONNECTED
        return ContactState.OFFERED if self.offers else ContactState.WAITING


class DistributorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.d = Distributor(self.clock)
        for config in QUEUES.values():
            self.d.configure_queue(config)
        self.tracked: dict[str, Tracked] = {}
        self.count = 0

    # -- feeding decisions into the record ------------------------------------------

    def apply(self, decisions: list[Decision]) -> None:
        for decision in decisions:
            if isinstance(decision, Offer | OfferCallback):
                tracked = self.tracked[decision.contact_id]
                assert tracked.place in (ContactState.WAITING, ContactState.OFFERED)
                assert decision.agent_id not in tracked.offers, "offered twice to one agent"
                if tracked.offers:
                    assert isinstance(decision, Offer)
                    assert decision.ring_all, "a second offer outside ring all"
                tracked.offers.add(decision.agent_id)
                record = decision.record
                assert record.contact_id == decision.contact_id
                assert decision.agent_id in record.agent_ids
                profile = PROFILES[decision.agent_id]
                assert record.queue_id in profile.queues, "offered outside the agent's queues"
                assert meets(profile.skills, record.needs), "offered to an agent lacking skills"
                agent = self.d.agent(T, decision.agent_id)
                assert agent.reachable, "offered to an unreachable agent"
                assert agent.state is not AgentState.SIGNED_OUT
            elif isinstance(decision, Withdraw):
                tracked = self.tracked[decision.contact_id]
                assert decision.agent_id in tracked.offers, "withdrawing an offer never made"
                tracked.offers.discard(decision.agent_id)
            elif isinstance(decision, Overflow):
                tracked = self.tracked[decision.contact_id]
                assert tracked.place is ContactState.WAITING
                tracked.gone = decision.moved_to is None

    def live(self, state: ContactState) -> list[str]:
        return sorted(c for c, t in self.tracked.items() if t.place is state)

    def signed_in(self) -> list[str]:
        return sorted(v.agent_id for v in self.d.agents(T) if v.state is not AgentState.SIGNED_OUT)

    def kind(self, contact_id: str) -> ContactKind:
        view = self.d.contact(T, contact_id)
        assert view is not None
        return view.kind

    def known(self) -> set[str]:
        return {view.agent_id for view in self.d.agents(T)}

    # -- agents ----------------------------------------------------------------------

    @initialize(ready=st.lists(st.booleans(), min_size=len(AGENTS), max_size=len(AGENTS)))
    def staff(self, ready: list[bool]) -> None:
        for agent_id, is_ready in zip(AGENTS, ready, strict=True):
            self.apply(self.d.sign_in(PROFILES[agent_id], ready=is_ready))

    @rule(
        agent_id=st.sampled_from(AGENTS),
        event=st.sampled_from(AGENT_EVENTS),
    )
    def agent_event(self, agent_id: str, event: str) -> None:
        """One agent does something; what its state does not allow is skipped."""
        view = self.d.agent(T, agent_id)
        signed_in = view.state is not AgentState.SIGNED_OUT
        if event == "sign_in" and not signed_in:
            self.apply(self.d.sign_in(PROFILES[agent_id], ready=True))
        elif event == "sign_out" and signed_in and not view.connected:
            self.apply(self.d.sign_out(T, agent_id))
        elif event == "ready" and signed_in:
            self.apply(self.d.ready(T, agent_id))
        elif event == "not_ready" and signed_in:
            self.apply(self.d.not_ready(T, agent_id, "break"))
        elif event in ("reachable", "unreachable"):
            self.apply(self.d.set_reachable(T, agent_id, event == "reachable"))
        elif event == "end_wrap_up" and view.state is AgentState.WRAP_UP:
            self.apply(self.d.end_wrap_up(T, agent_id))

    # -- contacts --------------------------------------------------------------------

    @rule(
        queue_id=st.sampled_from([*sorted(QUEUES), "vip"]),  # ring all twice as often
        priority=st.integers(0, 3),
        importance=st.integers(0, 2),
        extra=st.sampled_from(EXTRA_SKILLS),
        max_wait=st.none() | st.sampled_from([5.0, 30.0]),
    )
    def arrive(
        self,
        queue_id: str,
        priority: int,
        importance: int,
        extra: tuple[SkillNeed | str, ...],
        max_wait: float | None,
    ) -> None:
        self.count += 1
        contact_id = f"c{self.count}"
        self.tracked[contact_id] = Tracked(queue_id, max_wait)
        self.apply(
            self.d.enqueue(
                T,
                contact_id,
                queue_id,
                priority=priority,
                importance=importance,
                skills=extra,
                max_wait=max_wait,
            )
        )

    @precondition(lambda self: any(t.offers for t in self.tracked.values()))
    @rule(data=st.data(), answer=st.sampled_from(["accept", "accept", "no-answer", "declined"]))
    def respond(self, data: st.DataObject, answer: str) -> None:
        """An offered agent answers, or the signaling layer reports the offer failed."""
        contact_id = data.draw(st.sampled_from(self.live(ContactState.OFFERED)))
        tracked = self.tracked[contact_id]
        agent_id = data.draw(st.sampled_from(sorted(tracked.offers)))
        tracked.offers.discard(agent_id)
        if answer == "accept":
            others = set(tracked.offers)
            out = self.d.offer_accepted(T, contact_id, agent_id)
            assert {
                w.agent_id for w in out if isinstance(w, Withdraw) and w.contact_id == contact_id
            } == others, "the other ring-all offers were not withdrawn"
            self.apply(out)
            assert not tracked.offers
            tracked.agent = agent_id
        else:
            self.apply(self.d.offer_failed(T, contact_id, agent_id, answer))
            assert self.d.agent(T, agent_id).reason == answer

    @precondition(lambda self: any(t.agent for t in self.tracked.values() if not t.gone))
    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        contact_id = data.draw(st.sampled_from(self.live(ContactState.CONNECTED)))
        self.tracked[contact_id].gone = True
        self.apply(self.d.contact_ended(T, contact_id))

    @precondition(lambda self: any(not t.gone and not t.agent for t in self.tracked.values()))
    @rule(data=st.data(), to_callback=st.booleans())
    def caller_leaves(self, data: st.DataObject, to_callback: bool) -> None:
        """The caller hangs up before being answered, or asks to be called back."""
        waiting = self.live(ContactState.WAITING)
        calls = [c for c in waiting if self.kind(c) is ContactKind.CALL]
        if to_callback and calls:
            self.apply(self.d.convert_to_callback(T, data.draw(st.sampled_from(calls)), "555"))
            return
        contact_id = data.draw(st.sampled_from(waiting + self.live(ContactState.OFFERED)))
        tracked = self.tracked[contact_id]
        withdrawn = set(tracked.offers)
        tracked.gone = True
        out = self.d.abandon(T, contact_id)
        self.apply(out)
        assert {w.agent_id for w in out if isinstance(w, Withdraw)} == withdrawn
        tracked.offers.clear()

    @rule(seconds=st.sampled_from([0.5, 2.0, 5.0, 11.0, 30.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.apply(self.d.tick())

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        for view in self.d.agents(T):
            assert len(view.offers) + len(view.connected) <= view.capacity

    @invariant()
    def each_contact_is_in_exactly_one_place(self) -> None:
        agents = {view.agent_id: view for view in self.d.agents(T)}
        live = {view.contact_id: view for view in self.d.contacts(T)}
        for contact_id, tracked in self.tracked.items():
            view = live.pop(contact_id, None)
            if tracked.place is ContactState.FINISHED:
                assert view is None, f"{contact_id} should have left the ACD"
                continue
            assert view is not None, f"{contact_id} was lost"
            assert view.state is tracked.place, (contact_id, view.state, tracked.place)
            assert view.offers == tracked.offers
            assert view.agent_id == tracked.agent
            if len(view.offers) > 1:
                assert QUEUES[view.queue_id].strategy is Strategy.RING_ALL
                assert view.kind is ContactKind.CALL
            for agent_id in view.offers:
                assert contact_id in agents[agent_id].offers
                assert agents[agent_id].state is not AgentState.SIGNED_OUT
            if view.agent_id is not None:
                assert contact_id in agents[view.agent_id].connected
        assert live == {}, "contacts the decisions never mentioned"
        for agent in agents.values():
            for contact_id in agent.offers:
                assert agent.agent_id in self.tracked[contact_id].offers
            for contact_id in agent.connected:
                assert self.tracked[contact_id].agent == agent.agent_id

    @invariant()
    def no_contact_waits_while_an_agent_who_could_take_it_is_free(self) -> None:
        free = [view for view in self.d.agents(T) if view.available]
        for view in self.d.contacts(T):
            if view.state is not ContactState.WAITING:
                continue
            for agent in free:
                profile = PROFILES[agent.agent_id]
                assert not (
                    view.queue_id in profile.queues and meets(profile.skills, view.needs)
                ), f"{view.contact_id} waits while {agent.agent_id} is free"

    @invariant()
    def waiting_lists_are_in_order_and_within_max_wait(self) -> None:
        now = self.clock.monotonic()
        by_queue: dict[str, list[str]] = {q: [] for q in QUEUES}
        for view in self.d.contacts(T):
            if view.state is ContactState.WAITING:
                by_queue[view.queue_id].append(view.contact_id)
                config = QUEUES[view.queue_id]
                tracked = self.tracked[view.contact_id]
                if view.kind is ContactKind.CALLBACK:
                    limit = config.callback_max_wait
                elif view.queue_id == tracked.first_queue and tracked.max_wait is not None:
                    limit = tracked.max_wait
                else:
                    limit = config.max_wait
                assert limit is None or now - view.enqueued_at < limit
        for queue_id, members in by_queue.items():
            order = self.d.waiting(T, queue_id)
            assert sorted(order) == sorted(members)
            keys = []
            for contact_id in order:
                view = self.d.contact(T, contact_id)
                assert view is not None
                keys.append((-view.priority, view.enqueued_at))
            assert keys == sorted(keys)

    # -- liveness ----------------------------------------------------------------------

    def teardown(self) -> None:
        step = 10.0  # shorter than any ring timeout's double: offers time out, get re-made
        for _ in range(int(LONGEST_WAIT / step) + 10):
            signed_in = set(self.signed_in())
            for agent_id in AGENTS:
                if agent_id in signed_in:
                    self.apply(self.d.set_reachable(T, agent_id, True))
                    self.apply(self.d.ready(T, agent_id))
                else:
                    self.apply(self.d.sign_in(PROFILES[agent_id], ready=True))
            self.clock.advance(step)
            self.apply(self.d.tick())
        assert self.live(ContactState.WAITING) == []
        assert [v for v in self.d.contacts(T) if v.state is ContactState.WAITING] == []


DistributorMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDistributorMachine = DistributorMachine.TestCase
