"""The SIP transaction layer (RFC 3261 section 17, with the RFC 6026 corrections).

Sans-IO: `TransactionLayer` owns every client and server transaction of a SIP element
and does no IO. The adapter feeds it what arrived (`receive`), the transaction user
(TU: the UA core, a proxy core) feeds it what to send (`send_request`,
`send_response`, `cancel`, `accept_cancel`), and every call returns the actions that
follow, in order: `Send` for the transport, and `Deliver`, `Stray`, `Dropped`,
`Timeout`, `TransportError`, `Terminated` for the TU. Time comes from the injected
clock; the adapter sleeps until `next_deadline()` and then calls `tick()`.

Addresses are the adapter's own type, opaque here (`TransactionLayer[Source]`): a
request goes to the destination the TU gave, a response to the source its request came
from, and the transport applies RFC 3261 18.2.2 to that. Whether a transport is
reliable is said when a message is received, and read from the Via of a request sent.

The state machines are the tables in `transaction_table`, where the rules are
explained; this module matches messages to transactions and carries out the effects
the tables name.

Matching (17.1.3, 17.2.3, 9.2):
* A response matches the client transaction whose request had the same top Via
  branch and the same CSeq method. Our requests always carry a magic-cookie branch.
* A request matches the server transaction with the same top Via branch, sent-by and
  method; an ACK matches the INVITE it acknowledges. A CANCEL is a transaction of its
  own; its `Deliver` names the INVITE server transaction it targets.
* A request whose branch lacks the magic cookie comes from an RFC 2543 element, and
  matches by Request-URI, To tag, From tag, Call-ID, CSeq and top Via instead; its ACK
  matches by the To tag of the final response the transaction sent.
* A response that matches nothing, and an ACK that matches nothing (the ACK for a 2xx,
  which has a branch of its own), are handed to the TU as `Stray`.

Timers fire in deadline order, each as if exactly on time: a timer armed by a timer
that fired late counts from the deadline, not from the late tick, so a slow tick
changes when actions come out but never the RFC schedule.
"""

from collections import deque
from collections.abc import Callable
from typing import Final, Generic, TypeVar

from telportal.clock import Clock
from telportal.sip.errors import SipParseError
from telportal.sip.message import Request, Response, make_response, parse_message
from telportal.sip.methods import ACK, CANCEL, INVITE
from telportal.sip.transaction_actions import (
    UNRELIABLE_TRANSPORTS,
    Action,
    Deliver,
    Dropped,
    Send,
    Stray,
    Terminated,
    Timeout,
    TransactionId,
    TransportError,
    is_reliable,
)
from telportal.sip.transaction_messages import make_ack, make_cancel, new_branch, new_tag
from telportal.sip.transaction_rest import RestingTransactions
from telportal.sip.transaction_retransmit import AckKey, NoAck, TwoHundredRetransmitter
from telportal.sip.transaction_table import (
    INVITE_CLIENT,
    INVITE_SERVER,
    NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
    Arm,
    Backoff,
    Disarm,
    Do,
    Event,
    Input,
    Machine,
    State,
    Step,
    Timer,
    TimerSettings,
    timer_duration,
)
from telportal.sip.via import BRANCH_MAGIC_COOKIE, Via
from telportal.timer_heap import TimerEntry, TimerHeap

__all__ = [
    "UNRELIABLE_TRANSPORTS",
    "AckKey",
    "Action",
    "Deliver",
    "Dropped",
    "Event",
    "NoAck",
    "Send",
    "State",
    "Stray",
    "Terminated",
    "Timeout",
    "Timer",
    "TimerSettings",
    "TransactionId",
    "TransactionLayer",
    "TransactionStateError",
    "TransportError",
    "TwoHundredRetransmitter",
    "UnknownTransaction",
    "client_transaction_id",
    "is_reliable",
    "make_ack",
    "make_cancel",
    "new_branch",
    "new_tag",
    "server_transaction_id",
]

A = TypeVar("A")
_Message = Request | Response

_RETRANSMISSION_TIMERS: Final = frozenset({Timer.A, Timer.E, Timer.G})
# States in which no machine sends its request, answers it or builds from it again.
_RELEASE_STATES: Final = frozenset({State.COMPLETED, State.CONFIRMED, State.ACCEPTED})
_NO_TIMERS: Final[frozenset[Timer]] = frozenset()

# The states in which a transaction only waits out one timer of a fixed duration, kept
# at rest (`transaction_rest`, decision 0024): (machine, state, timer), by kind number.
# Typed as a tuple of any length: a fixed-length one is a C struct in compiled code,
# boxed whole (seven tuples) each time it is indexed by a variable.
_RESTING: Final[tuple[tuple[Machine, State, Timer], ...]] = (
    (INVITE_SERVER, State.ACCEPTED, Timer.L),
    (INVITE_SERVER, State.CONFIRMED, Timer.I),
    (NON_INVITE_SERVER, State.COMPLETED, Timer.J),
    (NON_INVITE_CLIENT, State.COMPLETED, Timer.K),
    (INVITE_CLIENT, State.COMPLETED, Timer.D),
    (INVITE_CLIENT, State.ACCEPTED, Timer.M),
)
_REST_KIND: Final = {timer: kind for kind, (_, _, timer) in enumerate(_RESTING)}
_ACK_KIND: Final = _REST_KIND[Timer.D]  # keeps the ACK it sent; server kinds their response,
_ACCEPTED_KIND: Final = _REST_KIND[Timer.L]  # but an accepted INVITE only its To tag
_CLIENT_KINDS: Final = frozenset({_REST_KIND[Timer.K], _REST_KIND[Timer.M]})


# A named tuple's own constructor is Python code (about 4,000 instructions with keyword
# arguments); tuple.__new__ makes the same tuple in C. Three or four ids a call.
_new_tuple: Final = tuple.__new__


def _txn_id(server: bool, method: str, branch: str, sent_by: str = "") -> TransactionId:
    return _new_tuple(TransactionId, (server, method, branch, sent_by))


class UnknownTransaction(LookupError):
    """The id names no live transaction of the kind the call needs."""


class TransactionStateError(ValueError):
    """The TU asked for something the transaction's state does not allow."""


def client_transaction_id(request: Request) -> TransactionId:
    """The id of the client transaction that sends request (RFC 3261 17.1.3)."""
    branch = request.top_via.branch
    if branch is None or not branch.startswith(BRANCH_MAGIC_COOKIE):
        raise ValueError(
            f"a client transaction needs a Via branch starting with {BRANCH_MAGIC_COOKIE}"
            f" (see new_branch()), not {branch!r}"
        )
    cseq_method = request.cseq.method
    if cseq_method != request.method:
        raise ValueError(f"CSeq method {cseq_method} differs from the {request.method} request")
    return _txn_id(False, request.method, branch)


def server_transaction_id(request: Request) -> TransactionId:
    """The id of the server transaction request belongs to (RFC 3261 17.2.3).

    An ACK gets the id of its INVITE. Raises SipParseError for a request too broken
    to match (no Via, bad CSeq, ...).
    """
    return _server_id(request, request.top_via)


def _server_id(request: Request, via: Via) -> TransactionId:
    method = INVITE if request.method == ACK else request.method
    branch = via.branch
    if branch is not None and branch.startswith(BRANCH_MAGIC_COOKIE):
        host = via.host.lower()
        sent_by = host if via.port is None else f"{host}:{via.port}"
        return _txn_id(True, method, branch, sent_by)
    return _rfc2543_id(request, via, request.to.tag)


def _rfc2543_id(request: Request, via: Via, to_tag: str | None) -> TransactionId:
    method = INVITE if request.method == ACK else request.method
    key = (
        f"rfc2543 {request.uri} to-tag={to_tag or ''} from-tag={request.from_.tag or ''}"
        f" {request.call_id} {request.cseq.number} {via}"
    )
    return _txn_id(True, method, key)


def _event_for(status: int) -> Event:
    if status < 200:
        return Event.RESPONSE_1XX
    if status < 300:
        return Event.RESPONSE_2XX
    return Event.RESPONSE_3XX_6XX


def _to_tag(response: Response) -> str | None:
    try:
        return response.to.tag
    except SipParseError:
        return None


def _rest_key(txn_id: TransactionId) -> str:
    """A transaction id as text: a key the garbage collector does not track."""
    role = "s" if txn_id.server else "c"
    return f"{role}{txn_id.method}\n{txn_id.branch}\n{txn_id.sent_by}"


def _id_of(key: str) -> TransactionId:
    """The transaction id `_rest_key` made key from (no part of one holds a newline)."""
    method, branch, sent_by = key[1:].split("\n")
    return _txn_id(key[0] == "s", method, branch, sent_by)


def _to_tag_of(data: bytes) -> str | None:
    """The To tag of a message we serialized (a rare path: a resting server
    transaction brought back)."""
    try:
        return parse_message(data).to.tag
    except SipParseError:
        return None


class _Transaction(Generic[A]):
    __slots__ = (
        "ack",
        "ack_data",
        "address",
        "cancel_pending",
        "cancel_sent",
        "cancels",
        "final_to_tag",
        "id",
        "interval",
        "last_response",
        "machine",
        "reliable",
        "request",
        "request_data",
        "response_data",
        "rest_kind",
        "rest_until",
        "state",
        "timers",
    )

    def __init__(
        self,
        txn_id: TransactionId,
        machine: Machine,
        request: Request | None,
        address: A,
        reliable: bool,
    ) -> None:
        self.id = txn_id
        self.machine = machine
        self.state = machine.initial.state
        # Dropped once the transaction has no more use for it (see _RELEASE_STATES).
        self.request: Request | None = request
        self.request_data = b""
        self.address = address  # client: the request's destination; server: its source
        self.reliable = reliable
        self.interval = 0.0  # current interval of the retransmission timer (A, E or G)
        # None: a zero-duration timer waiting to fire before the current call returns,
        # or the timer of a resting state, which goes with the transaction to rest.
        self.timers: dict[Timer, TimerEntry[_Transaction[A]] | None] = {}
        self.rest_kind = -1  # the resting state armed, to settle as (see _RESTING)
        self.rest_until = 0.0  # when its timer fires
        self.last_response: Response | None = None
        self.response_data = b""
        self.ack: Request | None = None
        self.ack_data = b""
        # The To tag of the final response sent: RFC 2543 ACK matching, a late CANCEL.
        self.final_to_tag: str | None = None
        self.cancels: TransactionId | None = None  # server CANCEL: the INVITE it targets
        self.cancel_pending = False  # client INVITE: CANCEL asked for, waiting for a 1xx
        self.cancel_sent = False


def _release(txn: _Transaction[A]) -> None:
    """Only absorbing retransmissions is left (up to 64*T1): the request, parsed and
    all, need not stay in memory, nor in the garbage collector's sight."""
    if txn.request is not None:
        txn.request = None
        txn.request_data = b""
    if txn.state is State.ACCEPTED:
        # Nor the 2xx of an accepted INVITE, parsed or not: the TU retransmits it, a
        # repeated INVITE is absorbed (RFC 6026 7.1), and a late CANCEL reads only its
        # To tag (final_to_tag). Kept for Timer L's 32 s, the parsed one was the largest
        # part of what a call left for the collector (docs/benchmarks.md, session 13),
        # and its bytes, some 800 with SDP, 38 MB at 1,500 calls/s.
        txn.last_response = None
        txn.response_data = b""


def _armed_as(txn: _Transaction[A], entry: TimerEntry[_Transaction[A]]) -> Timer | None:
    """Which of txn's timers entry is, if it still is one (a transaction has a few)."""
    for timer, armed in txn.timers.items():
        if armed is entry:
            return timer
    return None


class TransactionLayer(Generic[A]):
    """Every SIP transaction of one element; see the module docstring.

    A is the adapter's address type; the layer never looks inside one.
    """

    def __init__(
        self,
        clock: Clock,
        settings: TimerSettings | None = None,
        *,
        tag_factory: Callable[[], str] = new_tag,
    ) -> None:
        self.settings = settings if settings is not None else TimerSettings()
        self._clock = clock
        self._new_tag = tag_factory
        self._transactions: dict[TransactionId, _Transaction[A]] = {}
        # An entry's payload is the transaction alone, not (transaction, timer): one tuple
        # fewer a timer for the collector to walk (decision 0023); `_armed_as` finds it.
        self._timers: TimerHeap[_Transaction[A]] = TimerHeap()
        self._immediate: deque[tuple[_Transaction[A], Timer]] = deque()
        # Transactions that went to rest are kept out of the collector's sight
        # (decision 0024); those that may go to rest when the current call returns:
        self._rest: RestingTransactions[A] = RestingTransactions(len(_RESTING))
        self._settling: list[_Transaction[A]] = []
        self._out: list[Action[A]] = []
        self._now = clock.monotonic()

    # -- the TU's calls -------------------------------------------------------------

    def send_request(
        self, request: Request, destination: A, *, reliable: bool | None = None
    ) -> tuple[TransactionId, list[Action[A]]]:
        """Start a client transaction for request, sent to destination.

        The request must carry a top Via with a magic-cookie branch (`new_branch()`);
        the transport it names says whether the transport is reliable, unless reliable
        says otherwise. ACK is not sent through a client transaction: the INVITE
        transaction sends the ACK for a non-2xx response, and the TU the ACK for a 2xx.
        """
        if request.method == ACK:
            raise ValueError("an ACK is not sent through a client transaction")
        txn_id = client_transaction_id(request)
        if txn_id in self._transactions or self._resting(txn_id):
            raise ValueError(f"transaction {txn_id} exists already")
        if reliable is None:
            reliable = is_reliable(request.top_via.transport)
        self._begin()
        machine = INVITE_CLIENT if request.method == INVITE else NON_INVITE_CLIENT
        self._start(_Transaction(txn_id, machine, request, destination, reliable), None, None)
        return txn_id, self._finish()

    def send_response(self, transaction: TransactionId, response: Response) -> list[Action[A]]:
        """Pass the TU's response for a server transaction to the transport.

        Raises UnknownTransaction when the transaction is gone, and TransactionStateError
        when its state allows no such response (a second final response; a 2xx after a
        non-2xx).
        """
        txn = self._server(transaction)
        event = _event_for(response.status)
        if (txn.state, event) not in txn.machine.table:
            self._settle()  # it may have come back from rest for this
            raise TransactionStateError(
                f"{txn.machine.name} transaction {transaction} in state"
                f" {txn.state.value} cannot send a {response.status} response"
            )
        self._begin()
        self._dispatch(txn, event, response, None)
        return self._finish()

    def cancel(self, transaction: TransactionId) -> list[Action[A]]:
        """Cancel the INVITE of a client transaction (RFC 3261 9.1).

        The CANCEL goes out at once if a provisional response has arrived, otherwise
        as soon as one does; not at all once a final response has arrived, or if the
        transaction is gone. If no final response follows within 64*T1 of the CANCEL,
        the INVITE transaction ends with `Timeout`. Calling it again does nothing.
        """
        txn = self._get(transaction)
        if txn is None:
            return []
        if txn.machine is not INVITE_CLIENT:
            self._settle()
            raise ValueError(f"only an INVITE client transaction can be cancelled, not {txn.id}")
        self._begin()
        if txn.state is State.CALLING:
            txn.cancel_pending = True
        elif txn.state is State.PROCEEDING:
            self._send_cancel(txn)
        return self._finish()

    def accept_cancel(
        self, transaction: TransactionId, *, to_tag: str | None = None
    ) -> list[Action[A]]:
        """Answer a CANCEL server transaction the way RFC 3261 9.2 asks of a UAS.

        481 when the CANCEL matched no INVITE; otherwise 200, and 487 to the INVITE if
        it has no final response yet. Both carry the To tag of the INVITE's last
        provisional response, else to_tag, else a new one.
        """
        txn = self._server(transaction)
        if txn.id.method != CANCEL:
            self._settle()  # it may have come back from rest for this
            raise UnknownTransaction(f"{transaction} is not a CANCEL transaction")
        if txn.state is not State.TRYING:
            self._settle()
            raise TransactionStateError(f"the CANCEL {transaction} has been answered already")
        self._begin()
        invite = None if txn.cancels is None else self._get(txn.cancels)
        tag = to_tag
        if invite is not None:
            if invite.last_response is not None:
                tag = _to_tag(invite.last_response) or tag
            elif invite.final_to_tag is not None:  # accepted: only the tag is kept
                tag = invite.final_to_tag
        if tag is None:
            tag = self._new_tag()
        assert txn.request is not None  # a CANCEL in Trying keeps it
        answer = make_response(txn.request, 481 if txn.cancels is None else 200, to_tag=tag)
        self._dispatch(txn, _event_for(answer.status), answer, None)
        if invite is not None and invite.state is State.PROCEEDING:
            assert invite.request is not None  # released only once answered
            terminated = make_response(invite.request, 487, to_tag=tag)
            self._dispatch(invite, Event.RESPONSE_3XX_6XX, terminated, None)
        return self._finish()

    def transport_error(self, transaction: TransactionId) -> list[Action[A]]:
        """The transport could not send a message of this transaction (17.1.4, 17.2.4)."""
        txn = self._get(transaction)
        if txn is None:
            return []
        self._begin()
        self._dispatch(txn, Event.TRANSPORT_ERROR, None, None)
        return self._finish()

    # -- the adapter's calls --------------------------------------------------------

    def receive(self, message: Request | Response, source: A, reliable: bool) -> list[Action[A]]:
        """A message arrived from source over a reliable transport or not.

        The transport has screened it (`validate`) and stamped the Via of a request
        (18.2.1); what still cannot be matched comes back as `Dropped`.
        """
        self._begin()
        try:
            if isinstance(message, Response):
                self._receive_response(message, source)
            else:
                self._receive_request(message, source, reliable)
        except SipParseError as exc:
            self._out.append(Dropped(message, source, str(exc)))
        return self._finish()

    def receive_repeat(self, transaction: TransactionId, source: A) -> list[Action[A]] | None:
        """A request the transport recognised, before parsing it, as a byte-for-byte
        repeat of the one that started server transaction `transaction` (a UDP
        retransmission): what `receive` does with a retransmitted request, which needs
        no message (17.2.1, 17.2.2: resend the last response, or absorb it). None if
        the transaction has ended: the transport then has only the bytes to go on."""
        self._begin()
        txn = self._get(transaction)
        if txn is None:
            return None
        self._dispatch(txn, Event.REQUEST, None, source)
        return self._finish()

    def next_deadline(self) -> float | None:
        """When `tick` has something to do, on the clock's monotonic time."""
        armed = self._timers.next_deadline()
        resting = self._rest.next_deadline()
        if armed is None or (resting is not None and resting < armed):
            return resting
        return armed

    def tick(self) -> list[Action[A]]:
        """Fire every timer due by now, in deadline order."""
        now = self._clock.monotonic()
        self._out = []
        timers, rest = self._timers, self._rest
        while True:
            resting = rest.next_deadline()
            armed = timers.next_deadline()
            if resting is not None and resting <= now and (armed is None or resting < armed):
                # A resting state's timer only ever ends its transaction.
                due = rest.pop_due(now)
                assert due is not None
                self._out.append(Terminated(_id_of(due[0])))
                continue
            entry = timers.pop_due(now)
            if entry is None:
                break
            txn = entry.payload
            timer = _armed_as(txn, entry)
            if timer is None:  # re-armed since: this entry is stale
                continue
            del txn.timers[timer]
            self._now = entry.deadline
            self._dispatch(txn, timer, None, None)
            self._drain()
        self._settle()
        self._now = now
        return self._take()

    # -- inspection -----------------------------------------------------------------

    def state_of(self, transaction: TransactionId) -> State | None:
        """The state of a live transaction; None once it has terminated."""
        txn = self._transactions.get(transaction)
        if txn is not None:
            return txn.state
        kind = self._rest.kind_of(_rest_key(transaction)) if len(self._rest) > 0 else -1
        return None if kind < 0 else _RESTING[kind][1]

    def __len__(self) -> int:
        """Live transactions, resting ones included."""
        return len(self._transactions) + len(self._rest)

    @property
    def resting(self) -> int:
        """Transactions at rest: only waiting out Timer L, I, J, K, D or M."""
        return len(self._rest)

    @property
    def timer_count(self) -> int:
        """Timers armed and not yet fired or cancelled, resting ones' included."""
        return len(self._timers) + len(self._rest)

    @property
    def timer_heap_size(self) -> int:
        """Entries the timer heap holds, cancelled ones included (memory, not work)."""
        return self._timers.size

    # -- matching -------------------------------------------------------------------

    def _receive_response(self, response: Response, source: A) -> None:
        branch = response.top_via.branch
        method = response.cseq.method
        txn = None
        if branch is not None:
            txn = self._get(_txn_id(False, method, branch))
        if txn is None:
            self._out.append(Stray(response, source))
            return
        self._dispatch(txn, _event_for(response.status), response, source)
        if txn.cancel_pending and txn.state is State.PROCEEDING:
            self._send_cancel(txn)

    def _receive_request(self, request: Request, source: A, reliable: bool) -> None:
        via = request.top_via
        if request.method == ACK:
            txn = self._match_ack(request, via)
            if txn is None:
                self._out.append(Stray(request, source))
            else:
                self._dispatch(txn, Event.ACK, request, source)
            return
        txn_id = _server_id(request, via)
        txn = self._get(txn_id)
        if txn is not None:
            self._dispatch(txn, Event.REQUEST, request, source)
            return
        machine = INVITE_SERVER if request.method == INVITE else NON_INVITE_SERVER
        txn = _Transaction(txn_id, machine, request, source, reliable)
        if request.method == CANCEL:
            target = _txn_id(True, INVITE, txn_id.branch, txn_id.sent_by)
            known = target in self._transactions or self._resting(target)
            txn.cancels = target if known else None
        self._start(txn, request, source)

    def _match_ack(self, ack: Request, via: Via) -> _Transaction[A] | None:
        txn_id = _server_id(ack, via)
        txn = self._get(txn_id)
        if txn is not None or not txn_id.rfc2543:
            return txn
        # An RFC 2543 INVITE without a To tag: its ACK carries the tag of our response.
        txn = self._get(_rfc2543_id(ack, via, None))
        if txn is not None and txn.final_to_tag is not None and txn.final_to_tag == ack.to.tag:
            return txn
        return None

    def _server(self, transaction: TransactionId) -> _Transaction[A]:
        txn = self._get(transaction)
        if txn is None or not transaction.server:
            self._settle()
            raise UnknownTransaction(f"no server transaction {transaction}")
        return txn

    def _send_cancel(self, invite: _Transaction[A]) -> None:
        invite.cancel_pending = False
        invite.cancel_sent = True
        assert invite.request is not None  # Proceeding: not released yet
        cancel = make_cancel(invite.request)
        cancel_id = client_transaction_id(cancel)
        if cancel_id not in self._transactions and not self._resting(cancel_id):
            txn = _Transaction(
                cancel_id, NON_INVITE_CLIENT, cancel, invite.address, invite.reliable
            )
            self._start(txn, None, None)
        self._arm(invite, Timer.CANCEL, timer_duration(Timer.CANCEL, self.settings, False))

    # -- the machine ----------------------------------------------------------------

    def _begin(self) -> None:
        self._now = self._clock.monotonic()
        self._out = []

    def _finish(self) -> list[Action[A]]:
        self._drain()
        self._settle()
        return self._take()

    def _take(self) -> list[Action[A]]:
        out, self._out = self._out, []
        return out

    def _start(self, txn: _Transaction[A], message: _Message | None, source: A | None) -> None:
        self._transactions[txn.id] = txn
        if not txn.id.server:
            assert txn.request is not None
            txn.request_data = txn.request.to_bytes()
        self._apply(txn, txn.machine.initial, message, source)

    def _dispatch(
        self, txn: _Transaction[A], event: Input, message: _Message | None, source: A | None
    ) -> None:
        step = txn.machine.table.get((txn.state, event))
        if step is not None:
            self._apply(txn, step, message, source)

    def _apply(
        self, txn: _Transaction[A], step: Step, message: _Message | None, source: A | None
    ) -> None:
        if step.state is not txn.state:
            txn.state = step.state
            if txn.timers:
                keep = txn.machine.timers.get(step.state, _NO_TIMERS)
                for timer in [timer for timer in txn.timers if timer not in keep]:
                    self._disarm(txn, timer)
        for effect in step.effects:
            if isinstance(effect, Arm):
                self._arm_backoff(txn, effect)
            elif isinstance(effect, Disarm):
                self._disarm(txn, effect.timer)
            else:
                self._do(txn, effect, message, source)
        if txn.state in _RELEASE_STATES:
            _release(txn)
        if txn.state is State.TERMINATED:
            for timer in list(txn.timers):
                self._disarm(txn, timer)
            del self._transactions[txn.id]
            self._out.append(Terminated(txn.id))

    def _do(self, txn: _Transaction[A], do: Do, message: _Message | None, source: A | None) -> None:
        out = self._out
        match do:
            case Do.DELIVER:
                assert message is not None
                assert source is not None
                out.append(Deliver(message, txn.id, source, txn.cancels))
            case Do.SEND_REQUEST:
                assert txn.request is not None  # released only where nothing is sent
                out.append(Send(txn.request_data, txn.address, txn.request, txn.id))
            case Do.SEND_RESPONSE:
                assert isinstance(message, Response)
                self._send_response(txn, message)
            case Do.RESEND_RESPONSE:
                if txn.last_response is not None:
                    out.append(Send(txn.response_data, txn.address, txn.last_response, txn.id))
            case Do.SEND_100:
                if txn.last_response is None:
                    assert txn.request is not None
                    self._send_response(txn, make_response(txn.request, 100))
            case Do.SEND_ACK:
                assert isinstance(message, Response)
                assert txn.request is not None  # released after this step's effects
                txn.ack = make_ack(txn.request, message)
                txn.ack_data = txn.ack.to_bytes()
                out.append(Send(txn.ack_data, txn.address, txn.ack, txn.id))
            case Do.RESEND_ACK:
                if txn.ack is not None:
                    out.append(Send(txn.ack_data, txn.address, txn.ack, txn.id))
            case Do.TIMEOUT:
                out.append(Timeout(txn.id))
            case Do.REPORT_ERROR:
                out.append(TransportError(txn.id))

    def _send_response(self, txn: _Transaction[A], response: Response) -> None:
        txn.last_response = response
        txn.response_data = response.to_bytes()
        if response.status >= 200:
            txn.final_to_tag = _to_tag(response)
        self._out.append(Send(txn.response_data, txn.address, response, txn.id))

    def _arm_backoff(self, txn: _Transaction[A], arm: Arm) -> None:
        delay = timer_duration(arm.timer, self.settings, txn.reliable)
        if delay is None:
            return
        if arm.timer in _RETRANSMISSION_TIMERS:
            t2 = self.settings.t2
            match arm.backoff:
                case Backoff.DOUBLE:
                    delay = 2 * txn.interval
                case Backoff.DOUBLE_TO_T2:
                    delay = min(2 * txn.interval, t2)
                case Backoff.T2:
                    delay = t2
            txn.interval = delay
        self._arm(txn, arm.timer, delay)

    def _arm(self, txn: _Transaction[A], timer: Timer, delay: float | None) -> None:
        if delay is None:
            return
        entry = txn.timers.pop(timer, None)
        if entry is not None:
            self._timers.cancel(entry)
        if delay == 0:
            txn.timers[timer] = None
            self._immediate.append((txn, timer))
        elif (kind := _REST_KIND.get(timer, -1)) >= 0:
            # Not on the heap: the transaction takes it to rest when the call returns.
            txn.timers[timer] = None
            txn.rest_kind = kind
            txn.rest_until = self._now + delay
            self._settling.append(txn)
        else:
            txn.timers[timer] = self._timers.push(self._now + delay, txn)

    def _disarm(self, txn: _Transaction[A], timer: Timer) -> None:
        entry = txn.timers.pop(timer, None)
        if entry is not None:
            self._timers.cancel(entry)

    def _drain(self) -> None:
        """Fire the zero-duration timers armed by the call being finished."""
        immediate = self._immediate
        while immediate:
            txn, timer = immediate.popleft()
            if timer in txn.timers and txn.timers[timer] is None:
                del txn.timers[timer]
                self._dispatch(txn, timer, None, None)

    # -- rest (decision 0024) ---------------------------------------------------------

    def _get(self, transaction: TransactionId) -> _Transaction[A] | None:
        """The live transaction, brought back from rest if it was resting."""
        txn = self._transactions.get(transaction)
        if txn is None and len(self._rest) > 0:
            txn = self._revive(transaction)
        return txn

    def _resting(self, transaction: TransactionId) -> bool:
        return len(self._rest) > 0 and self._rest.kind_of(_rest_key(transaction)) >= 0

    def _revive(self, txn_id: TransactionId) -> _Transaction[A] | None:
        taken = self._rest.take(_rest_key(txn_id))
        if taken is None:
            return None
        kind, reliable, address, data, until = taken
        machine, state, timer = _RESTING[kind]
        txn = _Transaction(txn_id, machine, None, address, reliable)
        txn.state = state
        if kind == _ACK_KIND:
            ack = parse_message(data)  # we serialized it: it parses
            assert isinstance(ack, Request)
            txn.ack, txn.ack_data = ack, data
        elif kind == _ACCEPTED_KIND:
            # All an accepted INVITE keeps; a tag may hold any octet (see _parse_head).
            txn.final_to_tag = data.decode("utf-8", "surrogateescape") or None
        elif kind not in _CLIENT_KINDS:
            txn.response_data = data
            if state is State.COMPLETED:  # a non-INVITE server one resends it as is
                response = parse_message(data)  # we serialized it: it parses
                assert isinstance(response, Response)
                txn.last_response = response
                txn.final_to_tag = _to_tag(response)  # parsed once, not again for the tag
            else:
                txn.final_to_tag = _to_tag_of(data)
        txn.timers[timer] = None
        txn.rest_kind = kind
        txn.rest_until = until
        self._transactions[txn_id] = txn
        self._settling.append(txn)
        return txn

    def _settle(self) -> None:
        """Put to rest the transactions whose state now only waits out its timer."""
        settling = self._settling
        if not settling:
            return
        self._settling = []
        live = self._transactions
        for txn in settling:
            kind = txn.rest_kind
            if kind < 0 or live.get(txn.id) is not txn:
                continue  # settled already, or terminated
            txn.rest_kind = -1
            machine, state, timer = _RESTING[kind]
            timers = txn.timers
            if timer not in timers:
                continue  # the state moved on and disarmed it
            if (
                machine is not txn.machine
                or state is not txn.state
                or len(timers) != 1
                or txn.cancel_pending
            ):
                # Kept live by another timer or state: its timer goes on the heap.
                timers[timer] = self._timers.push(txn.rest_until, txn)
                continue
            if kind == _ACK_KIND:
                data = txn.ack_data
            elif kind == _ACCEPTED_KIND:
                data = (txn.final_to_tag or "").encode("utf-8", "surrogateescape")
            elif kind in _CLIENT_KINDS:
                data = b""
            else:
                data = txn.response_data
            del live[txn.id]
            self._rest.put(
                _rest_key(txn.id),
                kind,
                txn.reliable,
                txn.address,
                data,
                txn.rest_until,
            )
