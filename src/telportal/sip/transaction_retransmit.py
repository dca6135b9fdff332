"""2xx retransmission by the UAS core until the ACK arrives (RFC 3261 13.3.1.4, RFC 6026).

The INVITE server transaction sends a 2xx once and leaves it to the TU. The TU sends
the first copy through the transaction, then hands the response to
`TwoHundredRetransmitter.start`, which resends it T1 later, then at intervals that
double up to T2, whatever the transport (hops behind a proxy may be UDP). An ACK with
the same Call-ID, CSeq number, From tag and To tag stops it; at 64*T1 without one it
gives up and reports `NoAck`, after which the UAS should end the dialog with a BYE.

Pure and clock-driven like the transaction layer: call `tick()` at `next_deadline()`.
"""

from typing import Generic, NamedTuple, TypeVar

from telportal.clock import Clock
from telportal.sip.errors import SipParseError
from telportal.sip.message import Request, Response
from telportal.sip.methods import INVITE
from telportal.sip.transaction_actions import ByFields, Send
from telportal.sip.transaction_table import TimerSettings
from telportal.timer_heap import TimerEntry, TimerHeap

A = TypeVar("A")


class AckKey(NamedTuple):
    """What ties an ACK to the 2xx it acknowledges: dialog id and CSeq number.

    A named tuple: a dictionary key made for every 2xx and every ACK.
    """

    call_id: str
    cseq: int
    from_tag: str | None
    to_tag: str | None

    @classmethod
    def of(cls, message: Request | Response) -> "AckKey":
        """The key of a 2xx or of an ACK; raises SipParseError for unreadable headers."""
        # tuple.__new__: the named tuple's own constructor is Python code, and this
        # runs for every 2xx and every ACK.
        fields = (message.call_id, message.cseq.number, message.from_.tag, message.to.tag)
        return tuple.__new__(cls, fields)


class NoAck(ByFields, Generic[A]):
    """No ACK for this 2xx within 64*T1. Compared by value, as a dataclass would be
    (a plain class: the module is compiled, see `ByFields`)."""

    __slots__ = ("destination", "key", "response")

    def __init__(self, key: AckKey, response: Response, destination: A) -> None:
        self.key = key
        self.response = response
        self.destination = destination

    def _fields(self) -> tuple[object, ...]:
        return (self.key, self.response, self.destination)

    def __hash__(self) -> int:
        # A Response is mutable and so not hashable: the key names the transaction.
        return hash((self.key, self.destination))


class _Pending(Generic[A]):
    __slots__ = ("data", "destination", "entry", "give_up", "interval", "response")

    def __init__(self, response: Response, destination: A, interval: float, give_up: float) -> None:
        self.response = response
        self.data = response.to_bytes()
        self.destination = destination
        self.interval = interval
        self.give_up = give_up
        self.entry: TimerEntry[AckKey] | None = None


class TwoHundredRetransmitter(Generic[A]):
    """Retransmits any number of 2xx responses to INVITE, each until its ACK.

    A is the adapter's address type, as for `TransactionLayer`: give `start` the
    destination of the `Send` that carried the first copy.
    """

    def __init__(self, clock: Clock, settings: TimerSettings | None = None) -> None:
        self.settings = settings if settings is not None else TimerSettings()
        self._clock = clock
        self._pending: dict[AckKey, _Pending[A]] = {}
        self._timers: TimerHeap[AckKey] = TimerHeap()

    def start(self, response: Response, destination: A) -> AckKey:
        """Retransmit response (already sent once) to destination until acknowledged.

        Starting again for the same key replaces the earlier response.
        """
        if not 200 <= response.status < 300 or response.cseq.method != INVITE:
            raise ValueError(
                f"only a 2xx to INVITE is retransmitted, not {response.status}"
                f" to {response.cseq.method}"
            )
        key = AckKey.of(response)
        self.stop(key)
        now = self._clock.monotonic()
        t1 = self.settings.t1
        pending = _Pending(response, destination, t1, now + self.settings.timeout)
        pending.entry = self._timers.push(min(now + t1, pending.give_up), key)
        self._pending[key] = pending
        return key

    def ack_received(self, ack: Request) -> bool:
        """Stop retransmitting the 2xx this ACK acknowledges; False if there is none."""
        try:
            key = AckKey.of(ack)
        except SipParseError:
            return False
        return self.stop(key)

    def stop(self, key: AckKey) -> bool:
        pending = self._pending.pop(key, None)
        if pending is None:
            return False
        if pending.entry is not None:
            self._timers.cancel(pending.entry)
        return True

    def next_deadline(self) -> float | None:
        return self._timers.next_deadline()

    def tick(self) -> list[Send[A] | NoAck[A]]:
        """Retransmit every 2xx due by now and give up on those past 64*T1."""
        now = self._clock.monotonic()
        out: list[Send[A] | NoAck[A]] = []
        while (entry := self._timers.pop_due(now)) is not None:
            key = entry.payload
            pending = self._pending[key]
            if entry.deadline >= pending.give_up:
                del self._pending[key]
                out.append(NoAck(key, pending.response, pending.destination))
                continue
            out.append(Send(pending.data, pending.destination, pending.response))
            pending.interval = min(2 * pending.interval, self.settings.t2)
            deadline = min(entry.deadline + pending.interval, pending.give_up)
            pending.entry = self._timers.push(deadline, key)
        return out

    def __len__(self) -> int:
        """2xx responses still waiting for their ACK."""
        return len(self._pending)

    @property
    def timer_heap_size(self) -> int:
        return self._timers.size
