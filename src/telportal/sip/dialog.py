"""SIP dialogs (RFC 3261 sections 12, 13.2.2.4, 14, 15; RFC 3311 UPDATE), sans-IO.

A `Dialog` is the state two user agents share from a dialog-creating INVITE to its BYE:
the dialog ID (Call-ID, local tag, remote tag), both sequence numbers, the local and
remote URIs, the remote target (the peer's Contact) and the route set (Record-Route).
It builds the requests we send in the dialog and judges the requests we receive; it
sends nothing itself and reads no clock. Building a message commits it: `request()`
consumes a sequence number and `respond()` confirms or ends the dialog, so build only
what will be handed to the transaction layer. A fresh Via (new branch) is the
transaction layer's business; builders take one (`via=`, see `make_via`) if the caller
already has it.

Dialog states (12.1, 12.3, 13.2.2.4, 15):

    state       event                                                      next
    ----------  ---------------------------------------------------------  ----------
    (new)       UAC: 101-199 with a To tag to our request (from_uac)       early
    (new)       UAC: 2xx to our request (from_uac)                         confirmed
    (new)       UAS: request received, our To tag chosen (from_uas)        early
    early       2xx to the initial request received (UAC) or sent (UAS)    confirmed
    early       non-2xx final response to the initial request              terminated
    any         BYE sent or received                                       terminated
    any         481 or 408 to a request we sent in the dialog (12.2.1.2)   terminated
    terminated  requests received are answered 481; only BYE may be built  terminated

On the UAC the 2xx that confirms an early dialog also recomputes its route set and
remote target (13.2.2.4). The UAS must not send BYE on an early dialog (15).

Sequence numbers (12.2.1.1, 12.2.2, 13.2.2.4, 9.1):

    message                 CSeq number
    ----------------------  ------------------------------------------------------
    request we send         local seq + 1 (1 for the UAS's first request)
    ACK to a 2xx (ack())    the number of the INVITE it acknowledges; no increment
    CANCEL (make_cancel())  the number of the request it cancels; not in the dialog
    request we receive      lower than the remote seq: answer 500, nothing changes;
                            otherwise the remote seq becomes its number. ACK and
                            CANCEL are never checked.

Route set and Request-URI (12.1.1, 12.1.2, 12.2.1.1): the UAC takes the Record-Route of
the response in reverse order, the UAS the Record-Route of the request in order. With
an empty route set the Request-URI is the remote target. If the first route is a loose
router (`;lr`) the Request-URI is the remote target and the route set becomes the Route
header. Otherwise (a strict router, RFC 2543) the Request-URI is the first route,
stripped of parameters a Request-URI may not carry, and the Route header holds the
other routes followed by the remote target.

Target refresh (12.2, RFC 6141): INVITE, UPDATE, SUBSCRIBE, NOTIFY and REFER carry our
Contact; the peer's Contact in such a request replaces the remote target when we
answer it 2xx (with `respond`), and the Contact of a 2xx to ours when we receive it.
A refresh that fails leaves the old target.

Glare (14.1, 14.2; RFC 3311 5.2): at most one INVITE transaction at a time per dialog
and at most one offer outstanding in either direction:

    we receive              while                                       answer
    ----------------------  ------------------------------------------  ----------------
    INVITE                  an INVITE we received is not answered yet   500 Retry-After
    INVITE                  our INVITE, or an offer of ours, is pending  491
    UPDATE with a body      an offer of ours is pending                 491
    UPDATE with a body      an offer we received is not answered yet    500 Retry-After

An offer is pending from its request until the final response to it, or a reliable
provisional response (RFC 3262: Require: 100rel) with a body, which carries the answer.
Retry-After is 0-10 s, drawn from the dialog's random source. The side that receives
491 retries after `glare_retry_delay()`: 2.1-4 s if it owns the Call-ID (it sent the
dialog-creating request), else 0-2 s, in steps of 10 ms. Building an INVITE (or an
UPDATE with a body) while such a transaction is pending raises `DialogError`.
"""

import dataclasses
from collections.abc import Iterable, Iterator
from enum import Enum
from random import SystemRandom
from typing import Final, NamedTuple, Protocol, final

from telportal.sip.address import Address, parse_address
from telportal.sip.cseq import MAX_SEQUENCE_NUMBER, CSeq
from telportal.sip.errors import SipParseError
from telportal.sip.headers import Headers, checked_line
from telportal.sip.message import Request, Response, make_response
from telportal.sip.methods import (
    ACK,
    BYE,
    CANCEL,
    INVITE,
    KNOWN_METHODS,
    NOTIFY,
    OPTIONS,
    REFER,
    SUBSCRIBE,
    UPDATE,
)
from telportal.sip.status import reason_phrase
from telportal.sip.uri import SipUri, Uri
from telportal.sip.validate import Rejection
from telportal.sip.via import Via, own_via, parse_via

DEFAULT_MAX_FORWARDS: Final = 70
_Line = tuple[str, str, str]  # (key, name, value), as Headers.trusted takes them
_AddressLines = tuple[tuple[Address, Address, Address | None], tuple[_Line, _Line, _Line | None]]
# Stateless (it reads the operating system's generator): one is enough for every dialog.
_SYSTEM_RANDOM: Final = SystemRandom()
_MAX_FORWARDS: Final = str(DEFAULT_MAX_FORWARDS)
TARGET_REFRESH_METHODS: Final = frozenset({INVITE, UPDATE, SUBSCRIBE, NOTIFY, REFER})
SDP: Final = "application/sdp"

# 14.2 and RFC 3311 5.2: the Retry-After of a 500 refusing an overlapping offer.
MAX_OVERLAP_RETRY_AFTER: Final = 10
# 14.1: glare retry windows, in units of 10 ms.
_OWNER_RETRY_CENTISECONDS: Final = (210, 400)
_OTHER_RETRY_CENTISECONDS: Final = (0, 200)
# 19.1.1: URI parameters and components not allowed in a Request-URI.
_NOT_IN_REQUEST_URI: Final = ("method",)


class RandomSource(Protocol):
    """What the dialog layer draws from; `random.Random(seed)` in tests."""

    def getrandbits(self, k: int, /) -> int: ...

    def randint(self, a: int, b: int, /) -> int: ...


class DialogError(ValueError):
    """The caller asked for something the dialog rules forbid, or passed a message that
    is not part of the dialog: a programming error, never the peer's fault."""


class DialogState(Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Role(Enum):
    """Our side of the dialog-creating request."""

    UAC = "uac"
    UAS = "uas"


class DialogId(NamedTuple):
    """Call-ID and tags, seen from our side; a missing tag (RFC 2543 peer) is "".

    A named tuple: the key the dialogs of a user agent are found by, message by message.
    """

    call_id: str
    local_tag: str
    remote_tag: str

    def reversed(self) -> "DialogId":
        """The same dialog as the peer sees it."""
        return _dialog_id(self.call_id, self.remote_tag, self.local_tag)


# A named tuple's own constructor is Python code; tuple.__new__ makes the same tuple
# in C (as `transaction._txn_id` does). A dialog id is made for every in-dialog message.
_new_tuple: Final = tuple.__new__


def _dialog_id(call_id: str, local_tag: str, remote_tag: str) -> DialogId:
    return _new_tuple(DialogId, (call_id, local_tag, remote_tag))


def new_tag(rng: RandomSource | None = None) -> str:
    """A From/To tag with 64 random bits (19.3 asks for at least 32)."""
    source = SystemRandom() if rng is None else rng
    return f"{source.getrandbits(64):016x}"


def make_via(sent_by: str, branch: str, *, transport: str = "UDP", rport: bool = True) -> Via:
    """A Via for a request we send: `SIP/2.0/UDP host:port;branch=...;rport`."""
    return own_via(transport, sent_by, branch, rport=rport)


def glare_retry_delay(owns_call_id: bool, rng: RandomSource) -> float:
    """Seconds to wait before retrying a re-INVITE refused with 491 (14.1)."""
    low, high = _OWNER_RETRY_CENTISECONDS if owns_call_id else _OTHER_RETRY_CENTISECONDS
    return rng.randint(low, high) / 100


def request_dialog_id(request: Request) -> DialogId | None:
    """The ID of the dialog a request we received belongs to; None without a To tag."""
    to_tag = request.to.tag
    if to_tag is None:
        return None
    return _dialog_id(request.call_id, to_tag, request.from_.tag or "")


def response_dialog_id(response: Response) -> DialogId | None:
    """The ID of the dialog a response to our request belongs to; None without a To tag."""
    to_tag = response.to.tag
    if to_tag is None:
        return None
    return _dialog_id(response.call_id, response.from_.tag or "", to_tag)


def make_cancel(request: Request) -> Request:
    """CANCEL for a request we sent (9.1): same Request-URI, Call-ID, From, To, top Via,
    Route and CSeq number. It is not part of any dialog and uses no sequence number."""
    vias = request.headers.get_all("Via")
    if not vias:
        raise SipParseError("Via header: missing")
    headers = Headers([("Via", vias[0]), ("Max-Forwards", str(DEFAULT_MAX_FORWARDS))])
    for route in request.headers.get_all("Route"):
        headers.add("Route", route)
    for name in ("From", "To", "Call-ID"):
        value = request.headers.get(name)
        if value is None:
            raise SipParseError(f"{name} header: missing")
        headers.add(name, value)
    headers.add("CSeq", str(CSeq(request.cseq.number, CANCEL)))
    return Request(CANCEL, request.uri, headers)


@final
class Dialog:
    """One dialog, from our side. Create it with `from_uac` or `from_uas`.

    The attributes are the dialog state of RFC 3261 12; read them, do not assign them,
    except `local_contact`, which the next target refresh request (or 2xx) announces.
    """

    def __init__(
        self,
        *,
        dialog_id: DialogId,
        role: Role,
        state: DialogState,
        local: Address,
        remote: Address,
        remote_target: Uri,
        route_set: Iterable[Address],
        local_seq: int | None,
        remote_seq: int | None,
        local_contact: Address | None,
        secure: bool,
        initial: CSeq,
        rng: RandomSource | None = None,
    ) -> None:
        self.id = dialog_id
        self.role = role
        self.state = state
        self.local = local
        self.remote = remote
        self.remote_target = remote_target
        self.route_set: tuple[Address, ...] = tuple(route_set)
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.local_contact = local_contact
        self.secure = secure
        self.rng: RandomSource = _SYSTEM_RANDOM if rng is None else rng
        # The CSeq of the dialog-creating request: its responses confirm or end the dialog.
        self._initial = initial
        # CSeq numbers of pending transactions, for glare (14.1, 14.2, RFC 3311 5.2).
        self._invite_out: int | None = None
        self._offer_out: int | None = None
        self._invite_in: int | None = None
        self._offer_in: int | None = None
        self._ack_pending: int | None = None
        # A target refresh we received: (CSeq, new target), applied when we answer 2xx.
        self._pending_target: tuple[int, Uri] | None = None
        # From, To and Contact lines as written for local, remote and local_contact,
        # kept with what they were written from (every request and 2xx carries them).
        self._lines: _AddressLines | None = None

    # -- creation ---------------------------------------------------------------------

    @classmethod
    def from_uac(
        cls, request: Request, response: Response, *, rng: RandomSource | None = None
    ) -> "Dialog":
        """The dialog a response to our request creates (12.1.2): early for 101-199 with
        a To tag, confirmed for 2xx. A response without Contact (some 180s) leaves the
        Request-URI as remote target until one arrives."""
        to_tag = response.to.tag
        if not 101 <= response.status <= 299 or to_tag is None:
            raise DialogError(f"a {response.status} without To tag creates no dialog")
        if response.call_id != request.call_id or response.cseq != request.cseq:
            raise DialogError("the response does not answer this request")
        local = request.from_
        if local.tag is None:
            raise DialogError("our request has no From tag")
        dialog = Dialog(
            dialog_id=_dialog_id(request.call_id, local.tag, to_tag),
            role=Role.UAC,
            state=DialogState.EARLY if response.status < 200 else DialogState.CONFIRMED,
            local=local,
            remote=response.to,
            remote_target=_contact_uri(response) or request.uri,
            route_set=reversed(response.record_routes),
            local_seq=request.cseq.number,
            remote_seq=None,
            local_contact=_first_contact(request),
            secure=_is_sips(request.uri),
            initial=request.cseq,
            rng=rng,
        )
        if response.status < 200 and request.method == INVITE:
            dialog._invite_out = request.cseq.number
            if request.body and not _reliable_answer(response):
                dialog._offer_out = request.cseq.number
        return dialog

    @classmethod
    def from_uas(
        cls,
        request: Request,
        local_tag: str,
        local_contact: Address | str,
        *,
        rng: RandomSource | None = None,
    ) -> "Dialog":
        """The dialog we create by answering request with To tag local_tag (12.1.1).

        It is early until `respond` sends a 2xx to the request, terminated if it sends
        another final response. Raises SipParseError when the request has no Contact.
        """
        if request.to.tag is not None:
            raise DialogError("a request with a To tag is already inside a dialog")
        remote_target = _contact_uri(request)
        if remote_target is None:
            raise SipParseError("Contact header: missing in a dialog-creating request")
        if isinstance(local_contact, str):
            local_contact = parse_address(local_contact, context="local Contact")
        remote = request.from_
        dialog = Dialog(
            dialog_id=_dialog_id(request.call_id, local_tag, remote.tag or ""),
            role=Role.UAS,
            state=DialogState.EARLY,
            local=request.to.with_tag(local_tag),
            remote=remote,
            remote_target=remote_target,
            route_set=request.record_routes,
            local_seq=None,
            remote_seq=request.cseq.number,
            local_contact=local_contact,
            secure=_is_sips(request.uri),
            initial=request.cseq,
            rng=rng,
        )
        if request.method == INVITE:
            dialog._invite_in = request.cseq.number
        if request.body and request.method in (INVITE, UPDATE):
            dialog._offer_in = request.cseq.number
        return dialog

    # -- views --------------------------------------------------------------------------

    @property
    def local_uri(self) -> Uri:
        return self.local.uri

    @property
    def remote_uri(self) -> Uri:
        return self.remote.uri

    @property
    def owns_call_id(self) -> bool:
        """We chose the Call-ID: we sent the dialog-creating request."""
        return self.role is Role.UAC

    @property
    def awaiting_ack(self) -> bool:
        """We answered an INVITE 2xx and its ACK has not arrived (13.3.1.4, 15)."""
        return self._ack_pending is not None

    @property
    def invite_pending(self) -> bool:
        """An INVITE transaction is in progress in either direction (14.1)."""
        return (
            self._invite_out is not None
            or self._invite_in is not None
            or self._ack_pending is not None
        )

    @property
    def next_hop(self) -> Uri:
        """The URI this dialog's requests are sent toward (8.1.2, 12.2.1.1): the first
        entry of the route set, loose or strict, else the remote target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def glare_retry_delay(self) -> float:
        """Seconds before retrying our re-INVITE after a 491, from this dialog's rng."""
        return glare_retry_delay(self.owns_call_id, self.rng)

    def terminate(self) -> None:
        """End the dialog without a message, e.g. when a request in it timed out."""
        self.state = DialogState.TERMINATED

    def __repr__(self) -> str:
        return f"Dialog({self.id!r}, {self.role.value}, {self.state.value})"

    # -- requests we send ----------------------------------------------------------------

    def request(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str = SDP,
        headers: Iterable[tuple[str, str]] = (),
        via: Via | str | None = None,
    ) -> Request:
        """A request in this dialog (12.2.1.1) with the next local sequence number."""
        if method in (ACK, CANCEL):
            raise DialogError(f"{method} is built with {'ack' if method == ACK else 'make_cancel'}")
        if self.state is DialogState.TERMINATED and method != BYE:
            raise DialogError(f"cannot send {method}: the dialog is terminated")
        if method == INVITE and self.invite_pending:
            raise DialogError("cannot send INVITE: an INVITE transaction is in progress (14.1)")
        offer = bool(body) and method in (INVITE, UPDATE)
        if offer and (self._offer_out is not None or self._offer_in is not None):
            raise DialogError(f"cannot send {method} with an offer: an offer is outstanding")
        seq = 1 if self.local_seq is None else self.local_seq + 1
        if seq > MAX_SEQUENCE_NUMBER:
            raise DialogError("the local sequence number is exhausted")
        request = self._build(method, seq, body, content_type, headers, via)
        self.local_seq = seq
        if method == INVITE:
            self._invite_out = seq
        if offer:
            self._offer_out = seq
        if method == BYE:
            self.state = DialogState.TERMINATED
        return request

    def reinvite(
        self,
        body: bytes = b"",
        *,
        content_type: str = SDP,
        headers: Iterable[tuple[str, str]] = (),
        via: Via | str | None = None,
    ) -> Request:
        """A re-INVITE (14.1): hold, resume or another media change when body is an SDP
        offer; without body the peer makes the offer in its 2xx. Also a session refresh."""
        return self.request(INVITE, body=body, content_type=content_type, headers=headers, via=via)

    def update(
        self,
        body: bytes = b"",
        *,
        content_type: str = SDP,
        headers: Iterable[tuple[str, str]] = (),
        via: Via | str | None = None,
    ) -> Request:
        """An UPDATE (RFC 3311): a media change without a new INVITE, allowed in early
        dialogs too; without body it only refreshes the target or the session timer."""
        return self.request(UPDATE, body=body, content_type=content_type, headers=headers, via=via)

    def options(
        self, *, headers: Iterable[tuple[str, str]] = (), via: Via | str | None = None
    ) -> Request:
        """An in-dialog OPTIONS, the usual keep-alive probe of a peer."""
        return self.request(OPTIONS, headers=headers, via=via)

    def bye(
        self, *, headers: Iterable[tuple[str, str]] = (), via: Via | str | None = None
    ) -> Request:
        """BYE (15.1.1): the session ends as soon as it is built. A BYE challenged with
        401/407 may be built again (with credentials in headers)."""
        if self.role is Role.UAS and self.state is DialogState.EARLY:
            raise DialogError("the UAS must not send BYE on an early dialog (15)")
        return self.request(BYE, headers=headers, via=via)

    def ack(
        self,
        response: Response,
        *,
        body: bytes = b"",
        content_type: str = SDP,
        headers: Iterable[tuple[str, str]] = (),
        via: Via | str | None = None,
    ) -> Request:
        """The ACK for a 2xx to our INVITE (13.2.2.4), a transaction of its own: the
        INVITE's CSeq number, no new sequence number. Pass the INVITE's credentials in
        headers, and the SDP answer in body when the 2xx carried the offer. Send the
        same ACK again for each retransmission of the 2xx."""
        if not 200 <= response.status <= 299 or response.cseq.method != INVITE:
            raise DialogError("only a 2xx to an INVITE is acknowledged by the UA core")
        self._check_response(response)
        return self._build(ACK, response.cseq.number, body, content_type, headers, via)

    def _build(
        self,
        method: str,
        seq: int,
        body: bytes,
        content_type: str,
        extra: Iterable[tuple[str, str]],
        via: Via | str | None,
    ) -> Request:
        uri, routes = self._request_uri_and_routes()
        lines: list[tuple[str, str, str]] = []
        memo: dict[str, object] = {}
        if via is not None:
            parsed = via if isinstance(via, Via) else parse_via(via)
            text = str(parsed)
            lines.append(checked_line("Via", text))
            if parsed is via or text == via:
                memo["via"] = (parsed,)  # what the Via accessors would parse from text
        lines.append(("max-forwards", "Max-Forwards", _MAX_FORWARDS))
        lines += [checked_line("Route", str(route)) for route in routes]
        from_line, to_line, contact_line = self._address_lines()
        lines.append(from_line)
        lines.append(to_line)
        lines.append(checked_line("Call-ID", self.id.call_id))
        cseq = CSeq(seq, method)
        lines.append(checked_line("CSeq", str(cseq)))
        if method in KNOWN_METHODS:
            memo["cseq"] = cseq  # what parsing "seq method" gives back
        if method in TARGET_REFRESH_METHODS and contact_line is not None:
            lines.append(contact_line)
        extra_lines = [checked_line(name, value) for name, value in extra]
        lines += extra_lines
        if body:
            lines.append(checked_line("Content-Type", content_type))
        headers = Headers.trusted(lines)
        for key, _, _ in extra_lines:
            memo.pop(key, None)  # the caller added a line of its own to that field
        headers.memo.update(memo)
        return Request(method, uri, headers, body)

    def _address_lines(self) -> tuple[_Line, _Line, _Line | None]:
        """The From, To and Contact lines of our requests (Contact None without one)."""
        written = (self.local, self.remote, self.local_contact)
        kept = self._lines
        if kept is not None and all(a is b for a, b in zip(kept[0], written, strict=True)):
            return kept[1]
        local, remote, contact = written
        lines = (
            checked_line("From", str(local)),
            checked_line("To", str(remote)),
            None if contact is None else checked_line("Contact", str(contact)),
        )
        self._lines = (written, lines)
        return lines

    def _request_uri_and_routes(self) -> tuple[Uri, list[Address]]:
        if not self.route_set:
            return self.remote_target, []
        first = self.route_set[0]
        if _is_loose(first.uri):
            return self.remote_target, list(self.route_set)
        # A strict router (12.2.1.1): it expects to find itself in the Request-URI.
        return _as_request_uri(first.uri), [*self.route_set[1:], Address(self.remote_target)]

    # -- responses to our requests ------------------------------------------------------

    def receive_response(self, response: Response) -> None:
        """Apply a response to a request we sent in (or to create) this dialog (12.2.1.2).

        After a 491 to our re-INVITE, retry after `glare_retry_delay()`.
        """
        self._check_response(response)
        if self.state is DialogState.TERMINATED:
            return
        status = response.status
        cseq = response.cseq
        initial = self.role is Role.UAC and cseq == self._initial
        if status < 200:
            if _reliable_answer(response) and cseq.number == self._offer_out:
                self._offer_out = None
            if initial and self.state is DialogState.EARLY:
                self.remote_target = _contact_uri(response) or self.remote_target
            return
        if cseq.number == self._invite_out:
            self._invite_out = None
        if cseq.number == self._offer_out:
            self._offer_out = None
        if status in (408, 481):
            self.state = DialogState.TERMINATED
        elif status >= 300:
            if initial and self.state is DialogState.EARLY:
                self.state = DialogState.TERMINATED
        elif initial and self.state is DialogState.EARLY:
            # 13.2.2.4: the 2xx confirms the dialog and recomputes its route set.
            self.state = DialogState.CONFIRMED
            self.route_set = tuple(reversed(response.record_routes))
            self.remote_target = _contact_uri(response) or self.remote_target
        elif cseq.method in TARGET_REFRESH_METHODS:
            self.remote_target = _contact_uri(response) or self.remote_target

    def _check_response(self, response: Response) -> None:
        if response_dialog_id(response) != self.id:
            raise DialogError(f"the response does not belong to {self.id}")

    # -- requests we receive ------------------------------------------------------------

    def receive_request(self, request: Request) -> Rejection | None:
        """Judge a request received in this dialog (12.2.2); None to process it.

        A rejection is the final response to send (with `respond`) instead. ACK and
        CANCEL are never rejected: neither is answered by the dialog.
        """
        self._check_request(request, initial_allowed=False)
        method = request.method
        cseq = request.cseq.number
        if method == ACK:
            if cseq == self._ack_pending:
                self._ack_pending = None
            return None
        if method == CANCEL:
            return None
        if self.state is DialogState.TERMINATED:
            return _rejection(481, f"dialog {self.id.call_id} is terminated")
        if self.remote_seq is not None and cseq < self.remote_seq:
            return _rejection(500, f"CSeq {cseq} is lower than {self.remote_seq} (out of order)")
        self.remote_seq = cseq
        rejection = self._glare(method, cseq, bool(request.body))
        if rejection is not None:
            return rejection
        if method in TARGET_REFRESH_METHODS:
            target = _contact_uri(request)
            self._pending_target = None if target is None else (cseq, target)
        if method == BYE:
            self.state = DialogState.TERMINATED
        return None

    def _glare(self, method: str, cseq: int, has_body: bool) -> Rejection | None:
        invite = method == INVITE
        offer = has_body and method in (INVITE, UPDATE)
        if invite and self._invite_in is not None:
            return self._retry_later("an INVITE is still being answered")
        if self._offer_out is not None and (invite or offer):
            return _rejection(491, "an offer of ours is pending")
        if invite and self._invite_out is not None:
            return _rejection(491, "our own INVITE is pending")
        if offer and self._offer_in is not None:
            return self._retry_later("an offer is still being answered")
        if invite:
            self._invite_in = cseq
        if offer:
            self._offer_in = cseq
        return None

    def _retry_later(self, detail: str) -> Rejection:
        seconds = self.rng.randint(0, MAX_OVERLAP_RETRY_AFTER)
        return _rejection(500, detail, ("Retry-After", str(seconds)))

    def respond(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        content_type: str = SDP,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """Our response to a request of this dialog, or to the request that creates it.

        Adds our To tag, and to a 101-299 the Record-Route of the request (12.1.1) and,
        for a target refresh request, our Contact. Answering the initial request 2xx
        confirms the dialog; another final answer to it ends an early dialog.
        """
        self._check_request(request, initial_allowed=True)
        lines: list[tuple[str, str]] = []
        if 101 <= status <= 299:
            lines += (("Record-Route", value) for value in request.headers.get_all("Record-Route"))
            contact_line = self._address_lines()[2]
            if request.method in TARGET_REFRESH_METHODS and contact_line is not None:
                lines.append((contact_line[1], contact_line[2]))
        lines += headers
        if body:
            lines.append(("Content-Type", content_type))
        response = make_response(
            request, status, reason, to_tag=self.id.local_tag, headers=lines, body=body
        )
        self._responded(request, response)
        return response

    def _responded(self, request: Request, response: Response) -> None:
        status = response.status
        cseq = request.cseq.number
        if status < 200:
            if _reliable_answer(response) and cseq == self._offer_in:
                self._offer_in = None
            return
        if request.method == INVITE and cseq == self._invite_in:
            self._invite_in = None
        if cseq == self._offer_in:
            self._offer_in = None
        initial = (
            self.role is Role.UAS
            and request.cseq == self._initial
            and self.state is DialogState.EARLY
        )
        if status >= 300:
            if initial:
                self.state = DialogState.TERMINATED
            return
        if request.method == INVITE:
            self._ack_pending = cseq
        if initial:
            self.state = DialogState.CONFIRMED
        pending = self._pending_target
        if pending is not None and pending[0] == cseq:
            self.remote_target = pending[1]
            self._pending_target = None

    def _check_request(self, request: Request, *, initial_allowed: bool) -> None:
        to_tag = request.to.tag
        initial = (
            initial_allowed
            and self.role is Role.UAS
            and to_tag is None
            and request.cseq == self._initial
        )
        if (
            request.call_id != self.id.call_id
            or (request.from_.tag or "") != self.id.remote_tag
            or (to_tag != self.id.local_tag and not initial)
        ):
            raise DialogError(f"the {request.method} does not belong to {self.id}")


class DialogSet:
    """The dialogs of a user agent, found by ID for the messages it receives.

    On the UAC side `receive_response` also creates the dialogs responses create: each
    To tag in the responses to one INVITE is one dialog (forking, 12.1.2, 13.2.2.4).
    """

    def __init__(self, *, rng: RandomSource | None = None) -> None:
        self._dialogs: dict[DialogId, Dialog] = {}
        self._rng = rng

    def add(self, dialog: Dialog) -> None:
        if dialog.id in self._dialogs:
            raise DialogError(f"{dialog.id} is already registered")
        self._dialogs[dialog.id] = dialog

    def remove(self, dialog: Dialog) -> None:
        if self._dialogs.get(dialog.id) is dialog:
            del self._dialogs[dialog.id]

    def get(self, dialog_id: DialogId) -> Dialog | None:
        return self._dialogs.get(dialog_id)

    def match_request(self, request: Request) -> Dialog | None:
        """The dialog of a request we received (Call-ID, To tag, From tag)."""
        dialog_id = request_dialog_id(request)
        return None if dialog_id is None else self._dialogs.get(dialog_id)

    def match_response(self, response: Response) -> Dialog | None:
        """The dialog of a response we received (Call-ID, From tag, To tag)."""
        dialog_id = response_dialog_id(response)
        return None if dialog_id is None else self._dialogs.get(dialog_id)

    def forks(self, call_id: str, local_tag: str) -> list[Dialog]:
        """Every dialog created by one request of ours: one per remote tag."""
        return [
            dialog
            for dialog_id, dialog in self._dialogs.items()
            if dialog_id.call_id == call_id and dialog_id.local_tag == local_tag
        ]

    def receive_response(self, request: Request, response: Response) -> Dialog | None:
        """Route a response to our request to its dialog, creating it if the response
        creates one; returns that dialog, None when there is none (a 100, a 3xx-6xx
        from a UAS that never answered 1xx).

        A non-2xx final response to a dialog-creating request ends every early dialog
        it created, whatever their To tags (12.3).
        """
        dialog = self.match_response(response)
        if dialog is not None:
            dialog.receive_response(response)
        elif 101 <= response.status <= 299 and response.to.tag is not None:
            dialog = Dialog.from_uac(request, response, rng=self._rng)
            self.add(dialog)
        if response.status >= 300:
            for fork in self.forks(response.call_id, response.from_.tag or ""):
                if fork.state is DialogState.EARLY and fork._initial == response.cseq:
                    fork.terminate()
        return dialog

    def prune(self) -> list[Dialog]:
        """Remove and return the terminated dialogs."""
        ended = [d for d in self._dialogs.values() if d.state is DialogState.TERMINATED]
        for dialog in ended:
            del self._dialogs[dialog.id]
        return ended

    def __len__(self) -> int:
        return len(self._dialogs)

    def __iter__(self) -> Iterator[Dialog]:
        return iter(list(self._dialogs.values()))

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Dialog):
            return self._dialogs.get(item.id) is item
        return item in self._dialogs


def _rejection(status: int, detail: str, *headers: tuple[str, str]) -> Rejection:
    return Rejection(status, reason_phrase(status), detail, headers)


def _first_contact(message: Request | Response) -> Address | None:
    contacts = message.contacts
    if isinstance(contacts, str) or not contacts:
        return None
    return contacts[0]


def _contact_uri(message: Request | Response) -> Uri | None:
    contact = _first_contact(message)
    return None if contact is None else contact.uri


def _reliable_answer(response: Response) -> bool:
    """A reliable provisional response (RFC 3262) with a body completes an offer."""
    return bool(response.body) and any(
        tag.lower() == "100rel" for tag in response.headers.get_all("Require")
    )


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.is_secure


def _is_loose(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and "lr" in uri.params


def _as_request_uri(uri: Uri) -> Uri:
    if not isinstance(uri, SipUri):
        return uri
    params = uri.params
    for name in _NOT_IN_REQUEST_URI:
        params = params.without(name)
    return dataclasses.replace(uri, params=params, headers=())


__all__ = [
    "DEFAULT_MAX_FORWARDS",
    "TARGET_REFRESH_METHODS",
    "Dialog",
    "DialogError",
    "DialogId",
    "DialogSet",
    "DialogState",
    "RandomSource",
    "Role",
    "glare_retry_delay",
    "make_cancel",
    "make_via",
    "new_tag",
    "request_dialog_id",
    "response_dialog_id",
]
