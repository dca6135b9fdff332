"""One SIP stream connection (TCP or TLS) without IO: framing, keep-alives, timeouts.

The asyncio protocol feeds received bytes and the loop's time to `StreamSession.receive`
and carries out the actions returned, in order:

    Deliver(message)   hand the message to the layer above
    Answer(response)   write the response on this connection (a refused request)
    Discard(detail)    count it, nothing to send
    Pong               write CRLF: the peer pinged with CRLFCRLF (RFC 5626 4.4.1)
    Hangup(reason)     close the connection once what came before has been written

Rules:
- A stream cannot resynchronise after a framing error (RFC 3261 18.3): the session
  answers 400 (513 when the message is too large) if the broken request's header lines
  still give a Via to answer to, then hangs up and ignores anything received after.
- A message that frames but fails screening (bad CSeq, unknown method, ...) is
  answered and the connection stays open: framing is intact.
- A lone CRLF is a pong to our own ping or an RFC 3261 style keep-alive: it refreshes
  idleness and is not answered (two servers answering each other's CRLF would never
  stop). CRLFCRLF between messages is a ping and gets one CRLF back.
- Timers: `deadline` is the next time `expire(now)` must be called. A partial message
  may wait read_timeout (a stalled sender must not hold a buffer forever); a
  connection with no traffic either way is closed after idle_timeout.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from telportal.net.address import Source
from telportal.net.inbound import PING, Answer, Deliver, Discard, receive_message
from telportal.sip import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Accept,
    Message,
    MessageFramer,
    Reject,
    Request,
    Response,
    ServerPolicy,
    SipParseError,
    make_response,
    reason_phrase,
    screen_datagram,
)

# MessageFramer words both of its size errors this way ("header section exceeds the limit
# of N bytes", "message of N bytes exceeds the limit of N bytes"); a unit test pins it.
_SIZE_ERROR_PHRASE: Final = "exceeds the limit"
_REASON_LIMIT: Final = 200


@dataclass(frozen=True, slots=True)
class StreamLimits:
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    read_timeout: float = 32.0
    idle_timeout: float = 300.0


@dataclass(frozen=True, slots=True)
class Pong:
    """Write inbound.PONG."""


@dataclass(frozen=True, slots=True)
class Hangup:
    reason: str
    timed_out: bool = False


StreamAction = Deliver | Answer | Discard | Pong | Hangup


class StreamSession:
    def __init__(
        self,
        source: Source,
        *,
        now: float,
        limits: StreamLimits,
        policy: ServerPolicy,
        new_tag: Callable[[], str],
    ) -> None:
        self.source = source
        self._limits = limits
        self._policy = policy
        self._new_tag = new_tag
        self._framer = MessageFramer(limits.max_message_size)
        # The bytes the framer still holds (it keeps them private): the head of a broken
        # message is needed to answer it. Empty whenever no partial message is waiting.
        self._tail = bytearray()
        # Line breaks seen between messages, to recognise a ping split across reads.
        self._gap = b""
        self._last_activity = now
        self._partial_since: float | None = None
        self._hung_up = False

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    @property
    def deadline(self) -> float:
        idle = self._last_activity + self._limits.idle_timeout
        if self._partial_since is None:
            return idle
        return min(idle, self._partial_since + self._limits.read_timeout)

    def note_sent(self, now: float) -> None:
        """We wrote to the connection: it is in use, not idle."""
        self._last_activity = now

    def expire(self, now: float) -> Hangup | None:
        """The Hangup due at now, if a timer has run out."""
        if self._hung_up:
            return None
        if self._partial_since is not None and now >= (
            self._partial_since + self._limits.read_timeout
        ):
            return self._hang_up(
                f"partial message not completed within {self._limits.read_timeout:g} s",
                timed_out=True,
            )
        if now >= self._last_activity + self._limits.idle_timeout:
            return self._hang_up(f"no traffic for {self._limits.idle_timeout:g} s", timed_out=True)
        return None

    def receive(self, data: bytes, now: float) -> list[StreamAction]:
        if self._hung_up or not data:
            return []
        self._last_activity = now
        actions: list[StreamAction] = []
        if self._framer.buffered == 0:
            data = self._keepalives(data, actions)
            if not data:
                return actions
        error: SipParseError | None = None
        messages: list[Message] = []
        try:
            messages = self._framer.feed(data)
            if messages and self._framer.buffered:
                # feed() holds back an error that follows good messages; surface it now
                # rather than when (if ever) the peer sends again.
                self._framer.feed(b"")
        except SipParseError as exc:
            error = exc
        self._keep_tail(data)
        for message in messages:
            actions.append(
                receive_message(message, self.source, to_tag=self._new_tag(), policy=self._policy)
            )
        if error is not None:
            actions += self._framing_lost(error)
        elif self._framer.buffered == 0:
            self._partial_since = None
        elif messages or self._partial_since is None:
            self._partial_since = now
        return actions

    def _keepalives(self, data: bytes, actions: list[StreamAction]) -> bytes:
        """Strip the line breaks before the next message, answering each ping in them.

        A ping that shares a read with the end of a message is consumed by the framer,
        which skips CRLFs between messages, and goes unanswered. RFC 5626 clients ping
        an idle flow only, so in practice a ping arrives on its own.
        """
        rest = data.lstrip(b"\r\n")
        gap = self._gap + data[: len(data) - len(rest)]
        while PING in gap:
            actions.append(Pong())
            gap = gap[gap.index(PING) + len(PING) :]
        # Once the next message starts, what is left of the gap was a lone CRLF.
        self._gap = b"" if rest else gap
        return rest

    def _keep_tail(self, data: bytes) -> None:
        buffered = self._framer.buffered
        if buffered == 0:
            self._tail.clear()
            return
        self._tail += data
        # The framer's buffer is always a suffix of what it was fed.
        del self._tail[: len(self._tail) - buffered]

    def _framing_lost(self, exc: SipParseError) -> list[StreamAction]:
        detail = str(exc)
        actions: list[StreamAction] = []
        answer = self._answer_broken(bytes(self._tail), detail)
        if answer is not None:
            actions.append(answer)
        self._tail.clear()
        actions.append(self._hang_up(f"framing lost: {detail}"))
        return actions

    def _answer_broken(self, head: bytes, detail: str) -> Answer | None:
        """The response to a request the framer could not cut out, if it can be answered.

        The datagram screener reads the header lines that made it in, so the response
        copies Via, From, To, Call-ID and CSeq like any other; status and reason come
        from the framer's error, which names the real problem.
        """
        if _SIZE_ERROR_PHRASE in detail:
            status, reason = 513, reason_phrase(513)
        else:
            status, reason = 400, _reason(detail)
        if b"\r\n\r\n" not in head:
            # An unfinished header section: its last line may be cut short, and the
            # screener rejects a section with a broken line, so answer from the rest.
            head = head[: max(head.rfind(b"\r\n"), 0)]
        to_tag = self._new_tag()
        verdict = screen_datagram(head, to_tag=to_tag, policy=self._policy)
        response: Response | None = None
        if isinstance(verdict, Reject):
            response = verdict.response
            response.status, response.reason = status, reason
        elif isinstance(verdict, Accept) and isinstance(verdict.message, Request):
            # The head alone screens fine (a missing Content-Length, say): answer it.
            response = make_response(verdict.message, status, reason, to_tag=to_tag)
        if response is None:
            return None
        return Answer(response, detail)

    def _hang_up(self, reason: str, *, timed_out: bool = False) -> Hangup:
        self._hung_up = True
        self._partial_since = None
        return Hangup(reason, timed_out)


def _reason(detail: str) -> str:
    """A reason phrase from an error message: one printable line, bounded."""
    text = "".join(char if char.isprintable() else "?" for char in detail)
    if len(text) <= _REASON_LIMIT:
        return text
    return text[: _REASON_LIMIT - 3] + "..."
