"""The ACD run live: the pure `Distributor` fed from the store, the phones and the API.

This adapter owns one `Distributor` for every tenant of the site. It
- loads queues (settings, required skills, members) and agents (skills, extension)
  from the store, and again when their configuration changes;
- follows phone registrations: an agent whose phone registers is signed in and made
  ready (`acd.ready_on_register`, on by default as the demo promises), and an
  agent whose only endpoint stops answering is no longer offered calls;
- takes the agent's own actions (sign in/out, ready, not ready with a reason,
  end wrap-up) from the API;
- runs the deadlines (`tick` at `next_deadline`) and carries each decision to
  whoever acts on it: offers, withdrawals and overflows to the call waiting for
  them, callbacks to the callback runner, state changes to the bus;
- publishes each queue's live figures as `QueueStatus`, at most once a second.

Everything runs on the event loop's thread, so the distributor is never entered
twice at once.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from telportal.acd import (
    AgentProfile,
    AgentStateChanged,
    CenterChoice,
    Decision,
    Distributor,
    Offer,
    OfferCallback,
    Overflow,
    OverflowKind,
    OverflowTarget,
    QueueConfig,
    QueueSnapshot,
    SkillNeed,
    Strategy,
    choose_center,
)
from telportal.center.remote_answer import RingingPhones
from telportal.clock import Clock
from telportal.errors import NotFound
from telportal.events import AgentStatus, ConfigChanged, EventBus, PhoneRegistration, QueueStatus
from telportal.store.database import Database
from telportal.store.schema import Queue, QueueMember, QueueSkill, Skill, User, UserSkill

log = logging.getLogger(__name__)

# Configuration that changes what the ACD knows.
WATCHED = frozenset({"queue", "user", "skill", "tenant"})
STATUS_INTERVAL = 1.0
_OVERFLOW_KINDS = {
    "queue": OverflowKind.QUEUE,
    "service": OverflowKind.SERVICE,
    "voicemail": OverflowKind.VOICEMAIL,
    "callback": OverflowKind.CALLBACK,
    "agent": OverflowKind.SUPERVISOR,
}


@dataclass(frozen=True)
class QueueInfo:
    """What the call layer needs of a queue besides what the distributor keeps."""

    tenant_id: str
    queue_id: str
    name: str
    service_id: str
    offer_callback: bool
    announce_position: bool
    music: str | None
    ring_timeout: float
    overflow_action: str | None
    overflow_target: str | None


@dataclass(frozen=True)
class AgentInfo:
    tenant_id: str
    user_id: str
    username: str
    display_name: str
    extension: str | None
    mobile_number: str | None
    kinds: frozenset[str]
    skills: dict[str, int]
    queues: frozenset[str]


@dataclass
class _Tenant:
    queues: dict[str, QueueInfo] = field(default_factory=dict)  # by id
    queue_ids: dict[str, str] = field(default_factory=dict)  # name -> id
    agents: dict[str, AgentInfo] = field(default_factory=dict)  # by user id
    by_extension: dict[str, str] = field(default_factory=dict)


class AcdService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: EventBus,
        *,
        ready_on_register: bool = True,
        center_id: str = "local",
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.ready_on_register = ready_on_register
        self.center_id = center_id
        self._queue_needs: dict[str, list[SkillNeed]] = {}
        self.distributor = Distributor(clock)
        self._tenants: dict[str, _Tenant] = {}
        self._waiters: dict[tuple[str, str], asyncio.Queue[Decision]] = {}
        self._reachable: dict[tuple[str, str], bool] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Set by the composition root: runs an OfferCallback (agent first, then customer).
        self.on_callback: Callable[[OfferCallback], Awaitable[None]] | None = None
        # Phones ringing for a contact now, so the API can answer one (`answer`).
        self.ringing = RingingPhones()
        self._background: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        await self.load()
        self._tasks = [
            asyncio.create_task(self._deadlines(), name="acd deadlines"),
            asyncio.create_task(self._status_loop(), name="acd status"),
            asyncio.create_task(self._follow(), name="acd config"),
        ]

    async def stop(self) -> None:
        for task in [*self._tasks, *self._background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        self._tasks = []

    # --- configuration ----------------------------------------------------------------

    async def load(self) -> None:
        """Read queues and agents from the store and hand them to the distributor."""
        async with self.db.read() as session:
            queues = (await session.execute(select(Queue))).scalars().all()
            needs = (
                await session.execute(
                    select(QueueSkill.queue_id, Skill.name, QueueSkill.min_level).join(
                        Skill, Skill.id == QueueSkill.skill_id
                    )
                )
            ).all()
            members = (await session.execute(select(QueueMember))).scalars().all()
            users = (
                (
                    await session.execute(
                        select(User).where(User.enabled.is_(True), User.tenant_id.is_not(None))
                    )
                )
                .scalars()
                .all()
            )
            levels = (
                await session.execute(
                    select(UserSkill.user_id, Skill.name, UserSkill.level).join(
                        Skill, Skill.id == UserSkill.skill_id
                    )
                )
            ).all()
        queue_needs: dict[str, list[SkillNeed]] = {}
        for queue_id, skill, level in needs:
            queue_needs.setdefault(queue_id, []).append(SkillNeed(skill, level))
        self._queue_needs = queue_needs
        user_queues: dict[str, set[str]] = {}
        for m in members:
            user_queues.setdefault(m.user_id, set()).add(m.queue_id)
        user_levels: dict[str, dict[str, int]] = {}
        for user_id, skill, level in levels:
            user_levels.setdefault(user_id, {})[skill] = level
        tenants: dict[str, _Tenant] = {}
        for q in queues:
            t = tenants.setdefault(q.tenant_id, _Tenant())
            info = QueueInfo(
                q.tenant_id, q.id, q.name, q.service_id, q.offer_callback, q.announce_position,
                q.music, float(q.ring_timeout_seconds), q.overflow_action, q.overflow_target,
            )  # fmt: skip
            t.queues[q.id] = info
            t.queue_ids[q.name] = q.id
        for q in queues:
            t = tenants[q.tenant_id]
            overflow = None
            if q.overflow_action is not None:
                ref = q.overflow_target or ""
                if q.overflow_action == "queue":
                    ref = t.queue_ids.get(ref, ref)  # the distributor moves by queue id
                overflow = OverflowTarget(_OVERFLOW_KINDS[q.overflow_action], ref)
            self._apply(
                self.distributor.configure_queue(
                    QueueConfig(
                        q.tenant_id,
                        q.id,
                        strategy=Strategy(q.strategy),
                        priority=q.priority,
                        skills=frozenset(queue_needs.get(q.id, ())),
                        ring_timeout=float(q.ring_timeout_seconds),
                        wrap_up=float(q.wrap_up_seconds),
                        max_wait=float(q.max_wait_seconds) if q.max_wait_seconds else None,
                        max_size=q.max_size,
                        overflow=overflow,
                        service_level_seconds=float(q.service_level_seconds),
                    )
                )
            )
        for u in users:
            assert u.tenant_id is not None
            t = tenants.setdefault(u.tenant_id, _Tenant())
            agent = AgentInfo(
                u.tenant_id, u.id, u.username, u.display_name, u.extension, u.mobile_number,
                frozenset(u.agent_kinds), user_levels.get(u.id, {}),
                frozenset(user_queues.get(u.id, ())),
            )  # fmt: skip
            t.agents[u.id] = agent
            if u.extension:
                t.by_extension[u.extension] = u.id
        self._tenants = tenants
        # Agents already signed in keep their state, with their new skills and queues.
        for tenant_id, t in tenants.items():
            for view in self.distributor.agents(tenant_id):
                known = t.agents.get(view.agent_id)
                if known is not None:
                    self._apply(self.distributor.update_agent(self._profile(known)))
        self._wake.set()

    async def _follow(self) -> None:
        # Only the families it acts on: subscribed to everything, it was woken for every
        # call's `CallFinished` and every queue and agent event, to ignore them.
        with self.bus.subscribe(ConfigChanged.family, PhoneRegistration.family) as sub:
            while True:
                event = await sub.get()
                try:
                    if isinstance(event, ConfigChanged) and event.entity in WATCHED:
                        await self.load()
                    elif isinstance(event, PhoneRegistration) and event.tenant_id:
                        self.phone_changed(event.tenant_id, event.user_id, event.reachable)
                except Exception:
                    log.exception("the ACD could not follow %s", event.subject)

    # --- lookups ----------------------------------------------------------------------

    def queue(self, tenant_id: str, name: str) -> QueueInfo | None:
        t = self._tenants.get(tenant_id)
        queue_id = t.queue_ids.get(name) if t else None
        return t.queues.get(queue_id) if t and queue_id else None

    def queue_by_id(self, tenant_id: str, queue_id: str) -> QueueInfo | None:
        t = self._tenants.get(tenant_id)
        return t.queues.get(queue_id) if t else None

    def queues(self, tenant_id: str) -> list[QueueInfo]:
        t = self._tenants.get(tenant_id)
        return list(t.queues.values()) if t else []

    def agent_info(self, tenant_id: str, user_id: str) -> AgentInfo | None:
        t = self._tenants.get(tenant_id)
        return t.agents.get(user_id) if t else None

    def agents(self, tenant_id: str) -> list[AgentInfo]:
        """Everyone who answers a queue, signed in or not, by extension."""
        t = self._tenants.get(tenant_id)
        found = [a for a in t.agents.values() if a.queues] if t else []
        return sorted(found, key=lambda a: (a.extension or "~", a.username))

    def agent_by_extension(self, tenant_id: str, extension: str) -> AgentInfo | None:
        t = self._tenants.get(tenant_id)
        user_id = t.by_extension.get(extension) if t else None
        return t.agents.get(user_id) if t and user_id else None

    def _profile(self, agent: AgentInfo) -> AgentProfile:
        endpoints = tuple(e for e in (agent.extension, agent.mobile_number) if e)
        return AgentProfile(
            agent.tenant_id,
            agent.user_id,
            skills=agent.skills,
            queues=agent.queues,
            kinds=agent.kinds,
            endpoints=endpoints,
        )

    # --- agents -------------------------------------------------------------------------

    def _known(self, tenant_id: str, user_id: str) -> AgentInfo:
        agent = self.agent_info(tenant_id, user_id)
        if agent is None:
            raise NotFound("agent")
        return agent

    @staticmethod
    def reaches_mobile(agent: AgentInfo) -> bool:
        """A mobile or external agent is reached on their number through the trunk."""
        return bool(agent.mobile_number) and bool(agent.kinds & {"mobile", "external"})

    def sign_in(self, tenant_id: str, user_id: str, *, ready: bool = False) -> None:
        agent = self._known(tenant_id, user_id)
        reachable = self._reachable.get((tenant_id, user_id), False) or self.reaches_mobile(agent)
        self._apply(
            self.distributor.sign_in(self._profile(agent), ready=ready, reachable=reachable)
        )

    def sign_out(self, tenant_id: str, user_id: str) -> None:
        self._known(tenant_id, user_id)
        self._apply(self.distributor.sign_out(tenant_id, user_id))

    def ready(self, tenant_id: str, user_id: str) -> None:
        self._known(tenant_id, user_id)
        self._apply(self.distributor.ready(tenant_id, user_id))

    def not_ready(self, tenant_id: str, user_id: str, reason: str) -> None:
        self._known(tenant_id, user_id)
        self._apply(self.distributor.not_ready(tenant_id, user_id, reason))

    def end_wrap_up(self, tenant_id: str, user_id: str) -> None:
        self._known(tenant_id, user_id)
        self._apply(self.distributor.end_wrap_up(tenant_id, user_id))

    def wrap_up_until(self, tenant_id: str, user_id: str) -> datetime | None:
        """When the agent's wrap-up ends (wall clock), while they are wrapping up."""
        for view in self.distributor.agents(tenant_id):
            if view.agent_id == user_id and view.wrap_up_until is not None:
                left = max(0.0, view.wrap_up_until - self.clock.monotonic())
                return self.clock.now() + timedelta(seconds=left)
        return None

    def signed_in(self, tenant_id: str, user_id: str) -> bool:
        return any(
            v.agent_id == user_id and v.state.value != "signed_out"
            for v in self.distributor.agents(tenant_id)
        )

    def phone_changed(self, tenant_id: str, user_id: str, reachable: bool) -> None:
        """A phone registered, expired or stopped answering keep-alives."""
        self._reachable[(tenant_id, user_id)] = reachable
        agent = self.agent_info(tenant_id, user_id)
        if agent is None or not agent.queues:
            return  # not an agent of any queue
        if self.signed_in(tenant_id, user_id):
            reachable = reachable or self.reaches_mobile(agent)
            self._apply(self.distributor.set_reachable(tenant_id, user_id, reachable))
        elif reachable and self.ready_on_register:
            self._apply(self.distributor.sign_in(self._profile(agent), ready=True, reachable=True))

    # --- contacts -----------------------------------------------------------------------

    def enqueue(
        self,
        tenant_id: str,
        contact_id: str,
        queue_id: str,
        *,
        priority: int = 0,
        importance: int = 0,
        skills: tuple[str, ...] = (),
        max_wait: float | None = None,
    ) -> "asyncio.Queue[Decision]":
        """Put a call in a queue; its offers, withdrawals and overflow arrive on the result."""
        inbox: asyncio.Queue[Decision] = asyncio.Queue()
        self._waiters[(tenant_id, contact_id)] = inbox
        try:
            self._apply(
                self.distributor.enqueue(
                    tenant_id, contact_id, queue_id, priority=priority,
                    importance=importance, skills=skills, max_wait=max_wait,
                )
            )  # fmt: skip
        except BaseException:
            self._waiters.pop((tenant_id, contact_id), None)
            raise
        self._dirty.add((tenant_id, queue_id))  # wallboards: one more waiting
        return inbox

    def accepted(self, tenant_id: str, contact_id: str, agent_id: str) -> None:
        self._apply(self.distributor.offer_accepted(tenant_id, contact_id, agent_id))

    def failed(self, tenant_id: str, contact_id: str, agent_id: str, reason: str) -> None:
        """An offer that did not turn into a call. Harmless when the ACD already withdrew it
        (a ring timeout it judged first)."""
        view = self.distributor.contact(tenant_id, contact_id)
        if view is None or agent_id not in view.offers:
            return
        self._apply(self.distributor.offer_failed(tenant_id, contact_id, agent_id, reason))

    def abandoned(self, tenant_id: str, contact_id: str) -> None:
        view = self.distributor.contact(tenant_id, contact_id)
        if view is not None:
            self._dirty.add((tenant_id, view.queue_id))
        if view is not None and view.state.value != "connected":
            self._apply(self.distributor.abandon(tenant_id, contact_id))
        self._waiters.pop((tenant_id, contact_id), None)

    def ended(self, tenant_id: str, contact_id: str) -> None:
        view = self.distributor.contact(tenant_id, contact_id)
        if view is not None:
            self._dirty.add((tenant_id, view.queue_id))
        if view is not None and view.state.value == "connected":
            self._apply(self.distributor.contact_ended(tenant_id, contact_id))
        self._waiters.pop((tenant_id, contact_id), None)

    def to_callback(self, tenant_id: str, contact_id: str, number: str) -> None:
        """The waiting caller asked to be called back; their place is kept."""
        view = self.distributor.contact(tenant_id, contact_id)
        if view is not None:
            self._dirty.add((tenant_id, view.queue_id))
        self._apply(self.distributor.convert_to_callback(tenant_id, contact_id, number))
        self._waiters.pop((tenant_id, contact_id), None)

    def position(self, tenant_id: str, contact_id: str) -> tuple[int | None, float | None]:
        """Place in the queue (1 is next) and expected wait in seconds, when known."""
        view = self.distributor.contact(tenant_id, contact_id)
        if view is None or view.state.value != "waiting":
            return None, None
        estimate = self.distributor.estimate(tenant_id, contact_id)
        return estimate.position, estimate.expected_wait

    # --- statistics ---------------------------------------------------------------------

    def choose_center(self, tenant_id: str, queue_id: str, skills: tuple[str, ...]) -> CenterChoice:
        """Which service center should take a new contact, on the centers' live figures.

        In one process there is one center, this site; the figures are the ones a
        multi-site view will receive from the others, and the choice is recorded.
        """
        needs = {n.skill for n in self._queue_needs.get(queue_id, ())} | set(skills)
        figures = self.distributor.center_figures(tenant_id, self.center_id, local=True)
        return choose_center(tenant_id, sorted(needs), [figures])

    def queue_snapshot(self, tenant_id: str, queue_id: str) -> QueueSnapshot:
        return self.distributor.queue_snapshot(tenant_id, queue_id)

    def _status(self, tenant_id: str, queue_id: str) -> QueueStatus | None:
        info = self.queue_by_id(tenant_id, queue_id)
        if info is None:
            return None
        snap = self.distributor.queue_snapshot(tenant_id, queue_id)
        return QueueStatus(
            tenant_id=tenant_id,
            at=datetime.now(UTC),
            queue_id=queue_id,
            queue=info.name,
            waiting=snap.waiting,
            ringing=snap.ringing,
            talking=snap.talking,
            longest_wait=round(snap.longest_wait, 3),
            agents_free=snap.agents_free,
            agents_staffed=snap.agents_staffed,
            entered=snap.entered,
            answered=snap.answered,
            abandoned=snap.abandoned,
            overflowed=snap.overflowed,
            service_level=snap.service_level,
            service_level_seconds=snap.service_level_seconds,
            average_answer_wait=snap.average_answer_wait,
            average_handle_time=getattr(snap, "average_handle_time", None),
        )

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL)
            dirty, self._dirty = self._dirty, set()
            for tenant_id, queue_id in sorted(dirty):
                try:
                    status = self._status(tenant_id, queue_id)
                except Exception:
                    log.exception("queue status of %s", queue_id)
                    continue
                if status is not None:
                    await self.bus.publish(status)

    # --- deadlines and decisions --------------------------------------------------------

    async def _deadlines(self) -> None:
        while True:
            deadline = self.distributor.next_deadline()
            delay = None if deadline is None else max(0.0, deadline - self.clock.monotonic())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not `wait_for`: see notify/sender.py
                    await self._wake.wait()
            if deadline is not None and self.clock.monotonic() >= deadline:
                try:
                    self._apply(self.distributor.tick())
                except Exception:
                    log.exception("ACD tick failed")

    def _apply(self, decisions: list[Decision]) -> None:
        """Carry each decision to whoever acts on it, in order."""
        self._wake.set()  # a new deadline may be earlier than the one slept on
        for decision in decisions:
            if isinstance(decision, AgentStateChanged):
                agent = self.agent_info(decision.tenant_id, decision.agent_id)
                self._spawn(
                    self.bus.publish(
                        AgentStatus(
                            tenant_id=decision.tenant_id,
                            agent_id=decision.agent_id,
                            extension=agent.extension if agent else None,
                            state=decision.state.value,
                            reason=decision.reason,
                            wrap_up_until=self.wrap_up_until(decision.tenant_id, decision.agent_id),
                        )
                    )
                )
                for queue_id in agent.queues if agent else ():
                    self._dirty.add((decision.tenant_id, queue_id))
                continue
            if isinstance(decision, OfferCallback):
                self._dirty.add((decision.tenant_id, decision.queue_id))
                if self.on_callback is not None:
                    self._spawn(self.on_callback(decision))
                continue
            if isinstance(decision, Offer | Overflow):
                self._dirty.add((decision.tenant_id, decision.queue_id))
            inbox = self._waiters.get((decision.tenant_id, decision.contact_id))
            if inbox is not None:
                inbox.put_nowait(decision)
            elif isinstance(decision, Offer):
                # Nobody waits for this contact any more (the call ended between two
                # decisions): give the agent back at once.
                self._spawn(self._drop_orphan(decision))

    async def _drop_orphan(self, offer: Offer) -> None:
        # Abandoning withdraws the offer and frees the agent without holding it against them.
        self.abandoned(offer.tenant_id, offer.contact_id)

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("ACD task failed")

        task = asyncio.ensure_future(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)


__all__ = ["AcdService", "AgentInfo", "QueueInfo"]
