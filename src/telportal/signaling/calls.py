"""The B2BUA core: an inbound call (our UAS leg), an outbound leg (our UAC leg), a bridge.

Every call the platform handles is two independent SIP dialogs that this module
keeps in step: the caller's (A) and the one we place (B). The layers above
(IVR, ACD) see only these objects: answer / reject / redirect / hang up an
inbound call, dial an outbound leg to a registered phone, a trunk or a URI, and
bridge the two. SDP is passed through `MediaAnchor`, the seam where the media
engine will put itself between the legs; the default passes SDP unchanged.

Lifetimes: each object has an `ended` event and an `end_reason`. A leg ends on
BYE from its peer, on our hangup, on a failed or cancelled setup, or when the
peer never acknowledges our 2xx (64*T1).
"""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from telportal.net import NoRoute, Peer, Source, Transport
from telportal.net.address import ip_literal, same_host
from telportal.sip import (
    Headers,
    Request,
    Response,
    SipParseError,
    SipUri,
    make_response,
    parse_uri,
)
from telportal.sip.dialog import (
    DEFAULT_MAX_FORWARDS,
    Dialog,
    DialogError,
    DialogId,
    DialogState,
)
from telportal.sip.digest import DigestError, answer_challenge, answer_challenge_ha1
from telportal.sip.session_timer import (
    Expire,
    SendRefresh,
    SessionTimer,
    SessionTimerAgreement,
    negotiate_uas,
)
from telportal.sip.transaction import TransactionId, new_branch, new_tag
from telportal.sip.transaction_messages import new_call_id
from telportal.sip.validate import Rejection
from telportal.sip.via import Via, own_via

if TYPE_CHECKING:
    from telportal.signaling.directory import NumberRoute, SipTrunk
    from telportal.signaling.service import SipService

log = logging.getLogger(__name__)

Address = Peer | Source
SDP = "application/sdp"


# In-dialog requests answered 200 that change nothing; other methods not handled in
# a call (REFER, MESSAGE, NOTIFY, ...) get 405 with these.
IN_DIALOG_ANSWERED = frozenset({"OPTIONS", "INFO"})
IN_DIALOG_ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"
# 14.1: a session refresh refused with 491 (or not built because an INVITE of the
# peer's was in progress) is tried again after the glare delay, this many times.
GLARE_RETRIES = 3


class MediaAnchor(Protocol):
    """Where the media engine joins a bridge: it may rewrite each leg's SDP."""

    def offer_to_b(self, a_offer: bytes) -> bytes: ...

    def answer_to_a(self, b_answer: bytes) -> bytes: ...


class OfferAnswerer(Protocol):
    """Answers a leg's mid-call offers where our media engine, not another phone, is
    the other end of its session (`signaling.media_offers`)."""

    async def answer(self, sdp: bytes) -> bytes | int:
        """Our answer to `sdp`, or the status to refuse it with (488, 500)."""
        ...

    async def offer(self) -> bytes | None:
        """An offer for the 2xx to a re-INVITE that came without one; None to offer
        what we last sent."""
        ...

    async def accept(self, answer: bytes) -> None:
        """The answer to `offer()`, from the peer's ACK."""
        ...


class PassThroughMedia:
    """Media flows end to end between the phones; only signaling crosses us."""

    def offer_to_b(self, a_offer: bytes) -> bytes:
        return a_offer

    def answer_to_a(self, b_answer: bytes) -> bytes:
        return b_answer


@dataclass(frozen=True)
class Credentials:
    """For answering a 401/407 from a trunk or a far end: a password, or HA1 for one realm.

    Trunks keep only HA1 (so a database leak does not give away carrier accounts);
    a password is for callers that hold one, such as tests and tools.
    """

    username: str
    password: str | None = None
    realm: str | None = None
    ha1_md5: str | None = None
    ha1_sha256: str | None = None

    def answer(self, challenge: str, method: str, uri: str, cnonce: str, nc: int) -> str:
        if self.password is not None:
            return answer_challenge(
                challenge, method, uri, self.username, self.password, cnonce, nc
            )
        if self.realm is None:
            raise DigestError("credentials have neither a password nor a realm")
        return answer_challenge_ha1(
            challenge,
            method,
            uri,
            self.username,
            realm=self.realm,
            ha1_md5=self.ha1_md5,
            ha1_sha256=self.ha1_sha256,
            cnonce=cnonce,
            nc=nc,
        )


class _Leg:
    """What both legs share: a dialog, its destination, and how it ends."""

    def __init__(self, service: "SipService", destination: Address) -> None:
        self.service = service
        self.destination = destination
        self.dialog: Dialog | None = None
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.last_sdp = b""
        self.session_timer: SessionTimer | None = None
        # Made by `keep_session`: most calls negotiate no session timer.
        self._timer_changed: asyncio.Event | None = None
        # Called once when the leg ends (see `when_ended`), after `ended` is set.
        self._end_callbacks: list[Callable[[], None]] = []
        self.acked = False
        # Our 2xx was acknowledged, or we gave up waiting: until then no BYE may go
        # (RFC 3261 15). A call hung up before that owes its BYE until then, and its dialog
        # stays known, so that the peer's BYE meanwhile is answered 200, not 481.
        self._ack_wait_over = False
        # A BYE is owed once the ACK comes (it is built then: building it ends the
        # dialog, whose requests must still be answered meanwhile).
        self._bye_held = False
        # The other leg of a call `bridge()` connected with media passed through: an
        # offer from this leg's peer mid-call (hold, resume, a new address or codec) is
        # put to that leg's peer, whose answer is ours. Set only while both are up.
        self.partner: _Leg | None = None
        # Set by the layer that anchors this leg's media in our engine: offers from the
        # peer mid-call (hold, resume, a new address) are the engine's to answer.
        self.offer_answerer: OfferAnswerer | None = None
        # A re-INVITE of the peer's without an offer: our 2xx to it (CSeq number) made
        # one, whose answer comes in the ACK, for the partner or the answerer.
        self._answer_due: int | None = None
        # Ours without an offer, to the partner's peer: its 2xx made one, and the ACK
        # waits for the answer from the other side (CSeq number, the 2xx). Then the
        # ACK sent, for each retransmission of that 2xx (13.2.2.4).
        self._ack_owed: tuple[int, Response] | None = None
        self._answer_ack: tuple[int, Request] | None = None

    async def keep_session(self, agreement: SessionTimerAgreement) -> None:
        """Run the RFC 4028 timer: refresh when it is ours to, hang up a dead session."""
        clock = self.service.clock
        timer = self.session_timer = SessionTimer.start(agreement, clock.monotonic())
        changed = self._timer_changed = asyncio.Event()
        while not self.ended.is_set():
            deadline = timer.next_deadline()
            if deadline is None:
                return
            changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, deadline - clock.monotonic())):
                    await changed.wait()
            for action in timer.on_timer(clock.monotonic()):
                if isinstance(action, Expire):
                    log.info("session of %s expired: hanging up", self.destination)
                    await self.hangup("session expired")
                    return
                if not await self.refresh(action.headers):
                    await self.hangup("session refresh failed")
                    return
                timer.refreshed(clock.monotonic())

    async def refresh(self, headers: tuple[tuple[str, str], ...] = ()) -> bool:
        """Send a re-INVITE with the session as it is (a session refresh, RFC 4028).
        False when the session is dead: no answer, 408 or 481, or the dialog is over.

        Glare (14.1): a 491, or an INVITE of the peer's still in progress (the dialog
        will not build ours then), or an offer of a re-INVITE without one still
        unanswered (`offer_pending`), is tried again after the glare delay, up to
        GLARE_RETRIES times. If the peer's INVITEs still win, the session is alive:
        their own answers refresh it."""
        for _ in range(GLARE_RETRIES + 1):
            dialog = self.dialog
            if dialog is None or dialog.state is not DialogState.CONFIRMED or self.ended.is_set():
                return False
            if self.offer_pending:
                await asyncio.sleep(dialog.glare_retry_delay())
                continue
            destination = self.next_hop()
            request = dialog.reinvite(self.last_sdp, headers=headers, via=self._via(destination))
            try:
                response = await self.service.request(request, destination)
            except Exception as exc:  # a peer that cannot be reached is a dead session
                log.debug("session refresh to %s failed: %s", destination, exc)
                return False
            dialog.receive_response(response)
            if 200 <= response.status < 300:
                ack = dialog.ack(response, via=self._via(destination))
                await self.service.send_outside_transaction(ack, destination)
                return True
            if response.status != 491:
                return response.status not in (408, 481)
            await asyncio.sleep(dialog.glare_retry_delay())
        return True

    @property
    def offer_pending(self) -> bool:
        """An INVITE is in progress in this dialog, or an offer made in a 2xx waits for
        its answer in the ACK (ours to the peer, or the peer's to us): no new offer
        may go either way until it is over (RFC 3264 4, RFC 6337 3.1)."""
        dialog = self.dialog
        return (
            (dialog is not None and dialog.invite_pending)
            or self._ack_owed is not None
            or self._answer_due is not None
        )

    def next_hop(self) -> Address:
        """Where this leg's in-dialog requests go (see `in_dialog_destination`)."""
        dialog = self.dialog
        if dialog is None:
            return self.destination
        return in_dialog_destination(dialog, self.destination)

    def when_ended(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call callback (at once if ended already) when the leg ends; returns a function
        that removes it. A callback rather than a task awaiting `ended`: `bridge()` waits
        on both legs of every call, and a task per wait costs more than the call's SIP."""
        if self.ended.is_set():
            callback()
            return _nothing
        self._end_callbacks.append(callback)

        def remove() -> None:
            # Not `contextlib.suppress`: Python calls from compiled code, once a call.
            try:  # noqa: SIM105
                self._end_callbacks.remove(callback)
            except ValueError:
                pass

        return remove

    def _end(self, reason: str) -> None:
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()
            if not self._bye_held:
                self._forget_dialog()
            callbacks, self._end_callbacks = self._end_callbacks, []
            for callback in callbacks:
                callback()

    def _forget_dialog(self) -> None:
        """The dialog is over for the service too: in-dialog requests now get 481."""
        if self.dialog is not None:
            self.dialog.terminate()
            self.service.forget_dialog(self.dialog.id)

    def ack_wait_over(self) -> "tuple[Request, Address] | None":
        """Our 2xx was acknowledged, or its wait timed out: a BYE may go now. Returns
        the BYE held by a hangup before this and where it goes, for the service to send."""
        self._ack_wait_over = True
        if not self._bye_held:
            return None
        self._bye_held = False
        dialog = self.dialog
        held = None
        if dialog is not None and dialog.state is DialogState.CONFIRMED:
            destination = self.next_hop()
            held = (dialog.bye(via=self._via(destination)), destination)
        self._forget_dialog()
        return held

    def on_ack(self, ack: Request) -> None:
        if self.dialog is not None:
            self.dialog.receive_request(ack)
        self.acked = True
        due = self._answer_due
        if due is not None and ack.cseq.number == due:
            self._answer_due = None
            self.service.spawn(self._answer_arrived(ack.body))

    def on_no_ack(self) -> None:
        """The peer never acknowledged our 2xx: the session SHOULD end (13.3.1.4)."""
        self.service.spawn(self.hangup("no ACK"))

    def on_stray_2xx(self, response: Response) -> None:
        """A 2xx to an INVITE of ours again (our ACK was lost): acknowledge it again
        (13.2.2.4), on either leg (the answer to B's INVITE, or to a session refresh)."""
        dialog = self.dialog
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return
        number = response.cseq.number
        owed = self._ack_owed
        if owed is not None and owed[0] == number:
            return  # its ACK carries the other side's answer, which has not come yet
        sent = self._answer_ack
        if sent is not None and sent[0] == number:
            self.service.spawn(self.service.send_outside_transaction(sent[1], self.next_hop()))
            return
        self.service.spawn(self.send_ack(response))

    async def send_ack(self, ok: Response) -> None:
        assert self.dialog is not None
        destination = self.next_hop()
        ack = self.dialog.ack(ok, headers=self._ack_credentials(ok), via=self._via(destination))
        await self.service.send_outside_transaction(ack, destination)

    def _ack_credentials(self, ok: Response) -> list[tuple[str, str]]:
        return []

    def _via(self, destination: Address | None = None) -> Via:
        to = self.destination if destination is None else destination
        return own_via(to.transport.via_token, self.service.sent_by(to), new_branch())

    def contact(self, user: str = "telportal") -> str:
        transport = self.destination.transport
        suffix = "" if transport is Transport.UDP else f";transport={transport}"
        return f"<sip:{user}@{self.service.sent_by(self.destination)}{suffix}>"

    async def hangup(self, reason: str = "hangup") -> None:
        """BYE if the session is up; the leg is ended either way."""
        dialog = self.dialog
        if self.ended.is_set() or dialog is None or dialog.state is not DialogState.CONFIRMED:
            self._end(reason)
            return
        destination = self.next_hop()
        if self._ack_owed is not None:
            # 13.2.2.4: every 2xx is acknowledged, also one whose answer never came
            # (the other side hung up first): with the session as the peer had it.
            await self.give_answer(self.last_sdp)
        bye = dialog.bye(via=self._via(destination))
        self._end(reason)
        try:
            await self.service.request(bye, destination)
        except Exception as exc:  # the peer may be gone already; the call is over anyway
            log.debug("BYE to %s failed: %s", destination, exc)

    async def on_request(self, request: Request, txn: TransactionId, source: Source) -> None:
        """An in-dialog request from the peer."""
        dialog = self.dialog
        assert dialog is not None
        rejection = dialog.receive_request(request)
        if rejection is not None:
            headers = list(rejection.headers)
            await self.service.respond(
                txn, dialog.respond(request, rejection.status, rejection.reason, headers=headers)
            )
            return
        method = request.method
        if method == "BYE":
            await self.service.respond(txn, dialog.respond(request, 200))
            # A BYE we held for the ACK is not needed any more: the peer has ended it.
            self._bye_held = False
            self._end("peer hung up")
            self._forget_dialog()
        elif method in ("INVITE", "UPDATE"):
            await self._on_session_request(request, txn, source, dialog)
        elif method in IN_DIALOG_ANSWERED:
            await self.service.respond(txn, dialog.respond(request, 200))
        else:
            # REFER, MESSAGE, NOTIFY, ...: not served in a call (8.2.1).
            await self.service.respond(
                txn, dialog.respond(request, 405, headers=[("Allow", IN_DIALOG_ALLOW)])
            )

    async def _on_session_request(
        self, request: Request, txn: TransactionId, source: Source, dialog: Dialog
    ) -> None:
        """A re-INVITE or UPDATE from the peer: a session refresh, an offer (answered by
        the partner's peer or our engine), or a re-INVITE asking for our offer."""
        agreement = negotiate_uas(request, self.service.session_policy)
        if isinstance(agreement, Rejection):
            await self.service.respond(
                txn,
                dialog.respond(
                    request, agreement.status, agreement.reason, headers=list(agreement.headers)
                ),
            )
            return
        if self._answer_due is not None and (request.body or request.method == "INVITE"):
            # Our offer (in the 2xx to its re-INVITE) waits for its answer in the
            # ACK: a new offer now crosses it (RFC 3264 4, RFC 6337 3.1).
            await self.service.respond(txn, dialog.respond(request, 491))
            return
        if request.body:
            partner = self.partner
            answer_with: Callable[[bytes], Awaitable[bytes | int]] | None = None
            if partner is not None and not partner.ended.is_set():
                answer_with = partner.offer_mid_call
            elif self.offer_answerer is not None:
                answer_with = self.offer_answerer.answer
            if answer_with is not None:
                # In a task: the other leg's peer answers through this same
                # receive loop; the engine may take a request of its own.
                self.service.spawn(self._answer_offer(request, txn, source, agreement, answer_with))
                return
        elif request.method == "INVITE":
            partner = self.partner
            if (partner is not None and not partner.ended.is_set()) or (
                self.offer_answerer is not None
            ):
                self.service.spawn(self._offer_in_2xx(request, txn, source, agreement))
                return
        # A session refresh, or an offer where nothing else takes part: the
        # session stays as it is, and the answer is what we last sent. A
        # re-INVITE without an offer gets ours in the 2xx (13.3.1.4: the 2xx MUST
        # carry one), whose answer comes in the ACK.
        body = self.last_sdp if request.body or request.method == "INVITE" else b""
        await self._accept_offer(request, txn, source, agreement, body)

    async def _accept_offer(
        self,
        request: Request,
        txn: TransactionId,
        source: Source,
        agreement: SessionTimerAgreement | None,
        body: bytes,
    ) -> None:
        """Answer a re-INVITE or UPDATE 200 with `body` (empty for an UPDATE without
        an offer), and count it as a refresh of the session."""
        dialog = self.dialog
        assert dialog is not None
        extra = list(agreement.headers) if agreement else []
        ok = dialog.respond(request, 200, body=body, headers=extra)
        if request.method == "INVITE":
            # Resent until the ACK, as the first 2xx is (13.3.1.4, for re-INVITEs
            # too): a 2xx lost on UDP would otherwise end the session at the peer.
            key = self.service.expect_ack(ok, self)
            await self.service.respond(txn, ok)
            self.service.retransmit_until_ack(ok, source, key)
        else:
            await self.service.respond(txn, ok)
        if agreement is not None and self.session_timer is not None:
            self.session_timer.refreshed(self.service.clock.monotonic(), agreement)
            if self._timer_changed is not None:
                self._timer_changed.set()

    async def _answer_offer(
        self,
        request: Request,
        txn: TransactionId,
        source: Source,
        agreement: SessionTimerAgreement | None,
        answer_with: Callable[[bytes], Awaitable[bytes | int]],
    ) -> None:
        """Our peer's mid-call offer, put to the partner's peer or to our media engine:
        its answer is ours to this peer, and its refusal our refusal (a 491 passed
        back, so that this peer retries as 14.1 says)."""
        answer = await answer_with(request.body)
        dialog = self.dialog
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return  # hung up meanwhile; the BYE's own answer ended the transaction
        if isinstance(answer, int):
            headers = [("Retry-After", "1")] if answer == 500 else []
            await self.service.respond(txn, dialog.respond(request, answer, headers=headers))
            return
        self.last_sdp = answer
        await self._accept_offer(request, txn, source, agreement, answer)

    async def _offer_in_2xx(
        self,
        request: Request,
        txn: TransactionId,
        source: Source,
        agreement: SessionTimerAgreement | None,
    ) -> None:
        """A re-INVITE without an offer (RFC 3261 14.2, RFC 3264 5): the peer asks for
        the whole session again, to resume or move it. The offer in our 2xx is the
        partner's peer's own (got by a re-INVITE without an offer of ours), or a new
        one from our media engine; the answer comes in the peer's ACK."""
        partner = self.partner
        offer: bytes | int | None
        if partner is not None and not partner.ended.is_set():
            offer = await partner.ask_offer()
        elif self.offer_answerer is not None:
            offer = await self.offer_answerer.offer()
        else:
            offer = None
        dialog = self.dialog
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return
        if isinstance(offer, int):
            headers = [("Retry-After", "1")] if offer == 500 else []
            await self.service.respond(txn, dialog.respond(request, offer, headers=headers))
            return
        if offer is not None:
            self.last_sdp = offer
        self._answer_due = request.cseq.number
        await self._accept_offer(request, txn, source, agreement, self.last_sdp)

    async def _answer_arrived(self, sdp: bytes) -> None:
        """The answer in the peer's ACK to the offer of our 2xx (`_offer_in_2xx`); an
        ACK without one (13.2.2.4 says it MUST have one) leaves the session as it was."""
        partner = self.partner
        if partner is not None:
            await partner.give_answer(sdp or partner.last_sdp)
        elif self.offer_answerer is not None and sdp:
            await self.offer_answerer.accept(sdp)

    async def ask_offer(self) -> bytes | int:
        """A re-INVITE without an offer to this leg's peer: its offer from the 2xx, or
        the status to refuse the other side's re-INVITE with (as `offer_mid_call`).
        The 2xx stays unacknowledged until `give_answer` brings the answer."""
        ok = await self._reinvite(b"")
        if isinstance(ok, int):
            return ok
        if not ok.body:  # 14.2: its 2xx MUST offer; we have nothing to pass on
            await self.send_ack(ok)
            return 488
        self._ack_owed = (ok.cseq.number, ok)
        return ok.body

    async def give_answer(self, sdp: bytes) -> None:
        """The answer to the offer `ask_offer` got: the owed ACK carries it."""
        owed = self._ack_owed
        dialog = self.dialog
        if owed is None or dialog is None:
            return
        self._ack_owed = None
        number, ok = owed
        destination = self.next_hop()
        ack = dialog.ack(ok, body=sdp, via=self._via(destination))
        self._answer_ack = (number, ack)
        self.last_sdp = sdp
        await self.service.send_outside_transaction(ack, destination)

    async def offer_mid_call(self, sdp: bytes) -> bytes | int:
        """Put `sdp` to this leg's peer in a re-INVITE (RFC 3261 14.1; RFC 7092's
        B2BUA keeps the two dialogs one session). Returns the peer's answer, or the
        status to refuse the offer with where it came from (`_reinvite`)."""
        ok = await self._reinvite(sdp)
        if isinstance(ok, int):
            return ok
        await self.send_ack(ok)
        if not ok.body:
            return 488  # a 2xx without the answer: nothing to pass on
        self.last_sdp = sdp
        return ok.body

    async def _reinvite(self, sdp: bytes) -> Response | int:
        """A re-INVITE to this leg's peer, with an offer or without: its 2xx, not yet
        acknowledged, or the status to refuse the other side's request with: 491
        while an INVITE is in progress here (glare) or the peer answered 491, 488 for
        an offer it cannot accept, 500 for anything else. A peer that does not answer
        at all, or answers 408 or 481, is gone, and this leg is hung up."""
        dialog = self.dialog
        if dialog is None or dialog.state is not DialogState.CONFIRMED or self.ended.is_set():
            return 500
        if self.offer_pending:
            return 491
        timer = self.session_timer
        # The re-INVITE refreshes this leg's session too (RFC 4028 10).
        headers = SendRefresh(timer.interval, timer.min_se).headers if timer else ()
        destination = self.next_hop()
        reinvite = dialog.reinvite(sdp, headers=headers, via=self._via(destination))
        try:
            response = await self.service.request(reinvite, destination)
        except Exception as exc:  # no answer: the peer is gone
            log.debug("re-INVITE to %s failed: %s", destination, exc)
            await self.hangup("no answer to a re-INVITE")
            return 500
        dialog.receive_response(response)
        status = response.status
        if 200 <= status < 300:
            if timer is not None:
                timer.refreshed(self.service.clock.monotonic())
            return response
        if status in (408, 481):
            await self.hangup("re-INVITE refused: the dialog is gone")
            return 500
        return status if status in (491, 488) else 488 if status == 606 else 500


# What both legs are, for the service's tables (the base class keeps its old name).
Leg = _Leg


class InboundCall(_Leg):
    """A call we received; we are its UAS."""

    def __init__(
        self,
        service: "SipService",
        request: Request,
        transaction: TransactionId,
        source: Source,
        tenant_id: str,
        caller: str,
    ) -> None:
        super().__init__(service, source)
        self.request = request
        self.transaction = transaction
        self.source = source
        self.tenant_id = tenant_id
        self.caller = caller
        self.call_id = request.call_id
        self.dialog = Dialog.from_uas(request, new_tag(), self.contact())
        self.answered = False
        self.answered_at: datetime | None = None
        # Who ended a call between phones, for its record: caller, callee or system.
        self.hangup_by: str | None = None
        # The service number this call dialled, when it dialled one.
        self.number_route: NumberRoute | None = None
        # When the number serves several enterprises the caller chooses among these.
        self.number_choices: list[NumberRoute] = []
        # The trunk it came in by, when a trusted trunk sent it (it holds a channel).
        self.trunk: SipTrunk | None = None
        # RFC 4028, agreed when the INVITE arrived and applied to our 2xx.
        self.timer_agreement: SessionTimerAgreement | None = None
        self._final_sent = False
        service.track_dialog(self.dialog.id, self)

    @property
    def offer(self) -> bytes:
        return self.request.body

    def relayed_max_forwards(self) -> int:
        """Max-Forwards for a request this call makes us send on (a B leg, a transfer):
        the caller's less one (RFC 7332: a B2BUA passes loops on to be counted down);
        below 0 the call must not be sent on (483). 70 for a caller that sent none."""
        received = self.request.max_forwards
        return DEFAULT_MAX_FORWARDS if received is None else received - 1

    async def ringing(self, status: int = 180, sdp: bytes = b"") -> None:
        if self._final_sent:
            return
        assert self.dialog is not None
        await self.service.respond(
            self.transaction, self.dialog.respond(self.request, status, body=sdp)
        )

    async def answer(self, sdp: bytes) -> None:
        if self._final_sent:
            raise DialogError("the call has a final answer already")
        assert self.dialog is not None
        self._final_sent = True
        self.answered = True
        self.answered_at = self.service.clock.now()
        self.last_sdp = sdp
        agreement = self.timer_agreement
        headers = list(agreement.headers) if agreement else []
        ok = self.dialog.respond(self.request, 200, body=sdp, headers=headers)
        # Waited for before the 2xx goes: over TCP or WebSocket the send may yield, and
        # an ACK read meanwhile must still count.
        key = self.service.expect_ack(ok, self)
        await self.service.respond(self.transaction, ok)
        self.service.retransmit_until_ack(ok, self.source, key)
        if agreement is not None:
            self.service.spawn(self.keep_session(agreement))

    async def reject(
        self, status: int, reason: str | None = None, headers: list[tuple[str, str]] | None = None
    ) -> None:
        if self._final_sent:
            return
        assert self.dialog is not None
        self._final_sent = True
        response = self.dialog.respond(self.request, status, reason, headers=headers or [])
        await self.service.respond(self.transaction, response)
        self._end(f"rejected {status}")

    async def redirect(self, contact: str) -> None:
        await self.reject(302, headers=[("Contact", f"<{contact}>")])

    async def hangup(self, reason: str = "hangup") -> None:
        if not self._final_sent:
            await self.reject(480, "Temporarily Unavailable")
            return
        dialog = self.dialog
        if (
            self.answered
            and not self._ack_wait_over
            and not self.ended.is_set()
            and dialog is not None
            and dialog.state is DialogState.CONFIRMED
        ):
            # "The callee's UA MUST NOT send a BYE on a confirmed dialog until it has
            # received an ACK for its 2xx response or until the server transaction
            # times out" (RFC 3261 15). Sent at once, a BYE can overtake a 2xx that was
            # lost and is being resent, and the caller sees a BYE for a call it has not
            # seen answered. The call ends for us now; the BYE waits for `ack_wait_over`,
            # and the dialog stays known until then.
            self._bye_held = True
            self._end(reason)
            return
        await super().hangup(reason)

    async def on_request(self, request: Request, txn: TransactionId, source: Source) -> None:
        early = not self._final_sent
        await super().on_request(request, txn, source)
        if early and request.method == "BYE" and self.ended.is_set() and not self._final_sent:
            # The caller ended the early dialog (15): the INVITE still gets its final
            # answer, 487 as 15.1.2 recommends, or its transaction would wait forever.
            self._final_sent = True
            assert self.dialog is not None
            await self.service.respond(
                self.transaction, self.dialog.respond(self.request, 487, "Request Terminated")
            )

    async def on_cancel(self, cancel_txn: TransactionId) -> None:
        assert self.dialog is not None
        await self.service.accept_cancel(cancel_txn, self.dialog.id.local_tag)
        if self._final_sent:
            return  # answered (or refused) already: a CANCEL changes nothing (9.2)
        self._final_sent = True
        self._end("cancelled")


ProvisionalHandler = Callable[[Response], Awaitable[None]]


class OutboundLeg(_Leg):
    """A call we place; we are its UAC."""

    def __init__(
        self,
        service: "SipService",
        target: str,
        destination: Address,
        *,
        caller: str,
        caller_name: str | None = None,
        to: str | None = None,
        credentials: Credentials | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        max_forwards: int = DEFAULT_MAX_FORWARDS,
    ) -> None:
        super().__init__(service, destination)
        self.target = target
        self.max_forwards = max_forwards
        self.extra_headers = extra_headers
        self.caller = caller
        self.caller_name = caller_name
        self.to = to or target
        self.credentials = credentials
        self.call_id = new_call_id()
        self.local_tag = new_tag()
        self.invite: Request | None = None
        self.final: Response | None = None
        self._txn: TransactionId | None = None
        self._cseq = 0
        self._cancelled = False
        # A server to find by DNS before the INVITE goes (RFC 3263): the target's
        # (host, port or None, transport); `destination` then becomes the first found.
        self.server: tuple[str, int | None, Transport] | None = None
        # The servers found after `destination`, tried in turn when it does not
        # answer at all or answers 503 (RFC 3263 4.3).
        self.alternatives: list[Address] = []
        self._unanswered = False  # the last attempt timed out or could not be sent
        # INVITEs given up on for the next server, by CSeq, with where they went: a
        # 2xx one of them sends after all is acknowledged and ended (`end_fork`).
        self._abandoned: dict[int, tuple[Request, Address]] = {}
        # To tags of forked answers acknowledged and ended (`end_fork`).
        self._forks: set[str] = set()

    def _build_invite(self, sdp: bytes, auth: tuple[str, str] | None = None) -> Request:
        self._cseq += 1
        display = f'"{self.caller_name}" ' if self.caller_name else ""
        headers = Headers()
        headers.add("Via", str(self._via()))
        headers.add("Max-Forwards", str(self.max_forwards))
        headers.add(
            "From",
            f"{display}<sip:{self.caller}@{self.service.sent_by(self.destination)}>;tag={self.local_tag}",
        )
        headers.add("To", f"<{self.to}>")
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self._cseq} INVITE")
        headers.add("Contact", self.contact())
        headers.add("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO")
        headers.add("User-Agent", self.service.user_agent)
        for name, value in self.extra_headers:
            headers.add(name, value)
        if auth is not None:
            headers.add(*auth)
        if sdp:
            headers.add("Content-Type", SDP)
        return Request("INVITE", parse_uri(self.target), headers, sdp)

    async def dial(self, sdp: bytes, on_provisional: ProvisionalHandler | None = None) -> Response:
        """Send the INVITE; returns the final response (2xx acknowledged already)."""
        self.last_sdp = sdp
        if self.server is not None:
            nowhere = await self._locate(sdp, self.server)
            if nowhere is not None:
                return nowhere
        request = self._build_invite(sdp)
        if self._cancelled:  # given up while DNS was asked: the INVITE never goes
            self.final = make_response(request, 487, "Request Terminated")
            self._end("cancelled")
            return self.final
        challenged = False  # one more try with credentials, per server
        while True:
            response = await self._attempt(request, on_provisional)
            if (
                response.status in (401, 407)
                and self.credentials
                and not challenged
                and not self.ended.is_set()
            ):
                header = "WWW-Authenticate" if response.status == 401 else "Proxy-Authenticate"
                challenge = response.headers.get(header)
                if challenge is not None:
                    try:
                        answer = self.credentials.answer(
                            challenge, "INVITE", self.target, secrets.token_hex(8), 1
                        )
                    except DigestError as exc:
                        log.warning("cannot answer %s's challenge: %s", self.target, exc)
                        break
                    name = "Authorization" if response.status == 401 else "Proxy-Authorization"
                    request = self._build_invite(sdp, (name, answer))
                    challenged = True
                    continue
            if self._next_server(response):
                request = self._build_invite(sdp)
                challenged = False
                continue
            break
        self.final = response
        if 200 <= response.status < 300:
            self.dialog = Dialog.from_uac(request, response)
            self.service.track_dialog(self.dialog.id, self)
            await self.send_ack(response)
            if self.ended.is_set():  # given up before its CANCEL could go: end it
                await self._bye_unwanted(self.dialog)
        else:
            self._end("cancelled" if self._cancelled else f"failed {response.status}")
        return response

    async def _locate(
        self, sdp: bytes, server: tuple[str, int | None, Transport]
    ) -> Response | None:
        """Find the target's servers by DNS: None when found (`destination` is the
        first), else the local 503 the call ends with."""
        host, port, transport = server
        try:
            found = await self.service.locate(host, port, transport)
        except NoRoute as exc:
            log.warning("call to %s not placed: %s", self.target, exc)
            failed = make_response(self._build_invite(sdp), 503, "No Server Found")
            self.final = failed
            self._end("failed 503")
            return failed
        self.destination = found[0]
        self.alternatives = found[1:]
        return None

    async def _bye_unwanted(self, dialog: Dialog) -> None:
        """A session that answered a leg already given up on: acknowledged (by the
        caller), then ended at once."""
        destination = self.next_hop()
        bye = dialog.bye(via=self._via(destination))
        self._forget_dialog()
        try:
            await self.service.request(bye, destination)
        except Exception as exc:  # the peer may be gone already
            log.debug("BYE to %s failed: %s", destination, exc)

    def _next_server(self, response: Response) -> bool:
        """Move on to the next server DNS gave, when this one did not answer at all or
        answered 503 (RFC 3263 4.3) and the call is still wanted."""
        if not self.alternatives or self._cancelled or self.ended.is_set():
            return False
        if not (self._unanswered or response.status == 503):
            return False
        failed = self.destination
        invite = self.invite
        if invite is not None:  # a 2xx it sends after all is ended (`end_fork`)
            self._abandoned[invite.cseq.number] = (invite, failed)
        if self._unanswered:
            self.service.server_down(failed)
        self.destination = self.alternatives.pop(0)
        why = "no answer" if self._unanswered else "503"
        log.info("call to %s: %s from %s, trying %s", self.target, why, failed, self.destination)
        return True

    async def _attempt(
        self, request: Request, on_provisional: ProvisionalHandler | None
    ) -> Response:
        self.invite = request
        self._unanswered = False
        responses: asyncio.Queue[Response | None] = asyncio.Queue()
        self.service.note_uac(self)
        txn = await self.service.start_client(request, self.destination, responses)
        self._txn = txn
        if self._cancelled:  # given up while the request was being sent
            await self.service.cancel_client(txn)
        # With another server to try, one that sends nothing at all, not even 100
        # Trying, for `failover_after` seconds is passed over without waiting for
        # Timer B (32 s): RFC 3263 4.3 leaves the timeout to us, and a live server
        # answers 100 within a round trip.
        patience = self.service.failover_after if self.alternatives else None
        try:
            while True:
                if patience is None:
                    response = await responses.get()
                else:
                    try:
                        response = await asyncio.wait_for(responses.get(), patience)
                    except TimeoutError:
                        response = None
                        await self.service.cancel_client(txn)  # once it answers (9.1)
                    patience = None
                if response is None:  # Timer B, or the request could not be sent
                    self._unanswered = True
                    return make_response(request, 408, "Request Timeout")
                if response.status < 200:
                    if on_provisional is not None and response.status > 100:
                        await on_provisional(response)
                    continue
                return response
        finally:
            self.service.stop_client(self._txn)

    def _forget_dialog(self) -> None:
        super()._forget_dialog()
        self.service.forget_uac(self)

    def _ack_credentials(self, ok: Response) -> list[tuple[str, str]]:
        # "The ACK MUST contain the same credentials as the INVITE" (13.2.2.4): those
        # of our first INVITE, not of a session refresh (which carries none).
        invite = self.invite
        if invite is None or ok.cseq.number != invite.cseq.number:
            return []
        return [
            (name, value)
            for name in ("Authorization", "Proxy-Authorization")
            for value in invite.headers.get_all(name)
        ]

    async def cancel(self) -> None:
        """Give up the call. While the INVITE waits for its answer this only sends the
        CANCEL: the leg ends when the 487 comes, and a 2xx that crossed the CANCEL (9.2:
        the CANCEL then changes nothing) leaves it answered, for the caller to hang up
        with a BYE (13.2.2.4), as `dial`'s callers do."""
        self._cancelled = True  # also stops a dial still locating or failing over
        if self._txn is not None and self.final is None:
            await self.service.cancel_client(self._txn)
            return
        self._end("cancelled")

    async def end_fork(self, response: Response) -> None:
        """A 2xx from another branch of a forked INVITE (13.2.2.4): its dialog is
        acknowledged and ended at once with a BYE; this leg keeps its own."""
        invite = self.invite
        flow = self.destination
        tag = response.to.tag
        if invite is not None and response.cseq.number != invite.cseq.number:
            # A server passed over for the next one (`_next_server`) answering after all.
            abandoned = self._abandoned.get(response.cseq.number)
            invite, flow = (None, flow) if abandoned is None else abandoned
        if invite is None or tag is None:
            return
        fork = Dialog.from_uac(invite, response)
        destination = in_dialog_destination(fork, flow)
        via = self._via(destination)
        ack = fork.ack(response, headers=self._ack_credentials(response), via=via)
        await self.service.send_outside_transaction(ack, destination)
        if tag in self._forks:
            return  # its 2xx again: the ACK was lost, the BYE is on its way
        self._forks.add(tag)
        bye = fork.bye(via=self._via(destination))
        fork.terminate()
        try:
            await self.service.request(bye, destination)
        except Exception as exc:  # the other branch may be gone already
            log.debug("BYE to a forked answer from %s failed: %s", destination, exc)


# Final answers from B passed on to A; anything else becomes the nearest general answer.
_RELAYED = {404: 480, 408: 480, 480: 480, 486: 486, 487: 487, 600: 600, 603: 603}


async def bridge(
    a: InboundCall,
    b: OutboundLeg,
    *,
    media: MediaAnchor | None = None,
    ring_timeout: float = 60.0,
) -> str:
    """Connect A to B: ring, answer, then hold both until either side hangs up.

    Returns why the call ended. A's CANCEL cancels B; B's failure rejects A.
    One task (B's dial) per call: the waits for either side are callbacks on one future.
    """
    media = media or PassThroughMedia()

    async def relay_ringing(response: Response) -> None:
        await a.ringing(180 if response.status == 180 else 183 if response.body else 180)

    dial = asyncio.create_task(b.dial(media.offer_to_b(a.offer), relay_ringing))
    # Not `finally`: a compiled coroutine must not await there (decision 0028).
    try:
        reason = await _connect(a, b, media, dial, ring_timeout)
    except BaseException:
        await _settle_dial(dial)
        raise
    await _settle_dial(dial)
    return reason


async def _connect(
    a: InboundCall,
    b: OutboundLeg,
    media: MediaAnchor,
    dial: "asyncio.Task[Response]",
    ring_timeout: float,
) -> str:
    await _first_of(dial, (a,), ring_timeout)
    if not dial.done():
        await b.cancel()
        final = await dial  # the 487 (or a 2xx that crossed the CANCEL)
        if 200 <= final.status < 300:
            await b.hangup("caller gone")
        if not a.ended.is_set():
            await a.reject(480, "No Answer")
        return a.end_reason or "no answer"
    final = dial.result()
    if not 200 <= final.status < 300:
        status = final.status if final.status in _RELAYED else (486 if final.status == 486 else 480)
        await a.reject(_RELAYED.get(status, status))
        return f"callee answered {final.status}"
    if a.ended.is_set():
        await b.hangup("caller gone")
        return "caller gone"
    await a.answer(media.answer_to_a(final.body))
    if isinstance(media, PassThroughMedia):
        # Each leg's mid-call offers go to the other (`_Leg.offer_mid_call`); cleared
        # again below, not left as a cycle for the collector.
        a.partner, b.partner = b, a
    try:
        await _first_of(None, (a, b), None)
    finally:
        a.partner = b.partner = None
    if a.ended.is_set():
        await b.hangup("caller hung up")
        return "caller hung up"
    await a.hangup("callee hung up")
    return "callee hung up"


async def _settle_dial(dial: "asyncio.Task[Response]") -> None:
    if not dial.done():
        dial.cancel()
        await asyncio.gather(dial, return_exceptions=True)
    elif not dial.cancelled():
        dial.exception()  # retrieved: an error is the caller's to see through dial.result()


async def _first_of(
    task: "asyncio.Task[Response] | None", legs: tuple[_Leg, ...], seconds: float | None
) -> None:
    """Return once task is done, one of legs has ended, or after seconds (None: never)."""
    if (task is not None and task.done()) or any(leg.ended.is_set() for leg in legs):
        return
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(*_: object) -> None:
        if not woken.done():
            woken.set_result(None)

    removers = [leg.when_ended(wake) for leg in legs]
    if task is not None:
        task.add_done_callback(wake)
    timer = loop.call_later(seconds, wake) if seconds is not None else None
    try:
        await woken
    finally:
        for remove in removers:
            remove()
        if task is not None:
            task.remove_done_callback(wake)
        if timer is not None:
            timer.cancel()


def _nothing() -> None:
    pass


def in_dialog_destination(dialog: Dialog, flow: Address) -> Address:
    """Where a request within `dialog` is sent: to the dialog's next hop (its first
    route, else the peer's Contact: RFC 3261 12.2.1.1, 8.1.2), except where that
    would lose a peer the dialog's own flow reaches (decision 0032). `flow` is where
    the dialog began: the address its INVITE came from, or the one ours went to.

    The flow is kept over TCP, TLS and WebSocket (the connection is reused, RFC 5923;
    a WebSocket client has no other address, RFC 7118); for a sips: or non-UDP next
    hop; for one named by a domain name (this layer does no RFC 3263 lookups); and
    for a private (non-global) address on another host than the flow's, which is a
    peer behind NAT writing an address only its own network can reach.
    """
    uri = dialog.next_hop
    if (
        flow.transport is not Transport.UDP
        or not isinstance(uri, SipUri)
        or uri.scheme.lower() != "sip"
        or (uri.transport or "udp").lower() != "udp"
    ):
        return flow
    ip = ip_literal(uri.host)
    port = uri.port or 5060
    if ip is not None and same_host(uri.host, flow.host):
        return flow if port == flow.port else Peer(Transport.UDP, flow.host, port)
    if ip is None or not ip.is_global:
        return flow
    return Peer(Transport.UDP, str(ip), port)


def phone_destination(contact: str, source: Source) -> Address:
    """Where to send a request for a registered phone.

    Over TCP, TLS and WebSocket: the phone's own connection. Over UDP: the address
    its REGISTER came from when the Contact names another host (the phone is
    behind NAT and its Contact is a private address), else the Contact's port on
    that host (a phone on our network that registers from one port and listens
    on another, or registers on behalf of a device beside it).
    """
    if source.transport.reliable:
        return source
    try:
        uri = parse_uri(contact)
    except SipParseError:
        return source
    if isinstance(uri, SipUri) and uri.host.strip("[]") == source.host and uri.port:
        return Peer(Transport.UDP, source.host, uri.port)
    return source


__all__ = [
    "Credentials",
    "DialogId",
    "InboundCall",
    "Leg",
    "MediaAnchor",
    "OutboundLeg",
    "PassThroughMedia",
    "bridge",
    "in_dialog_destination",
    "phone_destination",
]
