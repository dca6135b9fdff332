"""A caller at a flow's queue step: waiting, offers, screen pop, agent, callback, overflow.

The IVR hands the call here (`Handoff`). The call enters the ACD (`AcdService`)
and hears its position and music while it waits. The ACD's decisions arrive on the
call's inbox and are carried out here:
- `Offer`: the screen pop is written to that agent's desktops first (and awaited),
  then their phone rings; answered in time, the agent is connected (whisper,
  bridge, recording) and the call stays theirs until one side hangs up; not
  answered, refused or unreachable, the ACD hears why and offers the call on;
- `Withdraw`: stop ringing that agent (the ACD judged the ring timeout, or another
  agent answered first under ring-all);
- `Overflow`: moved to another queue (keep waiting), or to a supervisor's phone,
  voicemail, or an apology, as the queue says.
While no agent is free, the caller may press * to be called back instead of
waiting: their place in the queue is kept and the call ends.
"""

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from telportal.acd import Decision, Offer, Overflow, OverflowKind, Withdraw
from telportal.center.acd_service import AcdService, QueueInfo
from telportal.center.desktops import AgentDesktops
from telportal.crm import store as crm_store
from telportal.crm.cases import CaseDesk
from telportal.crm.identities import IdentityKind
from telportal.crm.lookup import CustomerLookup
from telportal.events import ScreenPop
from telportal.ivr.actions import Action, CreateCase, Queue, RequestCallback, Transfer
from telportal.media import PlayFile, Playlist, PlaySpeech, RecordingLayout
from telportal.media.events import DigitReceived
from telportal.signaling.agent_leg import AgentLeg, connect, play_to_end, ring_agent
from telportal.signaling.calls import InboundCall
from telportal.signaling.ivr_call import Handoff, IvrCall, say_unavailable
from telportal.signaling.ivr_transfer import open_case, request_callback, transfer
from telportal.signaling.live_calls import LiveCall
from telportal.signaling.music import BUILTIN_MUSIC
from telportal.store.schema import CallDetailRecord

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

# Not 1: a caller who pressed 1 for the queue and presses it again by habit must not
# give up their call by accident.
CALLBACK_KEY = "*"
REANNOUNCE_SECONDS = 45.0
RECENT_CALLS = 5


@dataclass
class _Ringing:
    offer: Offer
    task: "asyncio.Task[AgentLeg | None]"
    withdrawn: asyncio.Event

    async def stop(self) -> None:
        """Stop ringing (the phone gets a CANCEL) and wait until it has."""
        self.withdrawn.set()
        with contextlib.suppress(Exception):
            leg = await self.task
            if leg is not None:  # answered in the same instant: not wanted any more
                await leg.leg.hangup("offer withdrawn")


def acd_handoff(
    service: "SipService",
    acd: AcdService,
    desktops: AgentDesktops,
    cases: CaseDesk | None = None,
    lookup: CustomerLookup | None = None,
) -> Handoff:
    """The handoff for IvrCall: queues and callbacks go to the ACD, transfers are rung;
    cases wait for the case store (issue 7)."""

    async def handoff(call: InboundCall, action: Action, ivr: IvrCall) -> None:
        if isinstance(action, Transfer):
            await transfer(service, call, action, ivr)
            return
        if isinstance(action, CreateCase):
            await open_case(service, cases, call, action)
            return
        if isinstance(action, RequestCallback):
            if not request_callback(acd, call, action):
                log.warning("call %s: no queue %r for a callback", call.call_id, action.queue)
            return
        if not isinstance(action, Queue):
            await say_unavailable(call, action, ivr)
            return
        info = acd.queue(call.tenant_id, action.queue)
        if info is None:
            log.warning("call %s: no queue %r in tenant %s", call.call_id, action.queue,
                        call.tenant_id)  # fmt: skip
            await say_unavailable(call, action, ivr)
            return
        queued = QueuedCall(service, acd, desktops, call, ivr, info, action, lookup)
        await queued.run()
        # An agent may send the caller on to another queue (call control): wait there.
        while queued.requeue_to is not None and not call.ended.is_set():
            target = acd.queue(call.tenant_id, queued.requeue_to)
            if target is None:
                await say_unavailable(call, action, ivr)
                return
            action = dataclasses.replace(action, queue=target.name)
            queued = QueuedCall(service, acd, desktops, call, ivr, target, action, lookup)
            await queued.run()

    return handoff


class QueuedCall:
    def __init__(
        self,
        service: "SipService",
        acd: AcdService,
        desktops: AgentDesktops,
        call: InboundCall,
        ivr: IvrCall,
        info: QueueInfo,
        action: Queue,
        lookup: CustomerLookup | None = None,
    ) -> None:
        self.service = service
        self.lookup = lookup
        self.acd = acd
        self.desktops = desktops
        self.call = call
        self.ivr = ivr
        self.engine = ivr.engine
        self.info = info
        self.action = action
        self.tenant_id = call.tenant_id
        self.contact_id = call.call_id
        self.ringing: dict[str, _Ringing] = {}
        self.connected_to: str | None = None
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self.outcome = "waiting"
        self.greeting: asyncio.Task[None] | None = None
        self.customer: dict[str, object] | None = None
        self.recent_calls: list[dict[str, object]] = []
        self.importance = 0
        # Set when the agent transferred the caller to a queue (they wait there next).
        self.requeue_to: str | None = None

    # --- the wait ---------------------------------------------------------------------

    async def run(self) -> None:
        records = self.service.records
        if records is not None:
            await _quietly(records.queued(self.tenant_id, self.contact_id, self.info.name))
        try:
            choice = self.acd.choose_center(self.tenant_id, self.info.queue_id, self.action.skills)
            self.ivr.routing = {
                "center": choice.center_id,
                "center_reason": choice.reason,
                "centers_considered": choice.considered,
            }
        except Exception:
            log.exception("call %s: no center choice", self.contact_id)
        self.customer, self.importance = await self._customer()
        # Read now, while the caller waits, so the screen pop is built in memory when
        # an agent is chosen and nothing stands between the decision and the pop.
        self.recent_calls = await self._recent_calls()
        try:
            inbox = self.acd.enqueue(
                self.tenant_id,
                self.contact_id,
                self.info.queue_id,
                priority=self.action.priority,
                importance=self.importance,
                skills=self.action.skills,
                max_wait=self.action.max_wait,
            )
        except Exception as exc:
            log.warning("call %s could not enter queue %s: %s", self.contact_id, self.info.name,
                        exc)  # fmt: skip
            await say_unavailable(self.call, self.action, self.ivr)
            return
        stop_listening = self._listen_for_digits()
        try:
            await self._wait(inbox)
        finally:
            stop_listening()
            if self.greeting is not None:
                self.greeting.cancel()
            for ringing in list(self.ringing.values()):
                ringing.task.cancel()
            await asyncio.gather(*(r.task for r in self.ringing.values()), return_exceptions=True)
            if self.connected_to is None:
                self.acd.abandoned(self.tenant_id, self.contact_id)
            self.ivr.queue_outcome = self.outcome

    async def _wait(self, inbox: "asyncio.Queue[Decision]") -> None:
        await self._greet()
        gone = asyncio.create_task(self.call.ended.wait())
        try:
            while not self.call.ended.is_set():
                next_decision = asyncio.create_task(inbox.get())
                next_digit = asyncio.create_task(self.digits.get())
                answered = [r.task for r in self.ringing.values()]
                done, _ = await asyncio.wait(
                    {gone, next_decision, next_digit, *answered},
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in (next_decision, next_digit):
                    if task not in done:
                        task.cancel()
                if gone in done:
                    self.outcome = "abandoned"
                    return
                if next_decision in done and await self._decide(next_decision.result()):
                    return
                if next_digit in done and await self._digit(next_digit.result()):
                    return
                for agent_id, ringing in list(self.ringing.items()):
                    if ringing.task.done() and await self._rang(agent_id, ringing):
                        return
        finally:
            gone.cancel()

    async def _greet(self) -> None:
        self.greeting = asyncio.create_task(self._announcements())

    def _announcement(self) -> list[PlaySpeech]:
        """Where the caller is in the queue, and the callback offer while nobody is free."""
        parts: list[PlaySpeech] = []
        if self.ringing or self.connected_to is not None:
            return parts
        if not self.acd.distributor.contact(self.tenant_id, self.contact_id):
            return parts
        position, wait = self.acd.position(self.tenant_id, self.contact_id)
        if self.info.announce_position and position is not None:
            parts.append(PlaySpeech(_position_text(position, wait)))
        if self.info.offer_callback and self.service.directory.outbound_trunk(self.tenant_id):
            parts.append(
                PlaySpeech(
                    "All our agents are busy. To be called back instead of waiting, "
                    "press star at any time."
                )
            )
        return parts

    async def _announcements(self) -> None:
        """Announce, then music; every REANNOUNCE_SECONDS of waiting, announce again with
        the caller's new position, so a long wait never feels forgotten."""
        first = True
        while not self.call.ended.is_set() and self.connected_to is None:
            parts = self._announcement()
            if parts:
                await self.engine.stop_play(self.ivr.endpoint)
                await play_to_end(
                    self.engine, self.ivr.endpoint, Playlist(tuple(parts)), self.call.ended
                )
            if self.connected_to is not None or self.call.ended.is_set():
                return
            if parts or first:  # otherwise the music is still playing: leave it be
                await self._music()
            first = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REANNOUNCE_SECONDS):  # not `wait_for`: notify/sender.py
                    await self.call.ended.wait()

    def _music_items(self) -> tuple[Any, ...]:
        if self.info.music:
            path = self.service.prompt_dir / self.info.music
            if path.is_file():
                return (PlayFile(path),)
            log.warning("queue %s: music %s not found; playing the built-in music",
                        self.info.name, path)  # fmt: skip
        return BUILTIN_MUSIC

    def _music_list(self) -> Playlist:
        return Playlist(self._music_items(), loop=True)

    async def _music(self) -> None:
        with contextlib.suppress(Exception):
            await self.engine.play(self.ivr.endpoint, self._music_list(), barge_in=False)

    def _listen_for_digits(self) -> Any:
        subscription = self.engine.events(self.ivr.endpoint)

        async def pump() -> None:
            async for event in subscription:
                if isinstance(event, DigitReceived) and event.endpoint_id == self.ivr.endpoint:
                    self.digits.put_nowait(event.digit)

        task = asyncio.create_task(pump())

        def stop() -> None:
            subscription.close()
            task.cancel()

        return stop

    async def _digit(self, digit: str) -> bool:
        if digit != CALLBACK_KEY or not self.info.offer_callback or self.ringing:
            return False
        if self.service.directory.outbound_trunk(self.tenant_id) is None:
            return False
        try:
            self.acd.to_callback(self.tenant_id, self.contact_id, self.call.caller)
        except Exception as exc:
            log.info("call %s: no callback: %s", self.contact_id, exc)
            return False
        self.outcome = "callback requested"
        self.connected_to = "callback"  # the ACD keeps the contact; do not abandon it
        await self.engine.stop_play(self.ivr.endpoint)
        await play_to_end(
            self.engine,
            self.ivr.endpoint,
            Playlist(
                (PlaySpeech("Thank you. We will call you back as soon as an agent is free."),)
            ),
            self.call.ended,
        )
        return True

    # --- decisions --------------------------------------------------------------------

    async def _decide(self, decision: Decision) -> bool:
        """Act on one decision; True when the call's time in the queue is over."""
        if isinstance(decision, Offer):
            self._ring(decision)
        elif isinstance(decision, Withdraw):
            ringing = self.ringing.pop(decision.agent_id, None)
            if ringing is not None:
                await ringing.stop()
        elif isinstance(decision, Overflow):
            return await self._overflow(decision)
        return False

    def _ring(self, offer: Offer) -> None:
        withdrawn = asyncio.Event()
        task = asyncio.create_task(self._offer(offer, withdrawn))
        self.ringing[offer.agent_id] = _Ringing(offer, task, withdrawn)

    async def _offer(self, offer: Offer, withdrawn: asyncio.Event) -> AgentLeg | None:
        agent = self.acd.agent_info(self.tenant_id, offer.agent_id)
        if agent is None:
            return None
        extension = agent.extension or agent.username
        started = self.service.clock.monotonic()
        pop = await self._screen_pop(offer)
        delivered = await self.desktops.deliver(self.tenant_id, offer.agent_id, pop)
        pop_ms = (self.service.clock.monotonic() - started) * 1000
        self.ivr.routing = {**(self.ivr.routing or {}), **_routing_json(offer),
                            "screen_pop_ms": round(pop_ms, 3),
                            "screen_pop_desktops": delivered}  # fmt: skip
        log.info("call %s: screen pop to %s (%d desktops) %.2f ms after the decision",
                 self.contact_id, extension, delivered, pop_ms)  # fmt: skip
        mobile = agent.mobile_number if self.acd.reaches_mobile(agent) else None
        # ring_agent prefers a registered phone; only that can be answered from the desktop.
        phone = any(
            b.reachable for b in self.service.location.lookup(f"{self.tenant_id}/{extension}")
        )
        with self.acd.ringing.ringing(
            self.tenant_id, offer.agent_id, remote_answer=phone
        ) as answer_now:
            return await ring_agent(
                self.service,
                self.call,
                self.engine,
                extension,
                offer.ring_timeout + 5.0,
                withdrawn,
                mobile=mobile,
                announce=f"a call from the {self.info.name} queue",
                answer_now=answer_now,
            )

    async def _rang(self, agent_id: str, ringing: _Ringing) -> bool:
        """A ring ended (answered or not); True when the caller is now with this agent."""
        self.ringing.pop(agent_id, None)
        try:
            leg = ringing.task.result()
        except Exception:
            log.exception("call %s: ringing agent %s failed", self.contact_id, agent_id)
            leg = None
        view = self.acd.distributor.contact(self.tenant_id, self.contact_id)
        still_offered = view is not None and agent_id in view.offers
        if leg is None:
            if still_offered:
                self.acd.failed(self.tenant_id, self.contact_id, agent_id, "no-answer")
            return False
        if not still_offered or self.call.ended.is_set():
            await leg.leg.hangup("offer withdrawn")
            with contextlib.suppress(Exception):
                await self.engine.close(leg.endpoint_id)
            return False
        self.acd.accepted(self.tenant_id, self.contact_id, agent_id)
        self.connected_to = agent_id
        if self.greeting is not None:
            self.greeting.cancel()
        others = list(self.ringing.values())  # ring all: the others stop now
        self.ringing.clear()
        await asyncio.gather(*(other.stop() for other in others), return_exceptions=True)
        await self._talk(agent_id, leg)
        return True

    async def _talk(self, agent_id: str, leg: AgentLeg) -> None:
        service = self.service
        settings = service.config.recording
        recording = (
            service.recording_dir / f"{self.contact_id}-agent-{leg.extension}.wav"
            if settings.agent_calls
            else None
        )
        if service.records is not None:
            relative = str(recording.relative_to(service.config.data_dir)) if recording else None
            await _quietly(
                service.records.connected(
                    self.tenant_id, self.contact_id, agent_id=agent_id,
                    extension=leg.extension, routing=self.ivr.routing, recording=relative,
                )
            )  # fmt: skip
        self.outcome = f"answered by {leg.extension}"
        answered_at = service.clock.now()
        live = LiveCall(
            self.tenant_id, self.contact_id, self.call.caller, self.info.name, agent_id, leg,
            self.ivr.endpoint, self.call, recording, can_requeue=True,
        )  # fmt: skip
        try:
            connection = await connect(
                self.call, self.engine, self.ivr.endpoint, leg,
                whisper=Playlist((PlaySpeech(f"Call from the {self.info.name} queue."),)),
                recording=recording, layout=RecordingLayout(settings.layout), live=live,
                on_connected=lambda: service.live_calls.add(live),
            )  # fmt: skip
            self.ivr.hangup_by = live.hung_up_by or connection.ended_by
            self.ivr.agent_recording = connection.recording
            if connection.ended_by == "transfer":
                self.requeue_to = live.requeue_to
                self.outcome = f"answered by {leg.extension}, transferred to {live.requeue_to}"
        finally:
            service.live_calls.remove(live)
            self.acd.ended(self.tenant_id, self.contact_id)
            if service.records is not None:
                await _quietly(
                    service.records.add_leg(
                        self.tenant_id, self.contact_id,
                        {"kind": "agent", "target": leg.extension, "agent_id": agent_id,
                         "answered_at": answered_at, "ended_at": service.clock.now(),
                         "status": 200},
                    )
                )  # fmt: skip

    async def _overflow(self, overflow: Overflow) -> bool:
        if overflow.moved_to is not None:
            moved = self.acd.queue_by_id(self.tenant_id, overflow.moved_to)
            if moved is not None:
                self.info = moved
                if self.service.records is not None:
                    await _quietly(
                        self.service.records.queued(self.tenant_id, self.contact_id, moved.name)
                    )
            return False
        self.connected_to = "overflow"  # it has left the ACD
        target = overflow.target
        self.outcome = f"overflow {overflow.reason}"
        await self.engine.stop_play(self.ivr.endpoint)
        if target is not None and target.kind is OverflowKind.SUPERVISOR:
            leg = await ring_agent(self.service, self.call, self.engine, target.ref, 30.0)
            if leg is not None:
                self.outcome = f"overflow to {target.ref}"
                connection = await connect(
                    self.call, self.engine, self.ivr.endpoint, leg,
                    whisper=Playlist((PlaySpeech(f"Overflow from the {self.info.name} queue."),)),
                    recording=None,
                )  # fmt: skip
                self.ivr.hangup_by = connection.ended_by
                return True
        await play_to_end(
            self.engine,
            self.ivr.endpoint,
            Playlist(
                (PlaySpeech("Sorry, all our agents are still busy. Please call again later."),)
            ),
            self.call.ended,
        )
        return True

    async def _screen_pop(self, offer: Offer) -> ScreenPop:
        record = self.ivr.run.record()
        return ScreenPop(
            tenant_id=self.tenant_id,
            agent_id=offer.agent_id,
            call_id=self.contact_id,
            queue=self.info.name,
            caller=self.call.caller,
            called=self.ivr.called,
            service_id=self.info.service_id,
            customer=self.customer,
            importance=self.importance,
            ivr_path=[v.step for v in record.path],
            ivr_variables={k: _plain(v) for k, v in record.variables.items()},
            recent_calls=self.recent_calls,
            waited_seconds=round(offer.record.contact_wait, 3),
            decided_at=offer.record.decided_at,
        )

    async def _customer(self) -> tuple[dict[str, object] | None, int]:
        """The caller as the CRM knows them (by their number), and their importance: for
        the screen pop, and to raise the call's priority in the queue."""
        records = self.service.records
        if records is None:
            return None, 0
        try:
            if self.lookup is not None:  # asks the enterprise's system on a miss
                found = await self.lookup.find(self.tenant_id, IdentityKind.PHONE, self.call.caller)
            else:
                async with records.db.read() as session:
                    found = await crm_store.find(
                        session, self.tenant_id, IdentityKind.PHONE, self.call.caller
                    )
            if found is None:
                return None, 0
            return {
                "id": found.id, "name": found.name, "importance": found.importance,
                "tags": list(found.tags), "external_id": found.external_id,
                "notes": found.notes[:500],
            }, found.importance  # fmt: skip
        except Exception:
            log.exception("customer lookup for %s", self.call.caller)
            return None, 0

    async def _recent_calls(self) -> list[dict[str, object]]:
        """The caller's last calls to this tenant, for the agent's context."""
        records = self.service.records
        if records is None:
            return []
        try:
            async with records.db.read() as session:
                rows = (
                    await session.execute(
                        select(CallDetailRecord)
                        .where(
                            CallDetailRecord.tenant_id == self.tenant_id,
                            CallDetailRecord.caller == self.call.caller,
                            CallDetailRecord.call_id != self.contact_id,
                        )
                        .order_by(CallDetailRecord.started_at.desc())
                        .limit(RECENT_CALLS)
                    )
                ).scalars()
                return [
                    {"call_id": r.call_id, "started_at": r.started_at.isoformat(),
                     "queue": r.queue, "agent": r.agent_extension, "outcome": r.outcome}
                    for r in rows
                ]  # fmt: skip
        except Exception:
            log.exception("recent calls of %s", self.call.caller)
            return []


def _position_text(position: int, wait: float | None) -> str:
    text = f"You are number {position} in the queue."
    if wait is not None and wait >= 30:
        minutes = max(1, round(wait / 60))
        text += f" The expected wait is about {minutes} minute{'s' if minutes > 1 else ''}."
    return text


def _routing_json(offer: Offer) -> dict[str, Any]:
    r = offer.record
    return {
        "queue_id": r.queue_id,
        "agents": list(r.agent_ids),
        "trigger": r.trigger,
        "strategy": str(r.strategy),
        "needs": sorted(f"{n.skill}>={n.min_level}" for n in r.needs),
        "free_agents": r.free_agents,
        "waiting": r.waiting,
        "longest_wait": round(r.longest_wait, 3),
        "contact_wait": round(r.contact_wait, 3),
        "decided_at": r.decided_at.isoformat(),
    }


def _plain(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


async def _quietly(write: Awaitable[object]) -> None:
    """A record that cannot be written must not cost the caller the call."""
    try:
        await write
    except Exception:
        log.exception("could not write the call record")
