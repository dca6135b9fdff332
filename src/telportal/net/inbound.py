"""What to do with a received message: deliver it, answer it, or discard it (pure).

Every transport funnels what it receives through here so that UDP, TCP, TLS and
WebSocket screen the same way: `screen_datagram` / `screen_message` from the SIP layer
decide, and an accepted request gets its top Via stamped (see `routing.stamp_via`).
A rejected request carries a ready response; the transport sends it back to the source
(not by the Via: a request too broken to process may have a Via not worth trusting).
"""

from dataclasses import dataclass
from typing import Final

from telportal.net.address import Source
from telportal.net.routing import stamp_via
from telportal.sip import (
    Accept,
    Message,
    Reject,
    Request,
    Response,
    ServerPolicy,
    Verdict,
    screen_datagram,
    screen_message,
)

# RFC 5626 4.4.1 keep-alives: a client pings with CRLFCRLF, the server pongs with CRLF.
PING: Final = b"\r\n\r\n"
PONG: Final = b"\r\n"


@dataclass(frozen=True, slots=True)
class Deliver:
    """A message for the layer above."""

    message: Message

    # Written out, not generated: see decision 0021.
    def __init__(self, message: Message) -> None:
        object.__setattr__(self, "message", message)


@dataclass(frozen=True, slots=True)
class Answer:
    """A request refused by the transport; send response back where it came from."""

    response: Response
    detail: str

    # Written out, not generated: see decision 0021.
    def __init__(self, response: Response, detail: str) -> None:
        object.__setattr__(self, "response", response)
        object.__setattr__(self, "detail", detail)


@dataclass(frozen=True, slots=True)
class Discard:
    """Nothing can be done: a response or ACK that is broken, or bytes without a Via."""

    detail: str

    # Written out, not generated: see decision 0021.
    def __init__(self, detail: str) -> None:
        object.__setattr__(self, "detail", detail)


Outcome = Deliver | Answer | Discard


def receive_datagram(data: bytes, source: Source, *, to_tag: str, policy: ServerPolicy) -> Outcome:
    """Screen one datagram or WebSocket message (each carries exactly one SIP message)."""
    return settle(screen_datagram(data, to_tag=to_tag, policy=policy), source)


def receive_message(
    message: Message, source: Source, *, to_tag: str, policy: ServerPolicy
) -> Outcome:
    """Screen one message a stream framer has cut out."""
    return settle(screen_message(message, to_tag=to_tag, policy=policy), source)


def settle(verdict: Verdict, source: Source) -> Outcome:
    if isinstance(verdict, Accept):
        if isinstance(verdict.message, Request):
            stamp_via(verdict.message, source)
        return Deliver(verdict.message)
    if isinstance(verdict, Reject):
        return Answer(verdict.response, verdict.rejection.detail)
    return Discard(verdict.detail)


def is_keepalive(data: bytes) -> bool:
    """A datagram of nothing but line breaks: a NAT keep-alive many phones send on UDP.

    RFC 5626 uses STUN for UDP flows, but CRLF datagrams are what phones send in
    practice; they are counted and otherwise ignored (answering would only add traffic).
    """
    return bool(data) and not data.strip(b"\r\n")
