"""A flow's transfer and callback steps, carried out on the live call (MISSION M4, M7).

- Transfer to an agent (an extension of the tenant): their phone rings while the
  caller hears ringback; answered, the two are connected like any agent call
  (whisper, bridge, recording, call control). Not answered: the caller hears an
  apology and the call ends.
- Transfer to a number: out through the tenant's trunk (a branch office, a mobile),
  bridged through the media engine so the call stays recorded and controllable.
- Callback: the caller's request enters the queue as a callback keeping its place
  (the ACD rings an agent, then the number, as for a callback asked for while
  waiting); the flow goes on (usually to a thank-you and hang-up).
- Transfer to another service of the tenant: that service's published flow runs
  next on the same answered call.
- Transfer to another site: the call is dialled to that site's `sip_uri` with the
  same service number, carrying where it came from and the flow's variables
  (`site_handover`); that site runs the service's flow, and the two are bridged here.
"""

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from telportal.center.acd_service import AcdService
from telportal.crm.cases import CaseDesk
from telportal.ivr.actions import CreateCase, RequestCallback, Transfer
from telportal.ivr.publishing import PublishedFlow
from telportal.media import Playlist, PlaySpeech, PlayTone, RecordingLayout
from telportal.net import Peer, Transport
from telportal.rtp.tones import RINGBACK_CHINA
from telportal.sdp import SessionDescription
from telportal.signaling.agent_leg import connect, ring_agent
from telportal.signaling.calls import InboundCall, OutboundLeg
from telportal.signaling.ivr_call import IvrCall, say_unavailable
from telportal.signaling.live_calls import LiveCall
from telportal.signaling.media_offers import anchor
from telportal.signaling.site_handover import handover_headers
from telportal.store.schema import Service
from telportal.tenancy.roles import Scope

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

TRANSFER_RING_SECONDS = 30.0


async def transfer(
    service: "SipService", call: InboundCall, action: Transfer, ivr: IvrCall
) -> None:
    records = service.records
    if records is not None:
        with contextlib.suppress(Exception):
            await records.add_transfer(
                call.tenant_id,
                call.call_id,
                {"kind": "ivr", "to": f"{action.kind} {action.target}"},
            )
    if action.kind == "agent":
        await _to_agent(service, call, action.target, ivr)
    elif action.kind == "number":
        await _to_number(service, call, action.target, ivr)
    elif action.kind == "service":
        await _to_service(service, call, action.target, ivr)
    else:
        await _to_site(service, call, action.target, ivr)


async def _sorry(ivr: IvrCall, text: str | None = None) -> None:
    await ivr.engine.stop_play(ivr.endpoint)
    apology = text or "Sorry, the person you are calling is not available. Goodbye."
    await ivr.play_and_wait(Playlist((PlaySpeech(apology),)))


async def _to_agent(service: "SipService", call: InboundCall, extension: str, ivr: IvrCall) -> None:
    engine = ivr.engine
    user = service.directory.user(call.tenant_id, extension)
    if user is None:
        log.warning("call %s: the flow transfers to unknown extension %s", call.call_id, extension)
        await _sorry(ivr)
        return
    await engine.play(
        ivr.endpoint, Playlist((PlayTone(RINGBACK_CHINA),), loop=True), barge_in=False
    )
    leg = await ring_agent(service, call, engine, extension, TRANSFER_RING_SECONDS)
    if leg is None:
        await _sorry(ivr)
        return
    settings = service.config.recording
    recording = (
        service.recording_dir / f"{call.call_id}-agent-{extension}.wav"
        if settings.agent_calls
        else None
    )
    if service.records is not None:
        relative = str(recording.relative_to(service.config.data_dir)) if recording else None
        with contextlib.suppress(Exception):
            await service.records.connected(
                call.tenant_id, call.call_id, agent_id=user.user_id, extension=extension,
                recording=relative,
            )  # fmt: skip
    live = LiveCall(
        call.tenant_id, call.call_id, call.caller, None, user.user_id, leg, ivr.endpoint, call,
        recording,
    )  # fmt: skip
    try:
        connection = await connect(
            call, engine, ivr.endpoint, leg, whisper=None, recording=recording,
            layout=RecordingLayout(settings.layout), live=live,
            on_connected=lambda: service.live_calls.add(live),
        )  # fmt: skip
        ivr.hangup_by = live.hung_up_by or connection.ended_by
        ivr.agent_recording = connection.recording
    finally:
        service.live_calls.remove(live)


async def _to_service(service: "SipService", call: InboundCall, code: str, ivr: IvrCall) -> None:
    """Another service of the tenant (by its code): its published flow runs next, on the
    same answered call, and the call's record keeps both paths."""
    records = service.records
    if records is None or service.flows is None:
        await say_unavailable(call, Transfer(call.tenant_id, call.call_id, "service", code), ivr)
        return
    async with records.db.read() as session:
        target = (
            await session.execute(
                select(Service).where(Service.tenant_id == call.tenant_id, Service.code == code)
            )
        ).scalar_one_or_none()
    found = await service.flows(call.tenant_id, target.id) if target is not None else None
    if found is None:
        log.warning("call %s: no published flow for service %r", call.call_id, code)
        await _sorry(ivr)
        return
    flow = found.flow if isinstance(found, PublishedFlow) else found
    nested = IvrCall(
        call, ivr.engine, flow, service.clock, called=ivr.called, site=service.config.site.name,
        tenant_slug=service.directory.slug_of(call.tenant_id) or call.tenant_id,
        handoff=ivr.handoff, prompt_dir=service.prompt_dir, recording_dir=service.recording_dir,
    )  # fmt: skip
    record = await nested.serve(ivr.endpoint)
    ivr.continued = record
    ivr.hangup_by = nested.hangup_by or ivr.hangup_by
    ivr.agent_recording = nested.agent_recording or ivr.agent_recording


async def _to_number(service: "SipService", call: InboundCall, number: str, ivr: IvrCall) -> None:
    hops = call.relayed_max_forwards()
    if hops < 0:
        log.warning("call %s: Max-Forwards used up, not transferred to %s", call.call_id, number)
        await _sorry(ivr)
        return
    found = service.trunk_leg(call.tenant_id, number, caller=call.caller, max_forwards=hops)
    if found is None:
        log.warning("call %s: no trunk to transfer to %s", call.call_id, number)
        await _sorry(ivr)
        return
    trunk, outside = found
    if not service.seize_channel(trunk):
        await _sorry(ivr)
        return
    try:
        await _put_through(
            service, call, ivr, outside,
            {"kind": "trunk", "target": number, "trunk": trunk.name, "status": 200},
        )  # fmt: skip
    finally:
        service.release_channel(trunk)


async def _to_site(service: "SipService", call: InboundCall, name: str, ivr: IvrCall) -> None:
    """Hand the call to another site: it dials the same service number there, and that
    site's flow runs with `transfer.from_site` and the variables gathered here."""
    peer = service.directory.site(name)
    if peer is None:
        log.warning("call %s: no enabled site %r with a sip_uri to transfer to", call.call_id, name)
        await _sorry(ivr, "Sorry, this service is not available now. Goodbye.")
        return
    hops = call.relayed_max_forwards()
    if hops < 0:
        # Sites whose flows hand the call to each other: the loop ends here.
        log.warning("call %s: Max-Forwards used up, not handed to site %s", call.call_id, name)
        await _sorry(ivr, "Sorry, this service is not available now. Goodbye.")
        return
    transport = Transport(peer.transport)
    host = f"[{peer.host}]" if ":" in peer.host else peer.host
    suffix = "" if transport is Transport.UDP else f";transport={peer.transport}"
    outside = OutboundLeg(
        service,
        f"sip:{ivr.called}@{host}:{peer.port}{suffix}",
        Peer(transport, peer.host, peer.port),
        caller=call.caller,
        extra_headers=handover_headers(service.config.site.name, call.call_id, ivr.run.variables),
        max_forwards=hops,
    )
    await _put_through(
        service, call, ivr, outside, {"kind": "site", "target": name, "status": 200},
        sorry="Sorry, this service is not available now. Goodbye.",
    )  # fmt: skip


async def _put_through(
    service: "SipService",
    call: InboundCall,
    ivr: IvrCall,
    outside: OutboundLeg,
    leg_json: dict[str, object],
    sorry: str | None = None,
) -> None:
    """Dial `outside` while the caller hears ringback; bridge the two until one hangs up."""
    engine = ivr.engine
    await engine.play(
        ivr.endpoint, Playlist((PlayTone(RINGBACK_CHINA),), loop=True), barge_in=False
    )
    endpoint = await engine.create_endpoint(call.call_id)
    try:
        response = await outside.dial(endpoint.sdp.serialize().encode())
        if call.ended.is_set():
            if 200 <= response.status < 300:
                await outside.hangup("caller gone")
            return
        if not 200 <= response.status < 300:
            log.info("call %s: %s answered %d", call.call_id, outside.target, response.status)
            await _sorry(ivr, sorry)
            return
        await engine.accept_answer(
            endpoint.endpoint_id, SessionDescription.parse(response.body.decode())
        )
        anchor(outside, engine, endpoint.endpoint_id)
        await engine.stop_play(ivr.endpoint)
        await engine.bridge(ivr.endpoint, endpoint.endpoint_id)
        if service.records is not None:
            with contextlib.suppress(Exception):
                await service.records.add_leg(call.tenant_id, call.call_id, leg_json)
        ended = await _first_to_end(call, outside)
        ivr.hangup_by = "caller" if ended == "caller" else "callee"
    finally:
        with contextlib.suppress(Exception):
            await engine.close(endpoint.endpoint_id)


async def _first_to_end(call: InboundCall, outside: OutboundLeg) -> str:
    caller = asyncio.create_task(call.ended.wait())
    other = asyncio.create_task(outside.ended.wait())
    done, pending = await asyncio.wait({caller, other}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    if caller in done:
        await outside.hangup("caller hung up")
        return "caller"
    await call.hangup("the other side hung up")
    return "callee"


def request_callback(acd: AcdService, call: InboundCall, action: RequestCallback) -> bool:
    """Put the caller's callback request in the queue; False when there is no such queue."""
    info = acd.queue(call.tenant_id, action.queue)
    if info is None or not action.number:
        return False
    contact_id = f"{call.call_id}-callback"
    acd.enqueue(call.tenant_id, contact_id, info.queue_id)
    acd.to_callback(call.tenant_id, contact_id, action.number)
    return True


async def open_case(
    service: "SipService", cases: CaseDesk | None, call: InboundCall, action: CreateCase
) -> None:
    """A flow's case or voicemail step: a case linked to this call (and its caller's
    customer), with the flow's fields and, for voicemail, the recording."""
    if cases is None:
        log.warning("call %s: no case desk on this site; the case is not opened", call.call_id)
        return
    lines = [f"{key}: {value}" for key, value in sorted(action.fields.items())]
    if action.recording:
        recording = Path(action.recording)
        with contextlib.suppress(ValueError):
            recording = recording.relative_to(service.config.data_dir)
        lines.append(f"recording: {recording}")
    try:
        await cases.open(
            Scope.system("ivr"),
            call.tenant_id,
            subject=action.subject[:300],
            description="\n".join(lines),
            urgency=action.urgency,
            channel="voicemail" if action.source == "voicemail" else "voice",
            call_id=call.call_id,
            department=action.department or "",
        )
    except Exception:
        # The caller's flow goes on; the failure is in the log for the operator.
        log.exception("call %s: the flow's case could not be opened", call.call_id)
