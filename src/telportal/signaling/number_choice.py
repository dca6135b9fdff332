"""One number, several enterprises: the caller chooses by key (MISSION M13).

A national number may be shared by tenants told apart by an IVR choice (each link
has its digit). Before any tenant's flow runs, the call is answered and the caller
hears "For Acme, press 1. For Bravo, press 2."; the key pressed picks the link, and
that tenant's flow then runs on the same media endpoint. No key after two tries:
the first link serves, so a caller without a keypad still gets through.
"""

import asyncio
import logging
from typing import TYPE_CHECKING

from telportal.media import MediaEngine, Playlist, PlaySpeech
from telportal.media.events import DigitReceived, PlayFinished
from telportal.sdp import SessionDescription
from telportal.signaling.calls import InboundCall
from telportal.signaling.directory import NumberRoute
from telportal.signaling.media_offers import anchor
from telportal.tasks import stop_task

if TYPE_CHECKING:
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

TRIES = 2
WAIT_SECONDS = 5.0


async def choose_enterprise(
    service: "SipService", call: InboundCall, engine: MediaEngine
) -> tuple[NumberRoute, str] | None:
    """The link the caller chose and the answered endpoint; None if they hung up."""
    choices = call.number_choices
    by_digit = {r.ivr_digit: r for r in choices if r.ivr_digit}
    text = " ".join(
        f"For {service.directory.tenant_name(r.tenant_id)}, press {r.ivr_digit}." for r in choices
    )
    offer = SessionDescription.parse(call.offer.decode(errors="replace"))
    info = await engine.create_endpoint(call.call_id, offer)
    anchor(call, engine, info.endpoint_id)  # the IVR anchors it again on the same endpoint
    await call.answer(info.sdp.serialize().encode())
    chosen: asyncio.Queue[str] = asyncio.Queue()
    subscription = engine.events(info.endpoint_id)

    async def keys() -> None:
        async for event in subscription:
            if isinstance(event, DigitReceived) and event.endpoint_id == info.endpoint_id:
                chosen.put_nowait(event.digit)
            elif isinstance(event, PlayFinished) and event.endpoint_id == info.endpoint_id:
                chosen.put_nowait("")  # the prompt ended: start the wait

    pump = asyncio.create_task(keys())
    try:
        for _ in range(TRIES):
            await engine.play(info.endpoint_id, Playlist((PlaySpeech(text),)), barge_in=True)
            digit = await _next_key(chosen, call)
            if digit is None:
                return None
            if digit in by_digit:
                await engine.stop_play(info.endpoint_id)
                return by_digit[digit], info.endpoint_id
        log.info("call %s chose no enterprise; the first link serves", call.call_id)
        return choices[0], info.endpoint_id
    finally:
        subscription.close()
        await stop_task(pump)


async def _next_key(chosen: "asyncio.Queue[str]", call: InboundCall) -> str | None:
    """A key pressed during the prompt or within WAIT_SECONDS after it; "" for none."""
    played = False
    while True:
        get = asyncio.create_task(chosen.get())
        gone = asyncio.create_task(call.ended.wait())
        done, _ = await asyncio.wait(
            {get, gone},
            timeout=WAIT_SECONDS if played else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
        get.cancel()
        gone.cancel()
        if gone in done:
            return None
        if get not in done:
            return ""  # silence after the prompt
        key = get.result()
        if key:
            return key
        played = True
