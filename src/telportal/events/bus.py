"""The event bus seam. In one process, `InProcessBus`; across sites, NATS (later).

Subscribers get their own bounded queue so that one slow consumer cannot block
publishers or other consumers: when its queue is full the oldest event is
dropped and counted, and the consumer can see how many it missed.
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Protocol

from telportal.events.types import Event

log = logging.getLogger(__name__)


class Subscription:
    def __init__(self, bus: "InProcessBus", prefixes: tuple[str, ...], maxsize: int) -> None:
        self._bus = bus
        # No prefix (or an empty one): every event.
        self.prefixes = () if "" in prefixes else prefixes
        self.dropped = 0
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._closed = False

    def matches(self, event: Event) -> bool:
        if not self.prefixes:
            return True
        subject = event.subject
        return any(subject == p or subject.startswith(p + ".") for p in self.prefixes)

    def deliver(self, event: Event) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    async def get(self) -> Event:
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus.unsubscribe(self)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while not self._closed:
            yield await self._queue.get()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class EventBus(Protocol):
    async def publish(self, event: Event) -> None: ...

    def subscribe(self, *prefixes: str, maxsize: int = 1000) -> Subscription: ...


class InProcessBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    async def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            if sub.matches(event):
                sub.deliver(event)

    def subscribe(self, *prefixes: str, maxsize: int = 1000) -> Subscription:
        """Events whose subject equals one of `prefixes` or starts with it and a dot;
        all of them when none is given (or one is empty)."""
        sub = Subscription(self, prefixes, maxsize)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)
