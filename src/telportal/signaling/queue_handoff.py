"""Until the ACD exists: a queue step rings the queue's agents one after another.

This is deliberately simple and says so. It has no waiting list, no
strategies, no priorities and no screen pop (all of that is the ACD's, issue
6). What it does do is real: the caller hears ringback while an agent's
registered phone rings, the first agent to answer is bridged through the
media engine after a whisper only the agent hears, the conversation is
recorded (`recording.agent_calls`), and when either side hangs up the other is
hung up too (`agent_leg` does the telephony).
"""

import logging
from typing import TYPE_CHECKING

from telportal.ivr.actions import Action, Queue
from telportal.media import Playlist, PlaySpeech, PlayTone, RecordingLayout
from telportal.rtp.tones import RINGBACK_CHINA
from telportal.signaling.agent_leg import connect, ring_agent
from telportal.signaling.calls import InboundCall
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
    settings = service.config.recording
    for extension in members:
        if call.ended.is_set():
            return True
        agent = await ring_agent(service, call, engine, extension, RING_SECONDS)
        if agent is None:
            continue
        log.info("call %s: queue %s answered by %s", call.call_id, action.queue, extension)
        recording = (
            service.recording_dir / f"{call.call_id}-agent-{extension}.wav"
            if settings.agent_calls
            else None
        )
        connection = await connect(
            call,
            engine,
            ivr.endpoint,
            agent,
            whisper=Playlist((PlaySpeech(f"Call from the {action.queue} queue."),)),
            recording=recording,
            layout=RecordingLayout(settings.layout),
        )
        ivr.agent_recording = connection.recording
        return True
    return False
