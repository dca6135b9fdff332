"""Builders shared by the transaction tests (no tests here)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from telportal.clock import FakeClock
from telportal.sip import Request, Response, make_response, parse_message
from telportal.sip.transaction import (
    Action,
    Deliver,
    Send,
    TimerSettings,
    TransactionId,
    TransactionLayer,
    new_branch,
    server_transaction_id,
)


@dataclass(frozen=True, slots=True)
class Peer:
    """The tests' own address type: the layer takes any, and only gives it back."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


UDP = Peer("UDP", "192.0.2.10", 5060)
TCP = Peer("TCP", "192.0.2.10", 5060)
TLS = Peer("TLS", "192.0.2.10", 5061)

A = TypeVar("A")


def request(
    method: str = "INVITE",
    *,
    branch: str | None = None,
    transport: str = "UDP",
    sent_by: str = "192.0.2.10:5060",
    via: str | None = None,
    cseq: int = 1,
    cseq_method: str | None = None,
    call_id: str = "a84b4c76e66710@192.0.2.10",
    from_tag: str = "1928301774",
    to_tag: str | None = None,
    uri: str = "sip:bob@192.0.2.20",
    routes: tuple[str, ...] = (),
) -> Request:
    """A request as a UA writes it; a fresh magic-cookie branch unless given one."""
    if via is None:
        via = f"SIP/2.0/{transport} {sent_by};branch={branch or new_branch()}"
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        *(f"Route: {route}" for route in routes),
        f"To: {to}",
        f"From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Request)
    return message


def respond(req: Request, status: int, to_tag: str | None = "b7c2") -> Response:
    """The response a UAS sends, round-tripped through bytes like a received one."""
    message = parse_message(make_response(req, status, to_tag=to_tag).to_bytes())
    assert isinstance(message, Response)
    return message


Layer = TransactionLayer[Peer]
Actions = list[Action[Peer]]


def new_layer(settings: TimerSettings | None = None) -> tuple[Layer, FakeClock]:
    clock = FakeClock()
    return TransactionLayer(clock, settings), clock


def advance_to(clock: FakeClock, moment: float) -> None:
    """Move the fake clock to moment exactly, or just past it if floats round down."""
    clock.advance(max(0.0, moment - clock.monotonic()))
    while clock.monotonic() < moment:
        clock.advance(1e-9)


def only(actions: Sequence[object], kind: type[A]) -> list[A]:
    return [action for action in actions if isinstance(action, kind)]


def sent(actions: Actions) -> list[Request | Response]:
    return [action.message for action in only(actions, Send)]


def resends(actions: Actions) -> list[tuple[bytes, Peer, bytes, TransactionId | None]]:
    """The Sends among actions as what goes out: data, destination, the message
    serialized again, transaction. A resting transaction keeps only the bytes of what
    it may send again (decision 0024), so its message is those bytes parsed back: the
    same message, though not the same object."""
    return [
        (send.data, send.destination, send.message.to_bytes(), send.transaction)
        for send in only(actions, Send)
    ]


def kinds(actions: Actions) -> list[str]:
    """Action types and what they carry, in order, for compact assertions."""
    names = []
    for action in actions:
        name = type(action).__name__
        message = getattr(action, "message", None)
        if isinstance(message, Request):
            name += f" {message.method}"
        elif isinstance(message, Response):
            name += f" {message.status}"
        names.append(name)
    return names


def run_until(layer: Layer, clock: FakeClock, until: float) -> list[tuple[float, Action[Peer]]]:
    """Jump the clock from deadline to deadline up to until; each action with its time."""
    timeline: list[tuple[float, Action[Peer]]] = []
    while (deadline := layer.next_deadline()) is not None and deadline <= until:
        advance_to(clock, deadline)
        timeline += [(deadline, action) for action in layer.tick()]
    advance_to(clock, until)
    return timeline


QUIET = TimerSettings(trying_delay=None)  # no automatic 100 Trying, to keep timelines short


def serve(
    method: str = "INVITE", peer: Peer = UDP, *, branch: str | None = None
) -> tuple[Layer, FakeClock, TransactionId, Request]:
    """A layer whose server transaction has just delivered `method` to the TU."""
    layer, clock = new_layer(QUIET)
    req = request(method, transport=peer.transport, branch=branch)
    actions = layer.receive(req, peer, peer.reliable)
    assert actions == [Deliver(req, server_transaction_id(req), peer)]
    return layer, clock, server_transaction_id(req), req
