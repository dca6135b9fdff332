"""Mid-call offers on a leg whose media ends in our engine (IVR, queue, agent calls).

A phone that holds, resumes, or moves to another address sends a re-INVITE or UPDATE
with a new offer. Where our media engine is the other end of that leg's session, the
engine answers it (`MediaEngine.answer_offer`): the answer's direction follows the
offer (RFC 3264 6.1: a sendonly offer gets recvonly, and we stop sending), and a new
address or codec takes effect at once. A re-INVITE without an offer gets a new one
from the engine (`offer`), whose answer comes in the ACK (`accept`). `EngineOffers`
is that answerer, set on the leg as its `offer_answerer` (`anchor`).

Whether the phone has put the call on hold is reported to `on_hold`, once per change:
the call-control layer turns an agent's hold button into the same hold as its API's
(the caller hears music, the call's state says held).
"""

import logging
from collections.abc import Awaitable, Callable

from telportal.media import MediaEngine, MediaError
from telportal.sdp import SdpError, SessionDescription, is_hold
from telportal.signaling.calls import Leg

log = logging.getLogger(__name__)

HoldListener = Callable[[bool], Awaitable[None]]


def holds(offer: SessionDescription) -> bool:
    """Whether the offer puts the call on hold: its first RTP/AVP audio stream in use
    (the one the engine answers) is not to be sent to (sendonly, inactive, or the old
    c=0.0.0.0 of RFC 2543)."""
    for media in offer.media:
        if media.media == "audio" and media.protocol == "RTP/AVP" and media.port != 0:
            return is_hold(offer, media)
    return False


class EngineOffers:
    """Answers one leg's mid-call offers with its endpoint in the media engine.

    Holds no reference to the leg, so that a leg and its answerer are no cycle for
    the collector to find.
    """

    __slots__ = ("endpoint_id", "engine", "held", "on_hold")

    def __init__(self, engine: MediaEngine, endpoint_id: str) -> None:
        self.engine = engine
        self.endpoint_id = endpoint_id
        self.held = False
        self.on_hold: HoldListener | None = None

    async def answer(self, sdp: bytes) -> bytes | int:
        try:
            offer = SessionDescription.parse(sdp.decode("utf-8"))
            answer = await self.engine.answer_offer(self.endpoint_id, offer)
        except (SdpError, UnicodeDecodeError) as exc:
            log.info("endpoint %s: mid-call offer refused: %s", self.endpoint_id, exc)
            return 488
        except MediaError as exc:  # the endpoint is gone: the call is ending
            log.info("endpoint %s: mid-call offer not answered: %s", self.endpoint_id, exc)
            return 500
        await self._held(holds(offer))
        return answer.serialize().encode()

    async def offer(self) -> bytes | None:
        """A new offer of the whole session (sendrecv), for a re-INVITE without one."""
        try:
            offer = await self.engine.create_offer(self.endpoint_id)
        except MediaError as exc:
            log.info("endpoint %s: no offer to make: %s", self.endpoint_id, exc)
            return None
        return offer.serialize().encode()

    async def accept(self, answer: bytes) -> None:
        """The answer to `offer`, from the ACK: too late to refuse, so a bad one is
        logged and the session stays as it was."""
        try:
            description = SessionDescription.parse(answer.decode("utf-8"))
            await self.engine.accept_answer(self.endpoint_id, description)
        except (SdpError, UnicodeDecodeError, MediaError) as exc:
            log.info("endpoint %s: answer in the ACK not applied: %s", self.endpoint_id, exc)
            return
        await self._held(holds(description))

    async def _held(self, held: bool) -> None:
        if held is self.held:
            return
        self.held = held
        listener = self.on_hold
        if listener is not None:
            try:
                await listener(held)
            except Exception:  # the answer stands; the call goes on without the music
                log.exception("endpoint %s: hold change not applied", self.endpoint_id)


def anchor(leg: Leg, engine: MediaEngine, endpoint_id: str) -> EngineOffers:
    """Let the engine's `endpoint_id` answer `leg`'s mid-call offers; the answerer."""
    offers = EngineOffers(engine, endpoint_id)
    leg.offer_answerer = offers
    return offers
