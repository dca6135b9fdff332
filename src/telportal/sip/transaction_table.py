"""The four SIP transaction state machines, as tables (RFC 3261 17, RFC 6026 7 and 8).

Rules the tables follow, and that `TransactionLayer` applies:

* A transaction is created in `Machine.initial`: its state, and the effects run then
  (send the request and arm the timers, or deliver the request to the TU).
* Every input is an `Event`: a response received (client side) or passed down by the
  TU (server side), a retransmitted request or an ACK (server side), a `Timer` firing,
  or a transport error. `Machine.table[(state, event)]` is the `Step` to take: first
  the transaction enters `step.state`, then `step.effects` run in order.
* A (state, event) pair that is not in a table is ignored: a response after the
  transaction has moved on, a timer that belongs to a state already left. The one
  exception is a response the TU passes down in a state with no entry (a second final
  response): that is a programming error, and `send_response` raises.
* Entering a state cancels every running timer that `Machine.timers[state]` does not
  list; a timer a state keeps (E, from Trying into Proceeding) keeps its deadline.
  Staying in the same state cancels nothing.
* Timer durations are in `timer_duration`. Timers A, E, G retransmit, and are not used
  at all on reliable transports (TCP, TLS, WS, SCTP). Timers D, I, J, K absorb
  retransmissions, and are zero on reliable transports: a zero timer fires before the
  call that armed it returns, so a reliable transaction passes through Completed or
  Confirmed at once.
* Entering Terminated removes the transaction; the layer reports `Terminated`.

RFC 6026 changes RFC 3261 in two places, both followed here: a 2xx to an INVITE moves
the client transaction to Accepted (Timer M) instead of Terminated, so retransmitted
2xx still reach the TU, which ACKs each one; and the server transaction to Accepted
(Timer L) instead of Terminated, so retransmitted INVITEs are absorbed and the ACK
for the 2xx reaches the TU. In Accepted the server transaction never retransmits the
2xx itself: that is the TU's job (`TwoHundredRetransmitter`).

Two timers are not lettered in the RFC: TRYING sends 100 Trying if the TU has said
nothing 200 ms after an INVITE arrived (17.2.1), and CANCEL ends an INVITE client
transaction that got no final response 64*T1 after a CANCEL was sent for it (9.1).

INVITE client                         non-INVITE client
  Calling    --1xx-->      Proceeding   Trying     --1xx-->      Proceeding
  Calling    --2xx-->      Accepted     Trying     --final-->    Completed
  Calling    --300-699-->  Completed    Trying     --E-->        Trying (resend, E*2 <= T2)
  Calling    --A-->        Calling      Trying     --F-->        Terminated (timeout)
             (resend, A*2)              Proceeding --1xx-->      Proceeding
  Calling    --B-->        Terminated   Proceeding --final-->    Completed
             (timeout)                  Proceeding --E-->        Proceeding (resend, E=T2)
  Proceeding --1xx-->      Proceeding   Proceeding --F-->        Terminated (timeout)
  Proceeding --2xx-->      Accepted     Completed  --final-->    Completed (absorbed)
  Proceeding --300-699-->  Completed    Completed  --K-->        Terminated
  Completed  --300-699-->  Completed (ACK resent)
  Completed  --D-->        Terminated
  Accepted   --2xx-->      Accepted (to the TU)
  Accepted   --M-->        Terminated

INVITE server                         non-INVITE server
  Proceeding --1xx from TU-->      Proceeding   Trying     --1xx from TU-->   Proceeding
  Proceeding --2xx from TU-->      Accepted     Trying     --final from TU--> Completed
  Proceeding --300-699 from TU-->  Completed    Trying     --request-->       Trying (absorbed)
  Proceeding --INVITE-->           Proceeding   Proceeding --1xx from TU-->   Proceeding
             (last 1xx resent)                  Proceeding --final from TU--> Completed
  Completed  --INVITE-->  Completed (resent)    Proceeding --request-->       Proceeding
  Completed  --G-->       Completed                        (last 1xx resent)
             (resent, G*2 <= T2)                Completed  --request-->       Completed
  Completed  --ACK-->     Confirmed                        (final resent)
  Completed  --H-->       Terminated (timeout)  Completed  --J-->             Terminated
  Confirmed  --ACK, INVITE--> Confirmed (absorbed)
  Confirmed  --I-->       Terminated
  Accepted   --INVITE-->  Accepted (absorbed)
  Accepted   --ACK-->     Accepted (to the TU)
  Accepted   --2xx from TU--> Accepted (sent)
  Accepted   --L-->       Terminated

A transport error while the transaction still sends ends it (Terminated, and
`TransportError` to the TU), in every state that sends something.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Final


class State(Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code


class Event(Enum):
    RESPONSE_1XX = "1xx"
    RESPONSE_2XX = "2xx"
    RESPONSE_3XX_6XX = "300-699"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TRANSPORT_ERROR = "transport error"

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code


class Timer(Enum):
    A = "A"  # INVITE client: request retransmission
    B = "B"  # INVITE client: transaction timeout
    D = "D"  # INVITE client: wait for response retransmissions
    E = "E"  # non-INVITE client: request retransmission
    F = "F"  # non-INVITE client: transaction timeout
    G = "G"  # INVITE server: final response retransmission
    H = "H"  # INVITE server: wait for ACK
    I = "I"  # INVITE server: wait for ACK retransmissions  # noqa: E741
    J = "J"  # non-INVITE server: wait for request retransmissions
    K = "K"  # non-INVITE client: wait for response retransmissions
    L = "L"  # INVITE server, RFC 6026: wait for INVITE retransmissions after 2xx
    M = "M"  # INVITE client, RFC 6026: wait for 2xx retransmissions
    TRYING = "100 Trying"  # INVITE server: TU silent for 200 ms (17.2.1)
    CANCEL = "CANCEL"  # INVITE client: no final response 64*T1 after CANCEL (9.1)

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code


Input = Event | Timer


class Do(Enum):
    DELIVER = "deliver the message to the TU"
    SEND_REQUEST = "pass the request to the transport"
    SEND_RESPONSE = "pass the TU's response to the transport and keep it"
    RESEND_RESPONSE = "pass the last response again, if there is one"
    SEND_ACK = "build the ACK for the non-2xx response and send it"
    RESEND_ACK = "send that ACK again"
    SEND_100 = "send 100 Trying, unless the TU has responded"
    TIMEOUT = "report Timeout to the TU"
    REPORT_ERROR = "report TransportError to the TU"

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code


class Backoff(Enum):
    FIRST = "T1"
    DOUBLE = "twice the last interval"
    DOUBLE_TO_T2 = "twice the last interval, at most T2"
    T2 = "T2"

    __hash__ = object.__hash__  # members are singletons; Enum's hash is Python code


@dataclass(frozen=True, slots=True)
class Arm:
    """Start a timer; retransmission timers (A, E, G) follow backoff."""

    timer: Timer
    backoff: Backoff = Backoff.FIRST


@dataclass(frozen=True, slots=True)
class Disarm:
    timer: Timer


Effect = Do | Arm | Disarm


@dataclass(frozen=True, slots=True)
class Step:
    state: State
    effects: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class Machine:
    """One of the four machines; compared and hashed by identity."""

    name: str
    initial: Step
    table: dict[tuple[State, Input], Step]
    timers: dict[State, frozenset[Timer]]


CALLING: Final = State.CALLING
TRYING: Final = State.TRYING
PROCEEDING: Final = State.PROCEEDING
COMPLETED: Final = State.COMPLETED
CONFIRMED: Final = State.CONFIRMED
ACCEPTED: Final = State.ACCEPTED
TERMINATED: Final = State.TERMINATED
R1XX: Final = Event.RESPONSE_1XX
R2XX: Final = Event.RESPONSE_2XX
R3XX_6XX: Final = Event.RESPONSE_3XX_6XX
FAILED: Final = Step(TERMINATED, (Do.REPORT_ERROR,))
TIMED_OUT: Final = Step(TERMINATED, (Do.TIMEOUT,))
ENDED: Final = Step(TERMINATED)

# RFC 3261 17.1.1, figure 5, with RFC 6026 figure 5 (Accepted, Timer M).
INVITE_CLIENT: Final = Machine(
    name="INVITE client",
    initial=Step(CALLING, (Do.SEND_REQUEST, Arm(Timer.A), Arm(Timer.B))),
    table={
        (CALLING, Timer.A): Step(CALLING, (Do.SEND_REQUEST, Arm(Timer.A, Backoff.DOUBLE))),
        (CALLING, Timer.B): TIMED_OUT,
        (CALLING, R1XX): Step(PROCEEDING, (Do.DELIVER,)),
        (CALLING, R2XX): Step(ACCEPTED, (Do.DELIVER, Arm(Timer.M))),
        (CALLING, R3XX_6XX): Step(COMPLETED, (Do.DELIVER, Do.SEND_ACK, Arm(Timer.D))),
        (CALLING, Event.TRANSPORT_ERROR): FAILED,
        (PROCEEDING, R1XX): Step(PROCEEDING, (Do.DELIVER,)),
        (PROCEEDING, R2XX): Step(ACCEPTED, (Do.DELIVER, Arm(Timer.M))),
        (PROCEEDING, R3XX_6XX): Step(COMPLETED, (Do.DELIVER, Do.SEND_ACK, Arm(Timer.D))),
        (PROCEEDING, Timer.CANCEL): TIMED_OUT,
        (PROCEEDING, Event.TRANSPORT_ERROR): FAILED,
        (COMPLETED, R3XX_6XX): Step(COMPLETED, (Do.RESEND_ACK,)),
        (COMPLETED, Timer.D): ENDED,
        (COMPLETED, Event.TRANSPORT_ERROR): FAILED,
        (ACCEPTED, R2XX): Step(ACCEPTED, (Do.DELIVER,)),
        (ACCEPTED, Timer.M): ENDED,
    },
    timers={
        CALLING: frozenset({Timer.A, Timer.B}),
        PROCEEDING: frozenset({Timer.CANCEL}),
        COMPLETED: frozenset({Timer.D}),
        ACCEPTED: frozenset({Timer.M}),
    },
)

# RFC 3261 17.1.2, figure 6.
NON_INVITE_CLIENT: Final = Machine(
    name="non-INVITE client",
    initial=Step(TRYING, (Do.SEND_REQUEST, Arm(Timer.E), Arm(Timer.F))),
    table={
        (TRYING, Timer.E): Step(TRYING, (Do.SEND_REQUEST, Arm(Timer.E, Backoff.DOUBLE_TO_T2))),
        (TRYING, Timer.F): TIMED_OUT,
        (TRYING, R1XX): Step(PROCEEDING, (Do.DELIVER,)),
        (TRYING, R2XX): Step(COMPLETED, (Do.DELIVER, Arm(Timer.K))),
        (TRYING, R3XX_6XX): Step(COMPLETED, (Do.DELIVER, Arm(Timer.K))),
        (TRYING, Event.TRANSPORT_ERROR): FAILED,
        (PROCEEDING, Timer.E): Step(PROCEEDING, (Do.SEND_REQUEST, Arm(Timer.E, Backoff.T2))),
        (PROCEEDING, Timer.F): TIMED_OUT,
        (PROCEEDING, R1XX): Step(PROCEEDING, (Do.DELIVER,)),
        (PROCEEDING, R2XX): Step(COMPLETED, (Do.DELIVER, Arm(Timer.K))),
        (PROCEEDING, R3XX_6XX): Step(COMPLETED, (Do.DELIVER, Arm(Timer.K))),
        (PROCEEDING, Event.TRANSPORT_ERROR): FAILED,
        (COMPLETED, R1XX): Step(COMPLETED),
        (COMPLETED, R2XX): Step(COMPLETED),
        (COMPLETED, R3XX_6XX): Step(COMPLETED),
        (COMPLETED, Timer.K): ENDED,
    },
    timers={
        TRYING: frozenset({Timer.E, Timer.F}),
        PROCEEDING: frozenset({Timer.E, Timer.F}),
        COMPLETED: frozenset({Timer.K}),
    },
)

# RFC 3261 17.2.1, figure 7, with RFC 6026 figure 7 (Accepted, Timer L).
INVITE_SERVER: Final = Machine(
    name="INVITE server",
    initial=Step(PROCEEDING, (Do.DELIVER, Arm(Timer.TRYING))),
    table={
        (PROCEEDING, Event.REQUEST): Step(PROCEEDING, (Do.RESEND_RESPONSE,)),
        (PROCEEDING, Timer.TRYING): Step(PROCEEDING, (Do.SEND_100,)),
        (PROCEEDING, R1XX): Step(PROCEEDING, (Do.SEND_RESPONSE, Disarm(Timer.TRYING))),
        (PROCEEDING, R2XX): Step(ACCEPTED, (Do.SEND_RESPONSE, Arm(Timer.L))),
        (PROCEEDING, R3XX_6XX): Step(COMPLETED, (Do.SEND_RESPONSE, Arm(Timer.G), Arm(Timer.H))),
        (PROCEEDING, Event.TRANSPORT_ERROR): FAILED,
        (COMPLETED, Event.REQUEST): Step(COMPLETED, (Do.RESEND_RESPONSE,)),
        (COMPLETED, Event.ACK): Step(CONFIRMED, (Arm(Timer.I),)),
        (COMPLETED, Timer.G): Step(
            COMPLETED, (Do.RESEND_RESPONSE, Arm(Timer.G, Backoff.DOUBLE_TO_T2))
        ),
        (COMPLETED, Timer.H): TIMED_OUT,
        (COMPLETED, Event.TRANSPORT_ERROR): FAILED,
        (CONFIRMED, Event.REQUEST): Step(CONFIRMED),
        (CONFIRMED, Event.ACK): Step(CONFIRMED),
        (CONFIRMED, Timer.I): ENDED,
        (ACCEPTED, Event.REQUEST): Step(ACCEPTED),
        (ACCEPTED, Event.ACK): Step(ACCEPTED, (Do.DELIVER,)),
        (ACCEPTED, R2XX): Step(ACCEPTED, (Do.SEND_RESPONSE,)),
        (ACCEPTED, Timer.L): ENDED,
        (ACCEPTED, Event.TRANSPORT_ERROR): FAILED,
    },
    timers={
        PROCEEDING: frozenset({Timer.TRYING}),
        COMPLETED: frozenset({Timer.G, Timer.H}),
        CONFIRMED: frozenset({Timer.I}),
        ACCEPTED: frozenset({Timer.L}),
    },
)

# RFC 3261 17.2.2, figure 8.
NON_INVITE_SERVER: Final = Machine(
    name="non-INVITE server",
    initial=Step(TRYING, (Do.DELIVER,)),
    table={
        (TRYING, Event.REQUEST): Step(TRYING),
        (TRYING, R1XX): Step(PROCEEDING, (Do.SEND_RESPONSE,)),
        (TRYING, R2XX): Step(COMPLETED, (Do.SEND_RESPONSE, Arm(Timer.J))),
        (TRYING, R3XX_6XX): Step(COMPLETED, (Do.SEND_RESPONSE, Arm(Timer.J))),
        (PROCEEDING, Event.REQUEST): Step(PROCEEDING, (Do.RESEND_RESPONSE,)),
        (PROCEEDING, R1XX): Step(PROCEEDING, (Do.SEND_RESPONSE,)),
        (PROCEEDING, R2XX): Step(COMPLETED, (Do.SEND_RESPONSE, Arm(Timer.J))),
        (PROCEEDING, R3XX_6XX): Step(COMPLETED, (Do.SEND_RESPONSE, Arm(Timer.J))),
        (PROCEEDING, Event.TRANSPORT_ERROR): FAILED,
        (COMPLETED, Event.REQUEST): Step(COMPLETED, (Do.RESEND_RESPONSE,)),
        (COMPLETED, Timer.J): ENDED,
        (COMPLETED, Event.TRANSPORT_ERROR): FAILED,
    },
    timers={COMPLETED: frozenset({Timer.J})},
)

MACHINES: Final = (INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER)


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """RFC 3261 17.1.1.1 and table 4; seconds."""

    t1: float = 0.5  # round-trip time estimate
    t2: float = 4.0  # longest retransmission interval for non-INVITE requests and responses
    t4: float = 5.0  # longest time a message stays in the network
    timer_d: float = 32.0  # at least 32 s over unreliable transports
    trying_delay: float | None = 0.2  # None: never send 100 Trying on the TU's behalf

    def __post_init__(self) -> None:
        for name in ("t1", "t2", "t4", "timer_d"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TimerSettings.{name} must be positive")
        if self.t2 < self.t1:
            raise ValueError("TimerSettings.t2 must not be shorter than t1")
        if self.trying_delay is not None and self.trying_delay < 0:
            raise ValueError("TimerSettings.trying_delay must not be negative")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L, M and the CANCEL guard."""
        return 64 * self.t1


def timer_duration(timer: Timer, settings: TimerSettings, reliable: bool) -> float | None:
    """Seconds until timer fires; None when it is not used on this kind of transport.

    Retransmission timers (A, E, G) give their first interval here; the layer doubles it.
    """
    match timer:
        case Timer.A | Timer.E | Timer.G:
            return None if reliable else settings.t1
        case Timer.D:
            return 0.0 if reliable else settings.timer_d
        case Timer.I | Timer.K:
            return 0.0 if reliable else settings.t4
        case Timer.J:
            return 0.0 if reliable else settings.timeout
        case Timer.TRYING:
            return settings.trying_delay
    return settings.timeout  # B, F, H, L, M, CANCEL
