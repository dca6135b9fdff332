"""The IVR call's event FIFO: order, waking its one consumer, cancellation."""

import asyncio

import pytest

from telportal.mailbox import Mailbox


async def test_items_come_out_in_order_without_waiting_when_some_are_there() -> None:
    box: Mailbox[int] = Mailbox()
    for n in range(3):
        box.put_nowait(n)
    assert len(box) == 3
    assert [await box.get() for _ in range(3)] == [0, 1, 2]
    assert len(box) == 0


async def test_a_waiting_consumer_wakes_for_the_next_item() -> None:
    box: Mailbox[str] = Mailbox()
    getting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    assert not getting.done()
    asyncio.get_running_loop().call_soon(box.put_nowait, "ended")
    assert await asyncio.wait_for(getting, 1) == "ended"


async def test_a_cancelled_wait_leaves_the_mailbox_usable_and_loses_nothing() -> None:
    box: Mailbox[str] = Mailbox()
    getting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    getting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getting
    box.put_nowait("digit")  # put after the cancelled wait: kept for the next get
    assert await asyncio.wait_for(box.get(), 1) == "digit"


async def test_two_consumers_at_once_are_refused() -> None:
    box: Mailbox[int] = Mailbox()
    first = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one consumer"):
        await box.get()
    box.put_nowait(7)
    assert await asyncio.wait_for(first, 1) == 7
