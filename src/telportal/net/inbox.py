"""Received messages waiting for the layer above: a FIFO with a soft limit.

Protocol callbacks are synchronous, so they put messages here instead of awaiting a
handler (a task per message would cost more than parsing it). Over the limit, UDP
datagrams are dropped, since their senders retransmit, while stream and WebSocket
connections stop reading until the layer above has taken half the backlog: TCP flow
control then slows the sender down instead of our memory growing.
"""

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from telportal.net.address import Source
from telportal.net.errors import TransportClosed
from telportal.sip import Message
from telportal.sip.transaction_actions import TransactionId


@dataclass(frozen=True, slots=True)
class Incoming:
    message: Message
    source: Source

    # Written out, not generated: see decision 0021.
    def __init__(self, message: Message, source: Source) -> None:
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "source", source)


@dataclass(frozen=True, slots=True)
class Repeat:
    """A UDP datagram byte for byte the same as an INVITE its source sent moments
    before (a retransmission): not screened or parsed again, but handed on with the
    id of the server transaction that INVITE started, which absorbs it or answers it
    again (`TransactionLayer.receive_repeat`)."""

    transaction: TransactionId
    source: Source

    def __init__(self, transaction: TransactionId, source: Source) -> None:
        object.__setattr__(self, "transaction", transaction)
        object.__setattr__(self, "source", source)


class Inbox:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the inbox limit must be at least 1")
        self._limit = limit
        self._items: deque[Incoming | Repeat] = deque()
        self._getters: deque[asyncio.Future[None]] = deque()
        self._room_callbacks: list[Callable[[], None]] = []
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self._limit

    def put(self, item: Incoming | Repeat) -> None:
        """Append item, over the limit too: callers check `full` and hold back."""
        if self._closed:
            return
        self._items.append(item)
        self._wake_getter()

    def when_room(self, callback: Callable[[], None]) -> None:
        """Call callback once the backlog is down to half the limit (or on close)."""
        if self._closed or len(self._items) <= self._limit // 2:
            callback()
        else:
            self._room_callbacks.append(callback)

    def get_nowait(self) -> Incoming | Repeat | None:
        """The oldest message, if one is waiting (None when none is, or once closed):
        the reader drains a backlog without a coroutine per message."""
        if not self._items:
            return None
        item = self._items.popleft()
        if self._room_callbacks and len(self._items) <= self._limit // 2:
            self._run_room_callbacks()
        return item

    async def get(self) -> Incoming | Repeat:
        """The oldest message; raises TransportClosed once closed."""
        while not self._items:
            if self._closed:
                raise TransportClosed("the transport layer is closed")
            waiter = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A put may have woken this getter just before it was cancelled: pass the
                # wake-up on so the message does not wait for the next put.
                if waiter in self._getters:
                    self._getters.remove(waiter)
                elif self._items:
                    self._wake_getter()
                raise
        item = self._items.popleft()
        if self._room_callbacks and len(self._items) <= self._limit // 2:
            self._run_room_callbacks()
        return item

    def close(self) -> None:
        """Wake every waiter; pending messages are discarded."""
        self._closed = True
        self._items.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        self._run_room_callbacks()

    def _wake_getter(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _run_room_callbacks(self) -> None:
        callbacks, self._room_callbacks = self._room_callbacks, []
        for callback in callbacks:
            callback()
