import asyncio

import pytest

from telportal.net import Incoming, Source, Transport, TransportClosed
from telportal.net.inbox import Inbox
from telportal.sip import parse_message
from tests.unit.net.samples import request

SOURCE = Source(Transport.UDP, "192.0.2.1", 5060, 1)


def incoming() -> Incoming:
    return Incoming(parse_message(request()), SOURCE)


async def test_messages_come_out_in_order() -> None:
    inbox = Inbox(10)
    first, second = incoming(), incoming()
    inbox.put(first)
    inbox.put(second)
    assert await inbox.get() is first
    assert await inbox.get() is second


async def test_a_waiting_getter_is_woken_by_put() -> None:
    inbox = Inbox(10)
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    item = incoming()
    inbox.put(item)
    assert await getter is item


async def test_room_callbacks_run_when_half_the_backlog_is_taken() -> None:
    inbox = Inbox(4)
    for _ in range(4):
        inbox.put(incoming())
    assert inbox.full
    calls: list[str] = []
    inbox.when_room(lambda: calls.append("room"))
    await inbox.get()
    assert calls == []
    await inbox.get()
    assert calls == ["room"]


async def test_waiting_messages_are_taken_without_waiting_in_order_with_room_callbacks() -> None:
    inbox = Inbox(4)
    assert inbox.get_nowait() is None
    items = [incoming() for _ in range(4)]
    for item in items:
        inbox.put(item)
    calls: list[str] = []
    inbox.when_room(lambda: calls.append("room"))
    assert inbox.get_nowait() is items[0]
    assert calls == []
    assert inbox.get_nowait() is items[1]
    assert calls == ["room"]
    assert await inbox.get() is items[2]
    assert inbox.get_nowait() is items[3]
    assert inbox.get_nowait() is None
    inbox.put(incoming())
    inbox.close()
    assert inbox.get_nowait() is None  # closing discards what waited


async def test_close_wakes_getters_with_transport_closed() -> None:
    inbox = Inbox(4)
    getter = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    inbox.close()
    with pytest.raises(TransportClosed):
        await getter
    with pytest.raises(TransportClosed):
        await inbox.get()


async def test_a_cancelled_getter_passes_its_wake_up_on() -> None:
    inbox = Inbox(4)
    first = asyncio.ensure_future(inbox.get())
    second = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0)
    item = incoming()
    inbox.put(item)  # wakes first...
    first.cancel()  # ...which is cancelled before it runs
    assert await second is item
    with pytest.raises(asyncio.CancelledError):
        await first
