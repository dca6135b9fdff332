"""Agents' open event sockets, so an event for one agent can be sent and awaited.

The bus fans events out to every subscriber eventually; a screen pop must instead
reach one agent *before* their phone rings, and we want to know when it did. So
each agent's WebSocket registers a sender here, and `deliver` writes the event to
that agent's sockets and returns once they are written (or a short limit passed).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from telportal.events import Event
from telportal.events.wire import event_json

log = logging.getLogger(__name__)

Sender = Callable[[str], Awaitable[None]]


class AgentDesktops:
    def __init__(self) -> None:
        self._senders: dict[tuple[str, str], list[Sender]] = {}

    def attach(self, tenant_id: str, user_id: str, send: Sender) -> Callable[[], None]:
        """Register one open socket of a user; call the result when it closes."""
        key = (tenant_id, user_id)
        self._senders.setdefault(key, []).append(send)

        def detach() -> None:
            senders = self._senders.get(key, [])
            with contextlib.suppress(ValueError):
                senders.remove(send)
            if not senders:
                self._senders.pop(key, None)

        return detach

    def connected(self, tenant_id: str, user_id: str) -> int:
        return len(self._senders.get((tenant_id, user_id), ()))

    async def deliver(
        self, tenant_id: str, user_id: str, event: Event, limit_seconds: float = 0.5
    ) -> int:
        """Write `event` to every open socket of the user; how many took it in time.

        A slow or broken desktop must not hold up the call: each write has a limit.
        """
        senders = list(self._senders.get((tenant_id, user_id), ()))
        if not senders:
            return 0
        text = json.dumps(event_json(event), ensure_ascii=False, default=str)
        results = await asyncio.gather(
            *(asyncio.wait_for(send(text), limit_seconds) for send in senders),
            return_exceptions=True,
        )
        delivered = 0
        for result in results:
            if isinstance(result, BaseException):
                log.warning("could not deliver %s to %s: %r", event.family, user_id, result)
            else:
                delivered += 1
        return delivered
