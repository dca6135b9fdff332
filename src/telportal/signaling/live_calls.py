"""Connected agent calls, and what the call-control API may do to them (MISSION M17).

A call an agent answered is registered here for as long as it lasts. The API then
acts on it: hang up, hold and unhold (the caller hears music, the agent silence; the
agent's phone holding the call does the same; the caller's phone holding it plays the
music to the agent instead, as a PBX does),
send DTMF to the caller's side, pause and resume the recording (for card numbers),
transfer it blind to another extension, and let a supervisor listen, whisper to the
agent or barge in. Every change is published as a `CallState` event.

The media topology follows one rule, restored after every change: a call with no
supervisor is a bridge (caller <-> agent); a call with supervisors is a mix in
which the caller and the agent are participants and each supervisor has their
role. Hold takes the caller out of either and plays music to them.
"""

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from telportal.events import CallState
from telportal.media import MediaEngine, MixRole
from telportal.signaling.agent_leg import AgentLeg, ring_agent, ring_number
from telportal.signaling.calls import InboundCall, OutboundLeg
from telportal.signaling.media_offers import EngineOffers
from telportal.signaling.music import play_hold_music

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

MONITOR_RING_SECONDS = 30.0
TRANSFER_RING_SECONDS = 30.0


class CallControlError(Exception):
    """An operation the call's present state does not allow; the message says why."""


@dataclass
class Monitor:
    user_id: str
    extension: str
    mode: MixRole
    leg: AgentLeg


@dataclass
class LiveCall:
    tenant_id: str
    call_id: str
    caller: str
    queue: str | None
    agent_id: str | None
    agent: AgentLeg
    caller_endpoint: str
    party: InboundCall | OutboundLeg
    recording: Path | None
    held: bool = False
    # The hold came from the agent's phone (its re-INVITE), not from the API: it
    # leaves with that phone (a transfer), and only the phone's resume ends it.
    held_by_phone: bool = False
    # The caller's phone holds the call (its re-INVITE): the agent hears music.
    caller_held: bool = False
    # The endpoint the caller's hold plays music to (the agent's), while it does.
    music_to: str | None = None
    # One change of that music at a time: a play still loading must not start after
    # a later stop (a hold, resume and hold again in quick succession).
    music_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    recording_paused: bool = False
    # Supervisors (listen, whisper, barge) and conference members (participant).
    monitors: dict[str, Monitor] = field(default_factory=dict)
    # The agent's consultation call of an attended transfer, while it lasts.
    consult: AgentLeg | None = None
    transfers: list[dict[str, str]] = field(default_factory=list)
    # Who ended it through the API (agent or system), for the call record.
    hung_up_by: str | None = None
    # Set when `agent` is replaced (a transfer): the call goes on with the new agent.
    swapped: asyncio.Event = field(default_factory=asyncio.Event)
    # A call that came through a queue may be sent back to one (`transfer_to_queue`):
    # the agent leaves and the caller waits in that queue for the next agent.
    can_requeue: bool = False
    requeue_to: str | None = None

    @property
    def mix_id(self) -> str:
        return f"call-{self.call_id}"


class LiveCalls:
    def __init__(self, service: "SipService") -> None:
        self.service = service
        self._calls: dict[tuple[str, str], LiveCall] = {}

    @property
    def engine(self) -> MediaEngine:
        engine = self.service.media
        if engine is None:
            raise CallControlError("this site has no media engine")
        return engine

    # --- registry ---------------------------------------------------------------------

    def add(self, call: LiveCall) -> None:
        self._calls[(call.tenant_id, call.call_id)] = call
        self._follow_hold_button(call)
        self._follow_caller_hold(call)
        self._publish(call, "talking")

    def remove(self, call: LiveCall) -> None:
        _stop_following(call.agent.leg)
        _stop_following(call.party)
        if self._calls.pop((call.tenant_id, call.call_id), None) is not None:
            self._publish(call, "ended")

    def _follow_hold_button(self, call: LiveCall) -> None:
        """The agent's phone holding or resuming the call (a re-INVITE) holds or
        resumes it as the API does: music for the caller, and the state says so."""
        offers = call.agent.leg.offer_answerer
        if isinstance(offers, EngineOffers):
            offers.on_hold = functools.partial(self._phone_held, call, call.agent)
            if offers.held and not call.held:  # held before the call was connected
                self.service.spawn(self._phone_held(call, call.agent, True))

    async def _phone_held(self, call: LiveCall, agent: AgentLeg, held: bool) -> None:
        if call.agent is not agent or call.party.ended.is_set():
            return  # a transferred call's old agent, or a call ending
        try:
            if held and not call.held:
                await self.hold(call)
                call.held_by_phone = True
            elif not held and call.held and call.held_by_phone and call.consult is None:
                await self.unhold(call)
        except CallControlError as exc:
            log.info("call %s: the phone's hold not followed: %s", call.call_id, exc)
            return
        # `hold` awaits the engine: the phone may have changed its mind meanwhile.
        now = _phone_holds(agent)
        if now != held and call.agent is agent and now != call.held:
            await self._phone_held(call, agent, now)

    def _follow_caller_hold(self, call: LiveCall) -> None:
        """The caller's phone holding the call: the agent hears music, not dead air,
        and the desktop says who holds it. The call stays connected as it was."""
        offers = call.party.offer_answerer
        if isinstance(offers, EngineOffers):
            offers.on_hold = functools.partial(self._caller_holds, call)
            if offers.held:  # held while it waited in the queue
                self.service.spawn(self._caller_holds(call, True))

    async def _caller_holds(self, call: LiveCall, held: bool) -> None:
        if held == call.caller_held or call.party.ended.is_set():
            return
        call.caller_held = held
        self._publish(call, "caller_held" if held else "caller_resumed")
        await self._music_for_agent(call)

    async def _music_for_agent(self, call: LiveCall) -> None:
        """Music to the agent while the caller holds and the agent talks to nobody
        else: not on the agent's own hold, nor in a consultation, nor with a
        conference party or a supervisor on the call (a prompt takes the place of the
        mix the agent hears them in). In a plain bridge the prompt takes the place of
        the caller's audio, so the bridge itself stays as it is."""
        async with call.music_lock:
            engine = self.engine
            want = None
            if call.caller_held and not call.held and call.consult is None and not call.monitors:
                want = call.agent.endpoint_id
            if call.music_to == want:
                return
            if call.music_to is not None:
                with contextlib.suppress(Exception):  # that agent may be gone (a transfer)
                    await engine.stop_play(call.music_to)
            call.music_to = want
            if want is not None:
                await play_hold_music(engine, want)

    def get(self, tenant_id: str, call_id: str) -> LiveCall | None:
        return self._calls.get((tenant_id, call_id))

    def of_tenant(self, tenant_id: str) -> list[LiveCall]:
        return [c for (t, _), c in self._calls.items() if t == tenant_id]

    def _publish(self, call: LiveCall, state: str, detail: str | None = None) -> None:
        event = CallState(
            tenant_id=call.tenant_id,
            call_id=call.call_id,
            state=state,
            agent_id=call.agent_id,
            agent_extension=call.agent.extension,
            caller=call.caller,
            queue=call.queue,
            detail=detail,
        )
        self.service.spawn(self.service.bus.publish(event))

    # --- operations -------------------------------------------------------------------

    async def hangup(self, call: LiveCall, by: str) -> None:
        call.hung_up_by = by
        await call.party.hangup(f"hung up through the API by the {by}")
        # The conversation's own task hangs up the agent when it sees the caller gone.

    async def hold(self, call: LiveCall) -> None:
        if call.held:
            raise CallControlError("the call is already on hold")
        engine = self.engine
        await engine.unbridge(call.caller_endpoint)
        await engine.unmix(call.caller_endpoint)
        await play_hold_music(engine, call.caller_endpoint)
        call.held = True
        await self._music_for_agent(call)  # the agent on hold hears silence
        self._publish(call, "held")

    async def unhold(self, call: LiveCall) -> None:
        if not call.held:
            raise CallControlError("the call is not on hold")
        await self.engine.stop_play(call.caller_endpoint)
        call.held = call.held_by_phone = False
        await self._reconnect(call)
        self._publish(call, "talking")

    async def send_dtmf(self, call: LiveCall, digits: str) -> None:
        await self.engine.send_digits(call.caller_endpoint, digits)
        self._publish(call, "dtmf", digits)

    async def pause_recording(self, call: LiveCall) -> None:
        if call.recording is None:
            raise CallControlError("the call is not being recorded")
        if call.recording_paused:
            raise CallControlError("the recording is already paused")
        await self.engine.record_pause(call.caller_endpoint)
        call.recording_paused = True
        self._publish(call, "recording_paused")

    async def resume_recording(self, call: LiveCall) -> None:
        if call.recording is None or not call.recording_paused:
            raise CallControlError("the recording is not paused")
        await self.engine.record_resume(call.caller_endpoint)
        call.recording_paused = False
        self._publish(call, "recording_resumed")

    async def transfer(self, call: LiveCall, extension: str, *, outside: bool = False) -> str:
        """Blind transfer to an extension, or with `outside` to a number through the
        tenant's trunk: ring it; when it answers, it replaces the agent."""
        if extension == call.agent.extension:
            raise CallControlError("the call is already with that extension")
        engine = self.engine
        self._publish(call, "transferring", extension)
        if outside:
            target = await ring_number(
                self.service, _Party(call), engine, extension, TRANSFER_RING_SECONDS
            )
        else:
            target = await ring_agent(
                self.service, _Party(call), engine, extension, TRANSFER_RING_SECONDS
            )
        if target is None:
            self._publish(call, "talking", f"transfer to {extension} not answered")
            raise CallControlError(
                f"{'number' if outside else 'extension'} {extension} did not answer"
            )
        old = call.agent
        call.transfers.append(
            {"from": old.extension, "to": extension, "kind": "blind-number" if outside else "blind"}
        )
        call.agent = target
        _stop_following(old.leg)
        if call.held and call.held_by_phone:  # that hold left with the old phone
            await engine.stop_play(call.caller_endpoint)
            call.held = call.held_by_phone = False
            self._publish(call, "talking")
        self._follow_hold_button(call)
        user = None if outside else self.service.directory.user(call.tenant_id, extension)
        call.agent_id = user.user_id if user else None
        call.swapped.set()
        if not call.held:
            await self._reconnect(call)
        await old.leg.hangup("transferred")
        with contextlib.suppress(Exception):
            await engine.close(old.endpoint_id)
        self._publish(call, "transferred", extension)
        await self._record_transfer(call)
        return extension

    async def transfer_to_queue(self, call: LiveCall, queue: str) -> str:
        """Blind transfer to a queue: the agent leaves at once and the caller waits in
        `queue` (position, music, the next free agent) as if the flow had sent them."""
        if not call.can_requeue:
            raise CallControlError(
                "this call did not come through a queue: transfer it to an extension or number"
            )
        if call.consult is not None:
            raise CallControlError("finish the consultation first")
        call.requeue_to = queue
        call.transfers.append({"from": call.agent.extension, "to": queue, "kind": "queue"})
        await self._record_transfer(call)
        self._publish(call, "transferred", f"queue {queue}")
        await call.agent.leg.hangup("transferred to a queue")
        return queue

    async def consult(self, call: LiveCall, extension: str) -> None:
        """Attended transfer, first half: the caller holds while the agent talks to the
        extension; then `complete_transfer` or `cancel_consult`."""
        if call.consult is not None:
            raise CallControlError("a consultation is already in progress")
        if extension == call.agent.extension:
            raise CallControlError("the call is already with that extension")
        was_held = call.held
        if not was_held:
            await self.hold(call)
        self._publish(call, "consulting", extension)
        target = await ring_agent(
            self.service, _Party(call), self.engine, extension, TRANSFER_RING_SECONDS
        )
        if target is None:
            if not was_held:
                await self.unhold(call)
            raise CallControlError(f"extension {extension} did not answer")
        call.consult = target
        await self.engine.bridge(call.agent.endpoint_id, target.endpoint_id)
        self.service.spawn(self._until_consult_ends(call, target))

    async def _until_consult_ends(self, call: LiveCall, consult: AgentLeg) -> None:
        await consult.leg.ended.wait()
        if call.consult is consult:  # hung up by the one consulted: back to the caller
            call.consult = None
            with contextlib.suppress(Exception):
                await self.engine.close(consult.endpoint_id)
            if not call.party.ended.is_set() and call.held and not _phone_holds(call.agent):
                with contextlib.suppress(Exception):
                    await self.unhold(call)

    async def complete_transfer(self, call: LiveCall) -> str:
        """Attended transfer, second half: the caller goes to the one consulted."""
        target = call.consult
        if target is None:
            raise CallControlError("there is no consultation to complete")
        call.consult = None
        old = call.agent
        call.transfers.append({"from": old.extension, "to": target.extension, "kind": "attended"})
        call.agent = target
        _stop_following(old.leg)
        user = self.service.directory.user(call.tenant_id, target.extension)
        call.agent_id = user.user_id if user else None
        call.swapped.set()
        await self.engine.stop_play(call.caller_endpoint)
        call.held = call.held_by_phone = False
        self._follow_hold_button(call)
        await self._reconnect(call)
        await old.leg.hangup("transferred")
        with contextlib.suppress(Exception):
            await self.engine.close(old.endpoint_id)
        self._publish(call, "transferred", target.extension)
        await self._record_transfer(call)
        return target.extension

    async def cancel_consult(self, call: LiveCall) -> None:
        consult = call.consult
        if consult is None:
            raise CallControlError("there is no consultation to cancel")
        call.consult = None
        await consult.leg.hangup("consultation cancelled")
        with contextlib.suppress(Exception):
            await self.engine.close(consult.endpoint_id)
        self._publish(call, "consult_cancelled", consult.extension)
        if call.held and not _phone_holds(call.agent):  # else the phone still holds it
            await self.unhold(call)

    async def conference(self, call: LiveCall, extension: str) -> None:
        """Add a third party: their phone rings, then everyone hears everyone."""
        key = f"conference:{extension}"
        if key in call.monitors or extension == call.agent.extension:
            raise CallControlError(f"{extension} is already on the call")
        leg = await ring_agent(
            self.service, _Party(call), self.engine, extension, TRANSFER_RING_SECONDS
        )
        if leg is None:
            raise CallControlError(f"extension {extension} did not answer")
        member = Monitor(key, extension, MixRole.PARTICIPANT, leg)
        call.monitors[key] = member
        if not call.held:
            await self._reconnect(call)
        self._publish(call, "conference", extension)
        self.service.spawn(self._until_monitor_leaves(call, member))

    async def _record_transfer(self, call: LiveCall) -> None:
        records = self.service.records
        if records is not None:
            with contextlib.suppress(Exception):
                await records.add_transfer(call.tenant_id, call.call_id, call.transfers[-1])

    async def monitor(self, call: LiveCall, user_id: str, extension: str, mode: MixRole) -> None:
        """A supervisor joins: their phone rings, then they listen, whisper or barge."""
        if mode is MixRole.PARTICIPANT:
            raise CallControlError("a supervisor listens, whispers or barges")
        if user_id in call.monitors:
            await self._set_mode(call, call.monitors[user_id], mode)
            return
        leg = await ring_agent(
            self.service, _Party(call), self.engine, extension, MONITOR_RING_SECONDS
        )
        if leg is None:
            raise CallControlError(f"the supervisor's phone {extension} did not answer")
        monitor = Monitor(user_id, extension, mode, leg)
        call.monitors[user_id] = monitor
        await self._reconnect(call)
        self._publish(call, f"monitor_{mode.value}", extension)
        self.service.spawn(self._until_monitor_leaves(call, monitor))

    async def _set_mode(self, call: LiveCall, monitor: Monitor, mode: MixRole) -> None:
        monitor.mode = mode
        await self._reconnect(call)
        self._publish(call, f"monitor_{mode.value}", monitor.extension)

    async def _until_monitor_leaves(self, call: LiveCall, monitor: Monitor) -> None:
        ended = asyncio.create_task(monitor.leg.leg.ended.wait())
        gone = asyncio.create_task(call.party.ended.wait())
        try:
            await asyncio.wait({ended, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            gone.cancel()
        call.monitors.pop(monitor.user_id, None)
        if not monitor.leg.leg.ended.is_set():
            await monitor.leg.leg.hangup("call over")
        with contextlib.suppress(Exception):
            await self.engine.close(monitor.leg.endpoint_id)
        if not call.party.ended.is_set() and not call.held:
            with contextlib.suppress(Exception):
                await self._reconnect(call)
        self._publish(call, "monitor_left", monitor.extension)

    async def _reconnect(self, call: LiveCall) -> None:
        """Restore the call's media: a bridge, or a mix when supervisors are on it."""
        engine = self.engine
        if not call.monitors:
            await engine.bridge(call.caller_endpoint, call.agent.endpoint_id)
        else:
            await engine.mix(call.mix_id, call.caller_endpoint, MixRole.PARTICIPANT)
            await engine.mix(call.mix_id, call.agent.endpoint_id, MixRole.PARTICIPANT)
            for m in call.monitors.values():
                whisper_to = call.agent.endpoint_id if m.mode is MixRole.WHISPER else None
                await engine.mix(call.mix_id, m.leg.endpoint_id, m.mode, whisper_to=whisper_to)
        await self._music_for_agent(call)  # a new agent, or back from a hold


def _phone_holds(agent: AgentLeg) -> bool:
    """Whether the agent's phone holds the call now (its last offer said so)."""
    offers = agent.leg.offer_answerer
    return isinstance(offers, EngineOffers) and offers.held


def _stop_following(leg: InboundCall | OutboundLeg) -> None:
    """Forget the hold of the leg's phone (the agent's or the caller's): the callback
    holds the call, a cycle."""
    offers = leg.offer_answerer
    if isinstance(offers, EngineOffers):
        offers.on_hold = None


@dataclass
class _Party:
    """The call as `ring_agent` sees it when ringing someone into it."""

    call: LiveCall

    @property
    def tenant_id(self) -> str:
        return self.call.tenant_id

    @property
    def call_id(self) -> str:
        return self.call.call_id

    @property
    def caller(self) -> str:
        return self.call.caller

    @property
    def ended(self) -> asyncio.Event:
        return self.call.party.ended
