"""What the transaction layer hands back: transaction ids and actions.

Every call into `TransactionLayer` returns a list of actions, in the order they
happened. The adapter performs the `Send`s; everything else is for the transaction
user (the UA core, a proxy core): `Deliver`, `Stray`, `Dropped`, `Timeout`,
`TransportError`, `Terminated`.

Actions are values, though not frozen: a frozen dataclass sets each field through
`object.__setattr__` (a `Send` took 1.4 us to make, 0.4 us as a plain slots
dataclass), and the layer makes several a call for the adapter to read once. Nothing
changes one after it is made. The module is compiled, so the generic ones are plain
classes that compare by value (`ByFields`), not dataclasses (mypyc/mypyc#827).

Addresses are opaque to the transaction layer: it is generic in the type `A` the
transport adapter uses (`telportal.net`'s `Peer` and `Source`, a test's string) and only
gives back what it was given. A request is sent to the destination the TU named; a
response is sent to the source of its request, and the transport routes it from there
(RFC 3261 18.2.2: the same connection, or `received` and `rport` over UDP).
"""

from dataclasses import dataclass
from typing import Final, Generic, NamedTuple, TypeVar

from telportal.sip.message import Request, Response
from telportal.sip.via import BRANCH_MAGIC_COOKIE

A = TypeVar("A")

# Only UDP loses and reorders messages; TCP, TLS, WS, WSS and SCTP do not.
UNRELIABLE_TRANSPORTS: Final = frozenset({"UDP"})


def is_reliable(via_transport: str) -> bool:
    """Whether the transport a Via names ("UDP", "TCP", "TLS", "WS", ...) is reliable."""
    return via_transport.upper() not in UNRELIABLE_TRANSPORTS


class TransactionId(NamedTuple):
    """The key a transaction is matched by (RFC 3261 17.1.3, 17.2.3).

    method is the method of the request that created the transaction (an ACK matches
    its INVITE). For a request from an RFC 2543 element (no magic cookie in the branch)
    branch holds the fields 17.2.3 matches such requests by instead, and sent_by is "".

    A named tuple rather than a frozen dataclass: it keys the transaction table and
    the layers' maps, looked up for every message, and a tuple hashes in C.
    """

    server: bool
    method: str
    branch: str
    sent_by: str = ""

    @property
    def rfc2543(self) -> bool:
        return not self.branch.startswith(BRANCH_MAGIC_COOKIE)

    def __str__(self) -> str:
        role = "server" if self.server else "client"
        via = f" {self.sent_by}" if self.sent_by else ""
        return f"{self.method} {role} {self.branch}{via}"


class ByFields:
    """Compared, hashed and printed by its fields, as a dataclass would be: the generic
    actions below, and the retransmitter's `NoAck`, are plain classes because mypyc
    cannot compile a generic dataclass (mypyc/mypyc#827), and their modules are
    compiled (decision 0028)."""

    __slots__ = ()

    def _fields(self) -> tuple[object, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ByFields)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self).__name__, *self._fields()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._fields()!r}"


class Send(ByFields, Generic[A]):
    """Pass data (message, serialized) to the transport.

    For a request, destination is where the TU sent the transaction's request. For a
    response, it is the source of the request: route it per RFC 3261 18.2.2
    (`net.SipTransportLayer.respond`). transaction is None for messages sent outside any
    transaction (2xx retransmissions from `TwoHundredRetransmitter`); a failure to send a
    message that names a transaction goes back through `TransactionLayer.transport_error`.
    """

    __slots__ = ("data", "destination", "message", "transaction")

    def __init__(
        self,
        data: bytes,
        destination: A,
        message: Request | Response,
        transaction: TransactionId | None = None,
    ) -> None:
        self.data = data
        self.destination = destination
        self.message = message
        self.transaction = transaction

    def _fields(self) -> tuple[object, ...]:
        return (self.data, self.destination, self.message, self.transaction)


class Deliver(ByFields, Generic[A]):
    """A message for the TU, within a transaction.

    A request that created a server transaction; a response to a client transaction;
    an ACK matching a server transaction in Accepted. For a CANCEL, cancels names the
    INVITE server transaction it targets (None when there is none: answer 481).
    """

    __slots__ = ("cancels", "message", "source", "transaction")

    def __init__(
        self,
        message: Request | Response,
        transaction: TransactionId,
        source: A,
        cancels: TransactionId | None = None,
    ) -> None:
        self.message = message
        self.transaction = transaction
        self.source = source
        self.cancels = cancels

    def _fields(self) -> tuple[object, ...]:
        return (self.message, self.transaction, self.source, self.cancels)


class Stray(ByFields, Generic[A]):
    """A response no client transaction matches, or an ACK no server transaction does.

    The UA core passes a stray 2xx to the dialog it belongs to (a 2xx retransmission
    after Timer M, or from another fork), and a stray ACK to the dialog as the ACK for
    its 2xx.
    """

    __slots__ = ("message", "source")

    def __init__(self, message: Request | Response, source: A) -> None:
        self.message = message
        self.source = source

    def _fields(self) -> tuple[object, ...]:
        return (self.message, self.source)


class Dropped(ByFields, Generic[A]):
    """A message too broken to match, with why (for logs and counters)."""

    __slots__ = ("message", "reason", "source")

    def __init__(self, message: Request | Response, source: A, reason: str) -> None:
        self.message = message
        self.source = source
        self.reason = reason

    def _fields(self) -> tuple[object, ...]:
        return (self.message, self.source, self.reason)


@dataclass(slots=True)
class Timeout:
    """Timer B, F, H or the CANCEL guard fired: no response, or no ACK, in time."""

    transaction: TransactionId

    # Written out, not generated: see decision 0021.
    def __init__(self, transaction: TransactionId) -> None:
        self.transaction = transaction


@dataclass(slots=True)
class TransportError:
    transaction: TransactionId

    # Written out, not generated: see decision 0021.
    def __init__(self, transaction: TransactionId) -> None:
        self.transaction = transaction


@dataclass(slots=True)
class Terminated:
    """The transaction is gone; nothing more will name it."""

    transaction: TransactionId

    # Written out, not generated: see decision 0021.
    def __init__(self, transaction: TransactionId) -> None:
        self.transaction = transaction


Action = Send[A] | Deliver[A] | Stray[A] | Dropped[A] | Timeout | TransportError | Terminated
