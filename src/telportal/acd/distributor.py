"""The distributor: the ACD of a site, for many tenants, with no IO.

Events go in as method calls, each returning the decisions it made, in order (see
`decisions`). Time is the injected clock's; deadlines (ring timeouts, wrap-up ends,
maximum waits) fire in `tick()`, which the adapter calls when `next_deadline()` comes.
Tenants never meet: every call names its tenant first, and each tenant has its own
agents, queues and contacts.

    when                                          call
    --------------------------------------------  ------------------------------------------
    queue configuration loaded or changed         configure_queue(QueueConfig)
    an agent signs in / out, or is edited         sign_in(AgentProfile) / sign_out / update_agent
    the agent presses ready / not ready           ready / not_ready(reason)
    the agent's only phone registers / expires    set_reachable(True / False)
    a call reaches a queue step                   enqueue
    the agent answers an Offer (or, for a         offer_accepted
    callback, the agent's leg answers)
    the agent's leg is declined, busy, fails      offer_failed(reason)
    the caller hangs up before being connected    abandon
    the connected conversation ends               contact_ended
    the caller asks to be called back             convert_to_callback(number)
    the agent ends wrap-up early                  end_wrap_up
    the time from next_deadline() has come        tick()
    the tenant's midnight                         start_day

The rules every decision keeps:
- an agent holds at most `capacity` contacts (offered plus connected);
- a contact is in one place: waiting, offered (to one agent, or to several only under
  ring all, where the first to accept wins and the rest are withdrawn), connected, or
  gone; it is never offered twice at once;
- no contact waits while an agent who could take it is free (`queues` explains how);
- a waiting contact leaves only by being answered, overflowed or abandoned, and with a
  maximum wait configured it does not wait past it.
"""

from collections import Counter
from collections.abc import Iterable

from telportal.acd.agents import (
    NO_ANSWER_REASON,
    SIGNED_IN_REASON,
    Agent,
    AgentProfile,
    AgentState,
    AgentView,
)
from telportal.acd.centers import CenterFigures, SkillLoad
from telportal.acd.contacts import Contact, ContactKind, ContactState, ContactView
from telportal.acd.decisions import (
    AgentStateChanged,
    Decision,
    Offer,
    OfferCallback,
    Overflow,
    OverflowReason,
    RoutingRecord,
    Trigger,
    Withdraw,
    WithdrawReason,
)
from telportal.acd.errors import UnknownAgent, UnknownContact, UnknownObject, UnknownQueue
from telportal.acd.estimates import WaitEstimate, estimate_wait
from telportal.acd.queues import OverflowKind, Pool, QueueConfig, QueueState, Strategy
from telportal.acd.skills import Needs, SkillNeed, meets, needs_of
from telportal.acd.stats import (
    AgentSnapshot,
    AgentTally,
    QueueSnapshot,
    agent_snapshot,
    queue_snapshot,
)
from telportal.acd.strategies import agent_key, pick
from telportal.acd.timers import Due, DueKind, TimerHeap
from telportal.clock import Clock
from telportal.errors import Conflict, Invalid

_NEEDS_CACHE = 4096


class _Tenant:
    __slots__ = ("agents", "contacts", "members", "next_order", "queues", "tallies", "tenant_id")

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.queues: dict[str, QueueState] = {}
        self.agents: dict[str, Agent] = {}
        self.tallies: dict[str, AgentTally] = {}
        self.contacts: dict[str, Contact] = {}
        # queue id -> signed-in agents who answer it; kept for queues not configured yet too
        self.members: dict[str, set[str]] = {}
        self.next_order = 0

    def agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(agent_id)
        return agent

    def contact(self, contact_id: str) -> Contact:
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise UnknownContact(contact_id)
        return contact

    def queue(self, queue_id: str) -> QueueState:
        queue = self.queues.get(queue_id)
        if queue is None:
            raise UnknownQueue(queue_id)
        return queue


class Distributor:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tenants: dict[str, _Tenant] = {}
        self._timers: TimerHeap[Due] = TimerHeap()
        self._out: list[Decision] = []
        self._touched: list[tuple[_Tenant, Agent]] = []
        self._sequence = 0
        self._needs: dict[tuple[SkillNeed | str, ...], Needs] = {}

    # -- configuration --------------------------------------------------------------

    def configure_queue(self, config: QueueConfig) -> list[Decision]:
        """Add a queue, or change one; a new strategy or new skills re-sort its lists.

        Contacts already in the queue keep the maximum wait they started with.
        """
        now = self._begin()
        tenant = self._tenant(config.tenant_id, create=True)
        queue = tenant.queues.get(config.queue_id)
        if queue is None:
            tenant.queues[config.queue_id] = QueueState(config)
            return self._finish(now)
        old = queue.config
        queue.config = config
        queue.merged = {}
        if old.strategy is not config.strategy or old.skills != config.skills:
            self._rebuild(tenant, queue, now)
        return self._finish(now)

    # -- agents ---------------------------------------------------------------------

    def sign_in(
        self, profile: AgentProfile, *, ready: bool = False, reachable: bool = True
    ) -> list[Decision]:
        now = self._begin()
        tenant = self._tenant(profile.tenant_id, create=True)
        agent = tenant.agents.get(profile.agent_id)
        if agent is not None and agent.signed_in:
            raise agent.refuse("sign in")
        if agent is None:
            agent = Agent(profile, tenant.next_order, now)
            tenant.next_order += 1
            tenant.agents[profile.agent_id] = agent
            tenant.tallies[profile.agent_id] = AgentTally(AgentState.SIGNED_OUT, now)
        agent.profile = profile
        agent.signed_in = True
        agent.ready = ready
        agent.reason = None if ready else SIGNED_IN_REASON
        agent.reachable = reachable
        agent.available_since = now
        self._join(tenant, agent)
        self._touch(tenant, agent)
        self._agent_free(tenant, agent, now)
        return self._finish(now)

    def sign_out(self, tenant_id: str, agent_id: str) -> list[Decision]:
        """Sign out; offers ringing are withdrawn and their contacts keep their place."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        agent.require_signed_in("sign out")
        if agent.connected:
            raise agent.refuse("sign out while connected to a contact")
        if agent.wrap_until is not None:
            self._close_wrap_up(tenant, agent, now)
        orphans = self._withdraw_all(tenant, agent, "signed_out")
        self._leave(tenant, agent)
        agent.signed_in = False
        agent.ready = False
        agent.reason = None
        self._touch(tenant, agent)
        for contact in orphans:
            self._requeue(tenant, contact, now)
        return self._finish(now)

    def update_agent(self, profile: AgentProfile) -> list[Decision]:
        """New skills, queues or capacity; a signed-in agent is re-indexed at once."""
        now = self._begin()
        tenant = self._tenant(profile.tenant_id)
        agent = tenant.agent(profile.agent_id)
        if not agent.signed_in:
            agent.profile = profile
            return self._finish(now)
        self._leave(tenant, agent)
        agent.profile = profile
        self._join(tenant, agent)
        self._touch(tenant, agent)
        self._agent_free(tenant, agent, now)
        return self._finish(now)

    def ready(self, tenant_id: str, agent_id: str) -> list[Decision]:
        now = self._begin()
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        agent.require_signed_in("go ready")
        if not agent.ready:
            agent.ready = True
            agent.reason = None
            agent.available_since = now
        self._touch(tenant, agent)
        self._agent_free(tenant, agent, now)
        return self._finish(now)

    def not_ready(self, tenant_id: str, agent_id: str, reason: str) -> list[Decision]:
        """Not ready for new contacts; offers ringing and calls in progress are kept."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        agent.require_signed_in("go not ready")
        if not reason:
            raise Invalid("reason", "going not ready needs a reason code")
        agent.ready = False
        agent.reason = reason
        self._unlist(agent)
        self._touch(tenant, agent)
        return self._finish(now)

    def set_reachable(self, tenant_id: str, agent_id: str, reachable: bool) -> list[Decision]:
        """The signaling layer's word on whether the agent can be rung at all."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        agent.reachable = reachable
        if reachable:
            self._agent_free(tenant, agent, now)
        else:
            self._unlist(agent)
        return self._finish(now)

    def end_wrap_up(self, tenant_id: str, agent_id: str) -> list[Decision]:
        now = self._begin()
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        if agent.wrap_until is None:
            raise agent.refuse("end wrap-up")
        self._close_wrap_up(tenant, agent, now)
        self._agent_free(tenant, agent, now)
        return self._finish(now)

    # -- contacts -------------------------------------------------------------------

    def enqueue(
        self,
        tenant_id: str,
        contact_id: str,
        queue_id: str,
        *,
        priority: int = 0,
        importance: int = 0,
        skills: Iterable[SkillNeed | str] = (),
        max_wait: float | None = None,
    ) -> list[Decision]:
        """A contact arrives at a queue: offered at once if an agent is free, else it waits.

        `importance` (the customer's) adds to `priority`; `skills` add to the queue's;
        `max_wait` replaces the queue's for this queue (an IVR queue step's limit).
        """
        now = self._begin()
        tenant = self._tenant(tenant_id)
        queue = tenant.queue(queue_id)
        if contact_id in tenant.contacts:
            raise Conflict(f"contact {contact_id!r} is already in the ACD")
        if max_wait is not None and max_wait <= 0:
            raise Invalid("max_wait", "must be positive")
        contact = Contact(
            tenant_id,
            contact_id,
            queue,
            priority,
            importance,
            self._own_needs(skills),
            max_wait,
            now,
        )
        tenant.contacts[contact_id] = contact
        self._place(tenant, contact, queue, now)
        return self._finish(now)

    def offer_accepted(self, tenant_id: str, contact_id: str, agent_id: str) -> list[Decision]:
        now = self._begin()
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        agent = tenant.agent(agent_id)
        if contact.state is not ContactState.OFFERED or agent_id not in contact.offers:
            raise contact.refuse(f"be accepted by agent {agent_id}: it was not offered to them")
        losers: list[Agent] = []
        for other_id in [a for a in contact.offers if a != agent_id]:
            other = tenant.agents[other_id]
            self._drop_offer(contact, other)
            self._emit(Withdraw(tenant_id, contact_id, other_id, "answered_elsewhere"))
            self._touch(tenant, other)
            losers.append(other)
        self._drop_offer(contact, agent)
        self._timers.cancel(contact.deadline_timer)
        contact.deadline_timer = None
        contact.state = ContactState.CONNECTED
        contact.agent_id = agent_id
        contact.answered_at = now
        agent.connected.add(contact_id)
        agent.calls_today += 1
        agent.available_since = now
        queue = contact.queue
        wait = now - contact.enqueued_at
        queue.tally.answer(wait, queue.config.service_level_seconds)
        queue.answer_waits.add(now, wait)
        tenant.tallies[agent_id].answered += 1
        self._touch(tenant, agent)
        for other in losers:
            self._agent_free(tenant, other, now)
        if agent.listed:  # room for more (chat): its keys changed with the call count
            self._agent_free(tenant, agent, now)
        return self._finish(now)

    def offer_failed(
        self, tenant_id: str, contact_id: str, agent_id: str, reason: str = NO_ANSWER_REASON
    ) -> list[Decision]:
        """The agent did not take the offer (declined, busy, no answer, unreachable).

        The agent goes not ready with `reason`, so the same contact is not offered to
        the same absent agent again; the contact keeps its place in the queue.
        """
        now = self._begin()
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        agent = tenant.agent(agent_id)
        if contact.state is not ContactState.OFFERED or agent_id not in contact.offers:
            raise contact.refuse(f"fail an offer to agent {agent_id}: it was not offered to them")
        if not reason:
            raise Invalid("reason", "a failed offer needs a reason code")
        self._missed(tenant, contact, agent, reason, now)
        return self._finish(now)

    def abandon(self, tenant_id: str, contact_id: str) -> list[Decision]:
        """The customer left before being connected (for a callback: cancelled it)."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        if contact.state is ContactState.CONNECTED:
            raise contact.refuse("be abandoned: it is connected (end it instead)")
        freed: list[Agent] = []
        if contact.state is ContactState.WAITING:
            self._unwait(contact)
        for agent_id in list(contact.offers):
            agent = tenant.agents[agent_id]
            self._drop_offer(contact, agent)
            self._emit(Withdraw(tenant_id, contact_id, agent_id, "abandoned"))
            self._touch(tenant, agent)
            freed.append(agent)
        tally = contact.queue.tally
        if contact.kind is ContactKind.CALLBACK:
            tally.callbacks_cancelled += 1
        else:
            tally.abandoned += 1
        self._forget(tenant, contact)
        for agent in freed:
            self._agent_free(tenant, agent, now)
        return self._finish(now)

    def contact_ended(self, tenant_id: str, contact_id: str) -> list[Decision]:
        """The conversation is over: the agent wraps up, then is free again."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        if contact.state is not ContactState.CONNECTED or contact.agent_id is None:
            raise contact.refuse("end: it is not connected (abandon it instead)")
        agent = tenant.agents[contact.agent_id]
        agent.connected.discard(contact_id)
        queue = contact.queue
        talk = now - contact.answered_at
        tenant.tallies[agent.agent_id].talk_total += talk
        self._forget(tenant, contact)
        wrap = agent.profile.wrap_up if agent.profile.wrap_up is not None else queue.config.wrap_up
        if wrap > 0:
            agent.wrap_pending.append((queue, talk, now))
            until = now + wrap
            if agent.wrap_until is None or until > agent.wrap_until:
                self._timers.cancel(agent.wrap_timer)
                agent.wrap_until = until
                agent.wrap_timer = self._timers.push(
                    until, Due(DueKind.WRAP_UP_END, tenant_id, agent_id=agent.agent_id)
                )
            self._unlist(agent)
        else:
            self._handled(tenant, agent, queue, talk, 0.0, now)
            if agent.wrap_until is None and agent.load == 0:
                agent.available_since = now
        self._touch(tenant, agent)
        self._agent_free(tenant, agent, now)
        return self._finish(now)

    def convert_to_callback(self, tenant_id: str, contact_id: str, number: str) -> list[Decision]:
        """The waiting caller will be called back; the request keeps the call's place.

        The caller's call can then be released. When an agent is free for it, the
        decision is `OfferCallback`: ring the agent first, then dial `number`.
        """
        now = self._begin()
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        if contact.state is not ContactState.WAITING or contact.kind is ContactKind.CALLBACK:
            raise contact.refuse("become a callback: only a waiting call can")
        if not number:
            raise Invalid("number", "a callback needs a number to call")
        contact.kind = ContactKind.CALLBACK
        contact.callback_number = number
        contact.queue.tally.callbacks += 1
        self._arm_deadline(tenant, contact)
        return self._finish(now)

    # -- time -----------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When `tick` has something to do, on the clock's monotonic time."""
        return self._timers.next_deadline()

    def tick(self) -> list[Decision]:
        """Fire every deadline due by now, in order, each at its own time."""
        now = self._begin()
        while (entry := self._timers.pop_due(now)) is not None:
            due, at = entry.payload, entry.deadline
            tenant = self._tenants[due.tenant_id]
            if due.kind is DueKind.RING_TIMEOUT:
                contact = tenant.contacts[due.contact_id]
                agent = tenant.agents[due.agent_id]
                self._emit(
                    Withdraw(tenant.tenant_id, contact.contact_id, agent.agent_id, "no_answer")
                )
                self._missed(tenant, contact, agent, NO_ANSWER_REASON, at)
            elif due.kind is DueKind.WRAP_UP_END:
                agent = tenant.agents[due.agent_id]
                self._close_wrap_up(tenant, agent, at)
                self._agent_free(tenant, agent, at)
            else:
                contact = tenant.contacts[due.contact_id]
                contact.deadline_timer = None
                # An offered contact is judged when it comes back (see _requeue).
                if contact.state is ContactState.WAITING:
                    self._overflow(tenant, contact, "max_wait", at)
            self._settle(at)
        return self._finish(now)

    def start_day(self, tenant_id: str) -> list[Decision]:
        """Zero the day's counters (calls today, service level, state durations)."""
        now = self._begin()
        tenant = self._tenant(tenant_id)
        for queue in tenant.queues.values():
            queue.tally.reset()
        for agent in tenant.agents.values():
            agent.calls_today = 0
            tenant.tallies[agent.agent_id].reset(now)
            if agent.listed:  # least-calls keys hold the call count
                self._agent_free(tenant, agent, now)
        return self._finish(now)

    # -- views ----------------------------------------------------------------------

    def agent(self, tenant_id: str, agent_id: str) -> AgentView:
        return self._tenant(tenant_id).agent(agent_id).view()

    def agents(self, tenant_id: str) -> list[AgentView]:
        tenant = self._tenants.get(tenant_id)
        return [] if tenant is None else [a.view() for a in tenant.agents.values()]

    def contact(self, tenant_id: str, contact_id: str) -> ContactView | None:
        """The contact, or None once it has left the ACD (or was never in it)."""
        tenant = self._tenants.get(tenant_id)
        contact = None if tenant is None else tenant.contacts.get(contact_id)
        return None if contact is None else contact.view()

    def contacts(self, tenant_id: str) -> list[ContactView]:
        tenant = self._tenants.get(tenant_id)
        return [] if tenant is None else [c.view() for c in tenant.contacts.values()]

    def waiting(self, tenant_id: str, queue_id: str) -> list[str]:
        """The queue's waiting contacts, the next to be served first."""
        return [key[3] for key in self._tenant(tenant_id).queue(queue_id).waiting]

    def position(self, tenant_id: str, contact_id: str) -> int | None:
        """1 for the next to be served; None when the contact is not waiting."""
        contact = self._tenant(tenant_id).contact(contact_id)
        if contact.state is not ContactState.WAITING:
            return None
        return contact.queue.waiting.rank(contact.key) + 1

    def estimate(self, tenant_id: str, contact_id: str) -> WaitEstimate:
        tenant = self._tenant(tenant_id)
        contact = tenant.contact(contact_id)
        position = self.position(tenant_id, contact_id)
        if position is None or contact.pool is None:
            raise contact.refuse("have its wait estimated: it is not waiting")
        now = self._clock.monotonic()
        serving = sum(1 for a in contact.pool.eligible if tenant.agents[a].staffed())
        queue = contact.queue
        return estimate_wait(
            position, serving, queue.handle_times.average(now), queue.answer_waits.average(now)
        )

    def queue_snapshot(self, tenant_id: str, queue_id: str) -> QueueSnapshot:
        tenant = self._tenant(tenant_id)
        queue = tenant.queue(queue_id)
        now = self._clock.monotonic()
        states = Counter(tenant.contacts[c].state for c in queue.contacts)
        oldest = queue.by_age.first()
        free = staffed = 0
        for agent_id in tenant.members.get(queue_id, ()):
            agent = tenant.agents[agent_id]
            if meets(agent.profile.skills, queue.config.skills):
                free += agent.can_take()
                staffed += agent.staffed()
        return queue_snapshot(
            tenant_id,
            queue_id,
            queue.tally,
            waiting=len(queue.waiting),
            ringing=states[ContactState.OFFERED],
            talking=states[ContactState.CONNECTED],
            longest_wait=0.0 if oldest is None else now - oldest[0],
            agents_free=free,
            agents_staffed=staffed,
            service_level_seconds=queue.config.service_level_seconds,
        )

    def agent_snapshot(self, tenant_id: str, agent_id: str) -> AgentSnapshot:
        tenant = self._tenant(tenant_id)
        agent = tenant.agent(agent_id)
        reason = agent.reason if agent.state is AgentState.NOT_READY else None
        return agent_snapshot(
            tenant_id, agent_id, reason, tenant.tallies[agent_id], self._clock.monotonic()
        )

    def center_figures(
        self, tenant_id: str, center_id: str, *, local: bool = False
    ) -> CenterFigures:
        """This site's live figures for `centers.choose_center`.

        Walks every agent and waiting contact of the tenant: meant to be published
        every second or so, not computed per call.
        """
        tenant = self._tenant(tenant_id)
        now = self._clock.monotonic()
        free: Counter[str] = Counter()
        staffed: Counter[str] = Counter()
        waiting: Counter[str] = Counter()
        oldest: dict[str, float] = {}
        all_free = all_staffed = all_waiting = 0
        for agent in tenant.agents.values():
            if not agent.staffed():
                continue
            is_free = agent.can_take()
            all_staffed += 1
            all_free += is_free
            for skill in agent.profile.skills:
                staffed[skill] += 1
                free[skill] += is_free
        first_enqueued = now
        for queue in tenant.queues.values():
            all_waiting += len(queue.waiting)
            head = queue.by_age.first()
            if head is not None:
                first_enqueued = min(first_enqueued, head[0])
            for key in queue.waiting:
                contact = tenant.contacts[key[3]]
                for need in contact.needs:
                    waiting[need.skill] += 1
                    oldest[need.skill] = min(oldest.get(need.skill, now), contact.enqueued_at)
        skills = {
            skill: SkillLoad(
                free[skill], staffed[skill], waiting[skill], now - oldest.get(skill, now)
            )
            for skill in set(staffed) | set(waiting)
        }
        total = SkillLoad(all_free, all_staffed, all_waiting, now - first_enqueued)
        return CenterFigures(center_id, total, skills, local=local)

    # -- the machinery --------------------------------------------------------------

    def _begin(self) -> float:
        self._out = []
        self._touched = []
        return self._clock.monotonic()

    def _finish(self, now: float) -> list[Decision]:
        self._settle(now)
        out, self._out = self._out, []
        return out

    def _emit(self, decision: Decision) -> None:
        self._out.append(decision)

    def _touch(self, tenant: _Tenant, agent: Agent) -> None:
        self._touched.append((tenant, agent))

    def _settle(self, now: float) -> None:
        """Report agents whose state changed; passing states inside one call are not."""
        for tenant, agent in self._touched:
            state = agent.state
            reason = agent.reason if state is AgentState.NOT_READY else None
            if state is agent.reported and reason == agent.reported_reason:
                continue
            agent.reported = state
            agent.reported_reason = reason
            tenant.tallies[agent.agent_id].enter(state, now)
            self._emit(AgentStateChanged(tenant.tenant_id, agent.agent_id, state, reason))
        self._touched = []

    def _tenant(self, tenant_id: str, *, create: bool = False) -> _Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            if not create:
                raise UnknownObject("tenant", tenant_id)
            tenant = self._tenants[tenant_id] = _Tenant(tenant_id)
        return tenant

    # agents in and out of pools

    def _join(self, tenant: _Tenant, agent: Agent) -> None:
        agent_id = agent.agent_id
        for queue_id in agent.profile.queues:
            tenant.members.setdefault(queue_id, set()).add(agent_id)
            queue = tenant.queues.get(queue_id)
            if queue is None:
                continue
            for pool in queue.pools.values():
                if meets(agent.profile.skills, pool.needs):
                    pool.eligible.add(agent_id)
                    agent.pools.append(pool)

    def _leave(self, tenant: _Tenant, agent: Agent) -> None:
        self._unlist(agent)
        for pool in agent.pools:
            pool.eligible.discard(agent.agent_id)
        agent.pools = []
        for queue_id in agent.profile.queues:
            tenant.members.get(queue_id, set()).discard(agent.agent_id)

    def _list(self, agent: Agent) -> None:
        agent.listed = True
        for pool in agent.pools:
            key = agent_key(pool.queue.config.strategy, agent, pool.needs)
            pool.ready.add(key)
            agent.ready_keys.append((pool, key))

    def _unlist(self, agent: Agent) -> None:
        for pool, key in agent.ready_keys:
            pool.ready.remove(key)
        agent.ready_keys = []
        agent.listed = False

    # Needs are built once per combination: a frozenset of validated records costs more
    # than the rest of a routing decision. The caches are bounded by clearing.

    def _own_needs(self, skills: Iterable[SkillNeed | str]) -> Needs:
        key = tuple(skills)
        needs = self._needs.get(key)
        if needs is None:
            if len(self._needs) >= _NEEDS_CACHE:
                self._needs.clear()
            needs = self._needs[key] = needs_of(key)
        return needs

    def _merged_needs(self, queue: QueueState, own: Needs) -> Needs:
        needs = queue.merged.get(own)
        if needs is None:
            if len(queue.merged) >= _NEEDS_CACHE:
                queue.merged.clear()
            needs = queue.merged[own] = needs_of(queue.config.skills, own)
        return needs

    def _pool(self, tenant: _Tenant, queue: QueueState, needs: Needs) -> Pool:
        pool = queue.pools.get(needs)
        if pool is not None:
            return pool
        # A new combination of needs: once per combination, never per contact.
        pool = queue.pools[needs] = Pool(queue, needs)
        for agent_id in tenant.members.get(queue.queue_id, ()):
            agent = tenant.agents[agent_id]
            if not meets(agent.profile.skills, needs):
                continue
            pool.eligible.add(agent_id)
            agent.pools.append(pool)
            if agent.listed:
                key = agent_key(queue.config.strategy, agent, needs)
                pool.ready.add(key)
                agent.ready_keys.append((pool, key))
        return pool

    def _rebuild(self, tenant: _Tenant, queue: QueueState, now: float) -> None:
        contacts = [tenant.contacts[c] for c in queue.contacts]
        waiting = [c for c in contacts if c.state is ContactState.WAITING]
        for contact in waiting:
            self._unwait(contact)
        members = [tenant.agents[a] for a in tenant.members.get(queue.queue_id, ())]
        for agent in members:
            self._unlist(agent)
            agent.pools = [p for p in agent.pools if p.queue is not queue]
        queue.pools = {}
        for contact in contacts:
            contact.needs = self._merged_needs(queue, contact.own_needs)
            contact.pool = self._pool(tenant, queue, contact.needs)
        for contact in waiting:
            self._wait(contact)
        for agent in members:
            self._agent_free(tenant, agent, now)

    # routing

    def _agent_free(self, tenant: _Tenant, agent: Agent, now: float) -> None:
        """An agent may have room: give it the best waiting contact, else list it as free."""
        if agent.listed:
            self._unlist(agent)
        while agent.can_take():
            pool = self._best_waiting_pool(agent)
            if pool is None:
                self._list(agent)
                return
            head = pool.waiting.first()
            assert head is not None
            contact = tenant.contacts[head[3]]
            self._offer(tenant, contact, [agent], "agent_free", len(pool.ready) + 1, now)

    def _best_waiting_pool(self, agent: Agent) -> Pool | None:
        best: Pool | None = None
        best_key: tuple[int, tuple[int, float, int, str]] | None = None
        for pool in agent.pools:
            head = pool.waiting.first()
            if head is None:
                continue
            key = (-pool.queue.config.priority, head)
            if best_key is None or key < best_key:
                best, best_key = pool, key
        return best

    def _route(self, tenant: _Tenant, contact: Contact, trigger: Trigger, now: float) -> bool:
        """Offer a contact that is not waiting to the free agents of its pool, if any."""
        pool = contact.pool
        assert pool is not None
        if not pool.ready:
            return False
        queue = pool.queue
        strategy = queue.config.strategy
        if strategy is Strategy.RING_ALL and contact.kind is ContactKind.CALL:
            keys = list(pool.ready)
        else:
            key = pick(strategy, pool.ready, queue.last_order)
            assert key is not None
            keys = [key]
        agents = [tenant.agents[key[3]] for key in keys]
        self._offer(tenant, contact, agents, trigger, len(pool.ready), now)
        for agent in agents:  # room left (chat): back on the lists, or another contact
            self._agent_free(tenant, agent, now)
        return True

    def _offer(
        self,
        tenant: _Tenant,
        contact: Contact,
        agents: list[Agent],
        trigger: Trigger,
        free: int,
        now: float,
    ) -> None:
        queue = contact.queue
        config = queue.config
        oldest = queue.by_age.first()
        waiting = len(queue.waiting)
        if contact.state is ContactState.WAITING:
            self._unwait(contact)
        contact.state = ContactState.OFFERED
        tenant_id, contact_id = tenant.tenant_id, contact.contact_id
        record = RoutingRecord(
            tenant_id,
            config.queue_id,
            contact_id,
            tuple(agent.agent_id for agent in agents),
            trigger,
            config.strategy,
            contact.needs,
            free_agents=free,
            waiting=waiting,
            longest_wait=0.0 if oldest is None else now - oldest[0],
            contact_wait=now - contact.enqueued_at,
            decided_at=self._clock.now(),
        )
        deadline = now + config.ring_timeout
        ring_all = config.strategy is Strategy.RING_ALL and contact.kind is ContactKind.CALL
        for agent in agents:
            agent_id = agent.agent_id
            self._unlist(agent)
            agent.offers.add(contact_id)
            contact.offers[agent_id] = self._timers.push(
                deadline, Due(DueKind.RING_TIMEOUT, tenant_id, contact_id, agent_id)
            )
            tenant.tallies[agent_id].offered += 1
            self._touch(tenant, agent)
            endpoints = agent.profile.endpoints
            if contact.kind is ContactKind.CALLBACK:
                assert contact.callback_number is not None
                self._emit(
                    OfferCallback(
                        tenant_id,
                        contact_id,
                        agent_id,
                        config.queue_id,
                        endpoints,
                        contact.callback_number,
                        config.ring_timeout,
                        record,
                    )
                )
            else:
                self._emit(
                    Offer(
                        tenant_id,
                        contact_id,
                        agent_id,
                        config.queue_id,
                        endpoints,
                        config.ring_timeout,
                        ring_all,
                        record,
                    )
                )
        queue.last_order = agents[-1].order

    def _place(self, tenant: _Tenant, contact: Contact, queue: QueueState, now: float) -> None:
        """Put a new or overflowing contact in a queue: offered, waiting, or overflowed."""
        contact.queue = queue
        contact.state = ContactState.NEW
        contact.visited.add(queue.queue_id)
        queue.contacts.add(contact.contact_id)
        self._sequence += 1
        contact.enqueued_at = now
        contact.key = (-contact.effective_priority, now, self._sequence, contact.contact_id)
        contact.age_key = (now, self._sequence, contact.contact_id)
        contact.needs = self._merged_needs(queue, contact.own_needs)
        contact.pool = self._pool(tenant, queue, contact.needs)
        queue.tally.entered += 1
        self._arm_deadline(tenant, contact)
        if self._route(tenant, contact, "contact_arrived", now):
            return
        size = queue.config.max_size
        if size is not None and len(queue.waiting) >= size:
            self._overflow(tenant, contact, "queue_full", now)
            return
        self._wait(contact)

    def _requeue(self, tenant: _Tenant, contact: Contact, now: float) -> None:
        """Every offer of a contact is gone: back to its place (its key is unchanged)."""
        if self._route(tenant, contact, "requeued", now):
            return
        if contact.deadline is not None and now >= contact.deadline:
            self._overflow(tenant, contact, "max_wait", now)
            return
        self._wait(contact)

    def _wait(self, contact: Contact) -> None:
        assert contact.pool is not None
        contact.state = ContactState.WAITING
        contact.pool.waiting.add(contact.key)
        contact.queue.waiting.add(contact.key)
        contact.queue.by_age.add(contact.age_key)

    def _unwait(self, contact: Contact) -> None:
        assert contact.pool is not None
        contact.pool.waiting.remove(contact.key)
        contact.queue.waiting.remove(contact.key)
        contact.queue.by_age.remove(contact.age_key)

    def _arm_deadline(self, tenant: _Tenant, contact: Contact) -> None:
        self._timers.cancel(contact.deadline_timer)
        contact.deadline_timer = None
        config = contact.queue.config
        if contact.kind is ContactKind.CALLBACK:
            limit = config.callback_max_wait
        else:
            limit = contact.max_wait if contact.max_wait is not None else config.max_wait
        if limit is None:
            contact.deadline = None
            return
        contact.deadline = contact.enqueued_at + limit
        contact.deadline_timer = self._timers.push(
            contact.deadline, Due(DueKind.MAX_WAIT, tenant.tenant_id, contact.contact_id)
        )

    def _overflow(
        self, tenant: _Tenant, contact: Contact, reason: OverflowReason, now: float
    ) -> None:
        queue = contact.queue
        queue.tally.overflowed += 1
        if contact.state is ContactState.WAITING:
            self._unwait(contact)
        queue.contacts.discard(contact.contact_id)
        target = queue.config.overflow
        moved_to = None
        # A contact never returns to a queue it has left: overflow chains cannot loop.
        if (
            target is not None
            and target.kind is OverflowKind.QUEUE
            and target.ref in tenant.queues
            and target.ref not in contact.visited
        ):
            moved_to = target.ref
        self._emit(
            Overflow(
                tenant.tenant_id,
                contact.contact_id,
                queue.queue_id,
                reason,
                target,
                moved_to,
                now - contact.enqueued_at,
                contact.callback_number,
            )
        )
        if moved_to is None:
            self._forget(tenant, contact)
            return
        contact.max_wait = None  # the caller's limit was for the first queue
        self._place(tenant, contact, tenant.queues[moved_to], now)

    def _forget(self, tenant: _Tenant, contact: Contact) -> None:
        contact.state = ContactState.FINISHED
        self._timers.cancel(contact.deadline_timer)
        contact.deadline_timer = None
        contact.queue.contacts.discard(contact.contact_id)
        del tenant.contacts[contact.contact_id]

    # offers ending

    def _drop_offer(self, contact: Contact, agent: Agent) -> None:
        self._timers.cancel(contact.offers.pop(agent.agent_id))
        agent.offers.discard(contact.contact_id)

    def _withdraw_all(self, tenant: _Tenant, agent: Agent, reason: WithdrawReason) -> list[Contact]:
        """Withdraw an agent's offers; the contacts left with no offer at all."""
        orphans = []
        for contact_id in sorted(agent.offers):
            contact = tenant.contacts[contact_id]
            self._drop_offer(contact, agent)
            self._emit(Withdraw(tenant.tenant_id, contact_id, agent.agent_id, reason))
            if not contact.offers:
                orphans.append(contact)
        return orphans

    def _missed(
        self, tenant: _Tenant, contact: Contact, agent: Agent, reason: str, now: float
    ) -> None:
        self._drop_offer(contact, agent)
        agent.ready = False
        agent.reason = reason
        self._unlist(agent)
        tenant.tallies[agent.agent_id].missed += 1
        self._touch(tenant, agent)
        if not contact.offers:
            self._requeue(tenant, contact, now)

    # wrap-up and handle time

    def _close_wrap_up(self, tenant: _Tenant, agent: Agent, now: float) -> None:
        for queue, talk, ended_at in agent.wrap_pending:
            self._handled(tenant, agent, queue, talk, now - ended_at, now)
        agent.wrap_pending = []
        self._timers.cancel(agent.wrap_timer)
        agent.wrap_timer = None
        agent.wrap_until = None
        if agent.load == 0:
            agent.available_since = now
        self._touch(tenant, agent)

    def _handled(
        self, tenant: _Tenant, agent: Agent, queue: QueueState, talk: float, wrap: float, now: float
    ) -> None:
        queue.tally.handle(talk, wrap)
        queue.handle_times.add(now, talk + wrap)
        tally = tenant.tallies[agent.agent_id]
        tally.handled += 1
        tally.handle_total += talk + wrap
