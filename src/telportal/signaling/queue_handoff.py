"""Until the ACD exists: a queue step rings the queue's agents one after another.

This is deliberately simple and says so. It has no waiting list, no
strategies, no priorities and no screen pop (all of that is the ACD's, issue
6). What it does do is real: the caller hears ringback while an agent's
registered phone rings, the first agent to answer is bridged through the
media engine (so the call can be recorded and monitored later), and when
either side hangs up the other is hung up too.
"""

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from telportal.ivr.actions import Action, Queue
from telportal.media import Playlist, PlaySpeech, PlayTone
from telportal.rtp.tones import RINGBACK_CHINA
from telportal.sdp import SessionDescription
from telportal.signaling.calls import InboundCall, OutboundLeg, phone_destination
from telportal.signaling.ivr_call import Handoff, IvrCall, say_unavailable

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

RING_SECONDS = 20.0


def ring_queue_members(service: "SipService") -> Handoff:
    """A handoff for IvrCall: queues ring their members; the rest is not available yet."""

    async def handoff(call: InboundCall, action: Action, ivr: IvrCall) -> None:
        if not isinstance(action, Queue):
            await say_unavailable(call, action, ivr)
            return
        if not await _ring_members(service, call, action, ivr):
            await ivr.play_and_wait(
                Playlist((PlaySpeech("Sorry, all our agents are busy. Please call again later."),))
            )

    return handoff


async def _ring_members(
    service: "SipService", call: InboundCall, action: Queue, ivr: IvrCall
) -> bool:
    engine = ivr.engine
    members = service.directory.queue_members(call.tenant_id, action.queue)
    await engine.play(
        ivr.endpoint, Playlist((PlayTone(RINGBACK_CHINA),), loop=True), barge_in=False
    )
    for extension in members:
        if call.ended.is_set():
            return True
        bindings = [
            b for b in service.location.lookup(f"{call.tenant_id}/{extension}") if b.reachable
        ]
        if not bindings or bindings[0].peer is None:
            continue
        binding = bindings[0]
        assert binding.peer is not None
        destination = phone_destination(binding.contact, binding.peer)
        agent = await engine.create_endpoint(call.call_id)
        leg = OutboundLeg(
            service,
            binding.contact,
            destination,
            caller=call.caller,
            to=f"sip:{extension}@{service.sent_by(destination)}",
        )
        try:
            answered = await _dial(leg, agent.sdp.serialize().encode(), call)
            if not answered or leg.final is None:
                continue
            await engine.accept_answer(
                agent.endpoint_id, SessionDescription.parse(leg.final.body.decode())
            )
            await engine.stop_play(ivr.endpoint)
            await engine.bridge(ivr.endpoint, agent.endpoint_id)
            log.info("call %s: queue %s answered by %s", call.call_id, action.queue, extension)
            caller_gone = asyncio.create_task(call.ended.wait())
            agent_gone = asyncio.create_task(leg.ended.wait())
            done, pending = await asyncio.wait(
                {caller_gone, agent_gone}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if caller_gone in done:
                await leg.hangup("caller hung up")
            return True
        finally:
            with contextlib.suppress(Exception):
                await engine.close(agent.endpoint_id)
    return False


async def _dial(leg: OutboundLeg, offer: bytes, call: InboundCall) -> bool:
    """Ring one agent; True when they answered (and the caller is still there)."""
    dial = asyncio.create_task(leg.dial(offer))
    gone = asyncio.create_task(call.ended.wait())
    try:
        done, _ = await asyncio.wait(
            {dial, gone}, timeout=RING_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if dial not in done:
            await leg.cancel()
            final = await dial
            if 200 <= final.status < 300:
                await leg.hangup("not needed")
            return False
        return 200 <= dial.result().status < 300
    finally:
        gone.cancel()
        if not dial.done():
            dial.cancel()
        await asyncio.gather(gone, dial, return_exceptions=True)
