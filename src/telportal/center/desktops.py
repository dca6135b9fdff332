"""Agents' open event sockets, so an event for one agent can be sent and awaited.

The bus fans events out to every subscriber eventually; a screen pop must instead
reach one agent *before* their phone rings, and we want to know when it did. So
each agent's WebSocket registers a sender here, and `deliver` writes the event to
that agent's sockets and returns once they are written (or a short limit passed).
A page that acknowledges (the desktop) is waited for until it says the pop is on
screen, so "the pop before the phone rings" holds for what the agent sees.
"""

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from telportal.events import Event
from telportal.events.wire import event_json

log = logging.getLogger(__name__)

Sender = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, eq=False)
class _Socket:
    send: Sender
    # The page acknowledges events it has put on screen (`acked`), so a delivery to it
    # ends when the agent can see the pop, not merely when it was written.
    acks: bool


class AgentDesktops:
    def __init__(self) -> None:
        self._sockets: dict[tuple[str, str], list[_Socket]] = {}
        self._waiting: dict[str, asyncio.Future[None]] = {}

    def attach(
        self, tenant_id: str, user_id: str, send: Sender, *, acks: bool = False
    ) -> Callable[[], None]:
        """Register one open socket of a user; call the result when it closes."""
        key = (tenant_id, user_id)
        socket = _Socket(send, acks)
        self._sockets.setdefault(key, []).append(socket)

        def detach() -> None:
            sockets = self._sockets.get(key, [])
            with contextlib.suppress(ValueError):
                sockets.remove(socket)
            if not sockets:
                self._sockets.pop(key, None)

        return detach

    def connected(self, tenant_id: str, user_id: str) -> int:
        return len(self._sockets.get((tenant_id, user_id), ()))

    def acked(self, delivery: str) -> None:
        """A page says it shows the event of this delivery."""
        waiting = self._waiting.pop(delivery, None)
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def deliver(
        self,
        tenant_id: str,
        user_id: str,
        event: Event,
        limit_seconds: float = 0.5,
        ack_limit_seconds: float = 1.0,
    ) -> int:
        """Send `event` to every open socket of the user; how many took it in time.

        A socket that acknowledges counts once its page said it shows the event; the
        others once the frame is written. A slow or broken desktop must not hold up the
        call: each has a limit, and the call goes on without it.
        """
        sockets = list(self._sockets.get((tenant_id, user_id), ()))
        if not sockets:
            return 0
        body = event_json(event)
        plain = json.dumps(body, ensure_ascii=False, default=str)
        results = await asyncio.gather(
            *(self._one(s, body, plain, limit_seconds, ack_limit_seconds) for s in sockets),
            return_exceptions=True,
        )
        delivered = 0
        for result in results:
            if isinstance(result, BaseException):
                log.warning("could not deliver %s to %s: %r", event.family, user_id, result)
            else:
                delivered += 1
        return delivered

    async def _one(
        self,
        socket: _Socket,
        body: dict[str, object],
        plain: str,
        limit_seconds: float,
        ack_limit_seconds: float,
    ) -> None:
        if not socket.acks:
            async with asyncio.timeout(limit_seconds):  # not `wait_for` (sender.py)
                await socket.send(plain)
            return
        delivery = secrets.token_hex(8)
        shown: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[delivery] = shown
        try:
            text = json.dumps({**body, "delivery": delivery}, ensure_ascii=False, default=str)
            async with asyncio.timeout(ack_limit_seconds):
                await socket.send(text)
                await shown
        finally:
            self._waiting.pop(delivery, None)
