"""Reaching an agent for a waiting caller: ring their phone, whisper, bridge, record.

The queue (today the interim handoff, then the ACD) decides *which* agent; this
module does the telephony of connecting one: an outbound leg to the agent's
registered phone with its own media endpoint, an announcement only the agent
hears (which queue the call is from) before the caller is put through, the
bridge through the media engine, and the recording of both parties from the
moment they are connected. Nothing here chooses or retries; it reports.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from telportal.media import MediaEngine, Playlist, PlaySpeech, RecordingLayout, RecordingSummary
from telportal.media.events import DigitReceived, PlayFinished
from telportal.sdp import SessionDescription
from telportal.signaling.calls import InboundCall, OutboundLeg, phone_destination
from telportal.signaling.media_offers import EngineOffers, anchor
from telportal.signaling.music import play_hold_music

if TYPE_CHECKING:
    from telportal.signaling.live_calls import LiveCall
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)


class Caller(Protocol):
    """Whoever the agent is rung for: an inbound call, or a callback not yet dialled."""

    @property
    def tenant_id(self) -> str: ...

    @property
    def call_id(self) -> str: ...

    @property
    def caller(self) -> str: ...

    @property
    def ended(self) -> asyncio.Event: ...


@dataclass
class AgentLeg:
    """An agent's answered phone with its media endpoint, not yet bridged."""

    extension: str
    leg: OutboundLeg
    endpoint_id: str


@dataclass(frozen=True)
class Connection:
    """How a connected call ended."""

    ended_by: str  # "caller", "agent", or "transfer" (the caller went on to a queue)
    recording: Path | None
    summary: RecordingSummary | None


async def ring_agent(
    service: "SipService",
    call: Caller,
    engine: MediaEngine,
    extension: str,
    ring_seconds: float,
    withdrawn: asyncio.Event | None = None,
    *,
    mobile: str | None = None,
    announce: str = "a call",
    answer_now: asyncio.Event | None = None,
) -> AgentLeg | None:
    """Ring the extension's reachable phone (or else the agent's mobile); the answered leg.

    None when the phone is not registered, refuses, does not answer in time, the
    offer is `withdrawn`, or the caller hangs up meanwhile. A phone still ringing
    then gets a CANCEL; one that answered anyway is hung up at once.

    With no registered phone and a `mobile` number, the mobile is called through the
    tenant's trunk, and the agent must press 1 to accept: a voicemail box or someone
    else picking up must not take the caller.
    """
    bindings = [b for b in service.location.lookup(f"{call.tenant_id}/{extension}") if b.reachable]
    if not bindings or bindings[0].peer is None:
        if mobile is None:
            return None
        return await _ring_mobile(
            service, call, engine, extension, mobile, ring_seconds, withdrawn, announce
        )
    binding = bindings[0]
    assert binding.peer is not None
    destination = phone_destination(binding.contact, binding.peer)
    leg = OutboundLeg(
        service,
        binding.contact,
        destination,
        caller=call.caller,
        to=f"sip:{extension}@{service.sent_by(destination)}",
    )
    return await _answered(leg, call, engine, extension, ring_seconds, withdrawn, answer_now)


async def _answered(
    leg: OutboundLeg,
    call: Caller,
    engine: MediaEngine,
    extension: str,
    ring_seconds: float,
    withdrawn: asyncio.Event | None,
    answer_now: asyncio.Event | None = None,
) -> AgentLeg | None:
    endpoint = await engine.create_endpoint(call.call_id)
    answered: OutboundLeg | None = None
    try:
        answered = await _dial(
            leg, endpoint.sdp.serialize().encode(), call, ring_seconds, withdrawn, answer_now
        )
        if answered is not None and answered.final is not None:
            await engine.accept_answer(
                endpoint.endpoint_id, SessionDescription.parse(answered.final.body.decode())
            )
            anchor(answered, engine, endpoint.endpoint_id)
            return AgentLeg(extension, answered, endpoint.endpoint_id)
        return None
    except Exception:
        if answered is not None:
            with contextlib.suppress(Exception):
                await answered.hangup("media setup failed")
        raise
    finally:
        if not answered:
            with contextlib.suppress(Exception):
                await engine.close(endpoint.endpoint_id)


async def ring_number(
    service: "SipService",
    call: Caller,
    engine: MediaEngine,
    number: str,
    ring_seconds: float,
) -> AgentLeg | None:
    """Call an outside number through the tenant's trunk (a transfer to a branch, a
    colleague's mobile); the answered leg, holding a trunk channel until it ends.

    Unlike an agent's mobile no key is asked for: whoever answers takes the caller.
    """
    found = service.trunk_leg(call.tenant_id, number, caller=call.caller)
    if found is None:
        log.warning("call %s: no trunk to reach %s", call.call_id, number)
        return None
    trunk, leg = found
    if not service.seize_channel(trunk):
        return None
    answered: AgentLeg | None = None
    try:
        answered = await _answered(leg, call, engine, number, ring_seconds, None)
        if answered is not None:
            service.spawn(_release_when_done(service, trunk, leg))
        return answered
    finally:
        if answered is None:
            service.release_channel(trunk)


ACCEPT_KEY = "1"
ACCEPT_SECONDS = 10.0


async def _ring_mobile(
    service: "SipService",
    call: Caller,
    engine: MediaEngine,
    extension: str,
    mobile: str,
    ring_seconds: float,
    withdrawn: asyncio.Event | None,
    announce: str,
) -> AgentLeg | None:
    found = service.trunk_leg(call.tenant_id, mobile, caller=call.caller)
    if found is None:
        log.warning("agent %s: no trunk to reach mobile %s", extension, mobile)
        return None
    trunk, leg = found
    if not service.seize_channel(trunk):
        return None
    agent: AgentLeg | None = None
    try:
        agent = await _answered(leg, call, engine, extension, ring_seconds, withdrawn)
        if agent is None:
            return None
        if not await _accepted(engine, agent, announce, call, withdrawn):
            log.info("agent %s: the mobile answered but did not accept", extension)
            await leg.hangup("not accepted")
            with contextlib.suppress(Exception):
                await engine.close(agent.endpoint_id)
            agent = None
            return None
        service.spawn(_release_when_done(service, trunk, leg))
        return agent
    finally:
        if agent is None:
            service.release_channel(trunk)


async def _release_when_done(service: "SipService", trunk: Any, leg: OutboundLeg) -> None:
    await leg.ended.wait()
    service.release_channel(trunk)


async def _accepted(
    engine: MediaEngine,
    agent: AgentLeg,
    announce: str,
    call: Caller,
    withdrawn: asyncio.Event | None,
) -> bool:
    """Ask the person who answered to press 1; True when they do in time."""
    pressed = asyncio.Event()
    subscription = engine.events(agent.endpoint_id)

    async def watch() -> None:
        async for event in subscription:
            if (
                isinstance(event, DigitReceived)
                and event.endpoint_id == agent.endpoint_id
                and event.digit == ACCEPT_KEY
            ):
                pressed.set()
                return

    watcher = asyncio.create_task(watch())
    prompt = Playlist(
        (PlaySpeech(f"You have {announce}. Press {ACCEPT_KEY} to accept."),), loop=True
    )
    try:
        await engine.play(agent.endpoint_id, prompt, barge_in=True)
        stops = [pressed.wait(), agent.leg.ended.wait(), call.ended.wait()]
        if withdrawn is not None:
            stops.append(withdrawn.wait())
        tasks = [asyncio.create_task(s) for s in stops]
        try:
            await asyncio.wait(tasks, timeout=ACCEPT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
        await engine.stop_play(agent.endpoint_id)
        return (
            pressed.is_set()
            and not agent.leg.ended.is_set()
            and not call.ended.is_set()
            and not (withdrawn is not None and withdrawn.is_set())
        )
    finally:
        subscription.close()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def connect(
    call: InboundCall | OutboundLeg,
    engine: MediaEngine,
    caller_endpoint: str,
    agent: AgentLeg,
    *,
    whisper: Playlist | None,
    recording: Path | None,
    layout: RecordingLayout = RecordingLayout.STEREO,
    live: "LiveCall | None" = None,
    on_connected: Callable[[], None] | None = None,
) -> Connection:
    """Whisper to the agent, bridge the two, record, and wait until either side hangs up.

    The caller keeps hearing what they heard (ringback, music) during the whisper, so
    the handover sounds like one continuous wait. The recording is on the caller's
    endpoint: what it receives is the caller (left), what it sends is the agent (right).
    With `live`, the call-control API may replace the agent (a transfer): the old
    agent's leg then ends and the conversation goes on with the new one.
    """
    try:
        if whisper is not None:
            await play_to_end(engine, agent.endpoint_id, whisper, agent.leg.ended)
        if call.ended.is_set() or agent.leg.ended.is_set():
            return await _hang_up_the_other(call, agent, None, engine, caller_endpoint)
        await engine.stop_play(caller_endpoint)
        await engine.bridge(caller_endpoint, agent.endpoint_id)
        if live is None:  # with one, `LiveCalls` follows the agent's hold button
            music_while_held(agent, engine, caller_endpoint)
        if recording is not None:
            recording.parent.mkdir(parents=True, exist_ok=True)
            await engine.record_start(caller_endpoint, recording, layout=layout)
        if on_connected is not None:
            on_connected()  # only now may the call-control API act on the call
        while True:
            if live is not None:
                agent = live.agent
            caller_gone = asyncio.create_task(call.ended.wait())
            agent_gone = asyncio.create_task(agent.leg.ended.wait())
            _, pending = await asyncio.wait(
                {caller_gone, agent_gone}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if call.ended.is_set() or live is None or live.agent is agent:
                break  # the caller or the present agent hung up
        if live is not None and live.requeue_to is not None and not call.ended.is_set():
            # Sent to a queue: the agent is gone, the caller stays for the next one.
            summary = None
            if recording is not None:
                with contextlib.suppress(Exception):
                    summary = await engine.record_stop(caller_endpoint)
            return Connection("transfer", recording, summary)
        return await _hang_up_the_other(call, agent, recording, engine, caller_endpoint)
    finally:
        with contextlib.suppress(Exception):
            await engine.close(agent.endpoint_id)


def music_while_held(agent: AgentLeg, engine: MediaEngine, caller_endpoint: str) -> None:
    """While the agent's phone holds the call, the caller hears music, not silence."""
    offers = agent.leg.offer_answerer
    if not isinstance(offers, EngineOffers):
        return

    async def changed(held: bool) -> None:
        if held:
            await play_hold_music(engine, caller_endpoint)
            if not offers.held:  # resumed while the music loaded
                await engine.stop_play(caller_endpoint)
        else:
            await engine.stop_play(caller_endpoint)

    offers.on_hold = changed


async def _hang_up_the_other(
    call: InboundCall | OutboundLeg,
    agent: AgentLeg,
    recording: Path | None,
    engine: MediaEngine,
    caller_endpoint: str,
) -> Connection:
    summary: RecordingSummary | None = None
    if recording is not None:
        with contextlib.suppress(Exception):
            summary = await engine.record_stop(caller_endpoint)
    ended_by = "caller" if call.ended.is_set() else "agent"
    if ended_by == "caller":
        await agent.leg.hangup("caller hung up")
    else:
        await call.hangup("agent hung up")
    return Connection(ended_by, recording, summary)


async def play_to_end(
    engine: MediaEngine,
    endpoint_id: str,
    playlist: Playlist,
    gone: asyncio.Event,
    limit_seconds: float = 60.0,
) -> None:
    """Play to one endpoint and wait until the prompt ends or its party hangs up."""
    finished = asyncio.Event()
    subscription = engine.events()

    async def watch() -> None:
        async for event in subscription:
            if isinstance(event, PlayFinished) and event.play_id == play_id:
                finished.set()
                return

    play_id = ""
    watcher = asyncio.create_task(watch())
    try:
        play_id = await engine.play(endpoint_id, playlist, barge_in=False)
        ends = [asyncio.create_task(finished.wait()), asyncio.create_task(gone.wait())]
        try:
            await asyncio.wait(ends, timeout=limit_seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in ends:
                task.cancel()
    finally:
        subscription.close()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def auto_answer_headers(server: str) -> tuple[tuple[str, str], ...]:
    """Ask a phone to answer by itself: RFC 5373 and the two forms desk phones know.

    Polycom, Yealink, Snom and Grandstream each honour one of these (configurable on
    the phone); a phone that knows none of them just rings.
    """
    return (
        ("Answer-Mode", "Auto"),
        ("Call-Info", f"<sip:{server}>;answer-after=0"),
        ("Alert-Info", f"<sip:{server}>;info=alert-autoanswer;delay=0"),
    )


async def _dial(
    leg: OutboundLeg,
    offer: bytes,
    call: Caller,
    ring_seconds: float,
    withdrawn: asyncio.Event | None,
    answer_now: asyncio.Event | None = None,
) -> OutboundLeg | None:
    """Ring one agent; the leg they answered on while the caller is still there, or None."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ring_seconds
    while True:
        dial = asyncio.create_task(leg.dial(offer))
        gone = asyncio.create_task(call.ended.wait())
        stops = {gone}
        if withdrawn is not None:
            stops.add(asyncio.create_task(withdrawn.wait()))
        answer = None
        if answer_now is not None:
            answer = asyncio.create_task(answer_now.wait())
            stops.add(answer)
        try:
            done, _ = await asyncio.wait(
                {dial, *stops},
                timeout=max(0.0, deadline - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if dial not in done:
                await leg.cancel()
                final = await dial
                if answer is not None and answer in done and not _stopped(call, withdrawn):
                    if 200 <= final.status < 300:
                        return leg  # they picked up the phone in the same instant
                    log.info("call %s: answering %s from the desktop", call.call_id, leg.target)
                    leg = _auto_answer_leg(leg)
                    answer_now = None  # once: a phone that ignores it rings as before
                    continue
                if 200 <= final.status < 300:
                    await leg.hangup("not needed")
                return None
            if _stopped(call, withdrawn):
                if 200 <= dial.result().status < 300:
                    await leg.hangup("caller gone" if call.ended.is_set() else "offer withdrawn")
                return None
            return leg if 200 <= dial.result().status < 300 else None
        finally:
            for task in stops:
                task.cancel()
            if not dial.done():
                dial.cancel()
            await asyncio.gather(*stops, dial, return_exceptions=True)


def _stopped(call: Caller, withdrawn: asyncio.Event | None) -> bool:
    return call.ended.is_set() or (withdrawn is not None and withdrawn.is_set())


def _auto_answer_leg(leg: OutboundLeg) -> OutboundLeg:
    """A new INVITE to the same phone, asking it to answer by itself."""
    return OutboundLeg(
        leg.service,
        leg.target,
        leg.destination,
        caller=leg.caller,
        caller_name=leg.caller_name,
        to=leg.to,
        credentials=leg.credentials,
        extra_headers=auto_answer_headers(leg.service.sent_by(leg.destination)),
    )
