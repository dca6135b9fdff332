"""A queued callback coming due: the agent first, then the customer (MISSION M7).

The ACD decides `OfferCallback` when an agent is free for a caller who asked to be
called back. The agent's phone rings first, so no customer is ever called back
into silence; once the agent answers they hear whom they are calling, and the
customer is dialled through the tenant's trunk. When the customer answers, the two
are bridged and recorded like any agent call. If the agent does not answer, the
ACD offers the callback again (to the next agent); if the customer does not
answer, the agent is told and the callback ends. Each attempt gets its own call
record (direction outbound, the queue, the agent, the outcome).
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telportal.acd import OfferCallback
from telportal.center.acd_service import AcdService, AgentInfo, QueueInfo
from telportal.media import Playlist, PlaySpeech, RecordingLayout
from telportal.sdp import SessionDescription
from telportal.signaling.agent_leg import AgentLeg, connect, play_to_end, ring_agent
from telportal.signaling.calls import OutboundLeg
from telportal.signaling.media_offers import anchor

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

CUSTOMER_RING_SECONDS = 40.0


@dataclass
class _Callback:
    """Who the agent is rung for: the customer to be called back."""

    tenant_id: str
    call_id: str
    caller: str
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class CallbackRunner:
    def __init__(self, service: "SipService", acd: AcdService) -> None:
        self.service = service
        self.acd = acd

    async def __call__(self, offer: OfferCallback) -> None:
        service, acd = self.service, self.acd
        engine = service.media
        agent = acd.agent_info(offer.tenant_id, offer.agent_id)
        queue = acd.queue_by_id(offer.tenant_id, offer.queue_id)
        if engine is None or agent is None or not agent.extension or queue is None:
            acd.failed(offer.tenant_id, offer.contact_id, offer.agent_id, "unreachable")
            return
        call_id = f"callback-{secrets.token_hex(8)}"
        party = _Callback(offer.tenant_id, call_id, offer.number)
        records = service.records
        if records is not None:
            await _quietly(
                records.start(
                    offer.tenant_id, call_id, site=service.config.site.name,
                    direction="outbound", caller=agent.extension, called=offer.number,
                    service_id=queue.service_id,
                )
            )  # fmt: skip
            await _quietly(records.queued(offer.tenant_id, call_id, queue.name))
        with acd.ringing.ringing(offer.tenant_id, offer.agent_id, remote_answer=True) as answer:
            agent_leg = await ring_agent(
                service, party, engine, agent.extension, offer.ring_timeout + 5.0,
                answer_now=answer,
            )  # fmt: skip
        view = acd.distributor.contact(offer.tenant_id, offer.contact_id)
        still_offered = view is not None and offer.agent_id in view.offers
        if agent_leg is None or not still_offered:
            if agent_leg is not None:
                await agent_leg.leg.hangup("offer withdrawn")
                with contextlib.suppress(Exception):
                    await engine.close(agent_leg.endpoint_id)
            elif still_offered:
                acd.failed(offer.tenant_id, offer.contact_id, offer.agent_id, "no-answer")
            await self._finish(offer.tenant_id, call_id, "agent did not answer", None)
            return
        acd.accepted(offer.tenant_id, offer.contact_id, offer.agent_id)
        outcome, hangup_by = "callback: customer did not answer", "system"
        try:
            outcome, hangup_by = await self._customer(offer, agent, queue, agent_leg, call_id)
        finally:
            acd.ended(offer.tenant_id, offer.contact_id)
            if not agent_leg.leg.ended.is_set():
                await agent_leg.leg.hangup("callback over")
            with contextlib.suppress(Exception):
                await engine.close(agent_leg.endpoint_id)
            await self._finish(offer.tenant_id, call_id, outcome, hangup_by)

    async def _customer(
        self,
        offer: OfferCallback,
        agent: AgentInfo,
        queue: QueueInfo,
        agent_leg: AgentLeg,
        call_id: str,
    ) -> tuple[str, str]:
        """With the agent on the line: dial the customer, bridge, record; the outcome."""
        service, records, engine = self.service, self.service.records, self.service.media
        assert engine is not None
        assert agent.extension is not None
        await play_to_end(
            engine,
            agent_leg.endpoint_id,
            Playlist((PlaySpeech(f"Callback from the {queue.name} queue. Calling now."),)),
            agent_leg.leg.ended,
        )
        found = service.trunk_leg(offer.tenant_id, offer.number, caller=agent.extension)
        if found is None or agent_leg.leg.ended.is_set():
            return "callback: no trunk or agent gone", "system"
        trunk, customer = found
        if not service.seize_channel(trunk):
            return "callback: trunk busy", "system"
        endpoint = await engine.create_endpoint(call_id)
        try:
            answer = await _dial(customer, endpoint.sdp.serialize().encode(), agent_leg.leg)
            if answer is None:
                await play_to_end(
                    engine,
                    agent_leg.endpoint_id,
                    Playlist((PlaySpeech("The customer did not answer."),)),
                    agent_leg.leg.ended,
                )
                return "callback: customer did not answer", "system"
            await engine.accept_answer(endpoint.endpoint_id, SessionDescription.parse(answer))
            anchor(customer, engine, endpoint.endpoint_id)
            recording = (
                service.recording_dir / f"{call_id}-agent-{agent.extension}.wav"
                if service.config.recording.agent_calls
                else None
            )
            if records is not None:
                await _quietly(records.answered(offer.tenant_id, call_id))
                relative = (
                    str(recording.relative_to(service.config.data_dir)) if recording else None
                )
                await _quietly(
                    records.connected(
                        offer.tenant_id, call_id, agent_id=agent.user_id,
                        extension=agent.extension, recording=relative,
                    )
                )  # fmt: skip
            connection = await connect(
                customer, engine, endpoint.endpoint_id, agent_leg, whisper=None,
                recording=recording, layout=RecordingLayout(service.config.recording.layout),
            )  # fmt: skip
            return (
                f"callback answered by {agent.extension}",
                "caller" if connection.ended_by == "caller" else "agent",
            )
        finally:
            service.release_channel(trunk)
            with contextlib.suppress(Exception):
                await engine.close(endpoint.endpoint_id)

    async def _finish(
        self, tenant_id: str, call_id: str, outcome: str, hangup_by: str | None
    ) -> None:
        if self.service.records is not None:
            await _quietly(
                self.service.records.finish(
                    tenant_id, call_id, end_reason=outcome, outcome=outcome,
                    hangup_by=hangup_by or "system",
                )
            )  # fmt: skip


async def _dial(customer: OutboundLeg, offer: bytes, agent: OutboundLeg) -> str | None:
    """Dial the customer while the agent holds; the answer's SDP, or None."""
    dial = asyncio.create_task(customer.dial(offer))
    gone = asyncio.create_task(agent.ended.wait())
    try:
        done, _ = await asyncio.wait(
            {dial, gone}, timeout=CUSTOMER_RING_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        if dial not in done:
            await customer.cancel()
            final = await dial
            if 200 <= final.status < 300:
                await customer.hangup("agent gone")
            return None
        response = dial.result()
        if not 200 <= response.status < 300:
            return None
        return response.body.decode()
    finally:
        gone.cancel()
        if not dial.done():
            dial.cancel()
        await asyncio.gather(gone, dial, return_exceptions=True)


async def _quietly(write: Awaitable[object]) -> None:
    try:
        await write
    except Exception:
        log.exception("could not write the callback's call record")
