"""The waits of `bridge()`: end callbacks on a leg and one future for "whichever first"."""

import asyncio
from typing import Any

from telportal.clock import FakeClock
from telportal.config import Config
from telportal.events.bus import InProcessBus
from telportal.net import Peer, Transport
from telportal.signaling.calls import _first_of, _Leg
from telportal.signaling.directory import SipDirectory
from telportal.signaling.service import SipService
from telportal.store.database import Database

PEER = Peer(Transport.UDP, "192.0.2.1", 5060)


def leg() -> _Leg:
    # A service never started, over a directory whose database is never opened: with
    # no dialog, ending the leg touches nothing of either. (Both are real: the modules
    # are compiled, and a compiled class takes no stand-in for a typed argument.)
    clock, bus = FakeClock(), InProcessBus()
    directory = SipDirectory(Database("sqlite+aiosqlite://", clock, bus))
    return _Leg(SipService(Config(), clock, bus, directory), PEER)


async def test_end_callbacks_run_once_when_the_leg_ends_and_can_be_removed() -> None:
    a = leg()
    calls: list[str] = []
    a.when_ended(lambda: calls.append("first"))
    remove = a.when_ended(lambda: calls.append("removed"))
    remove()
    remove()  # twice is harmless
    a._end("peer hung up")
    a._end("again")
    assert calls == ["first"]
    assert a.end_reason == "peer hung up" and a.ended.is_set()
    a.when_ended(lambda: calls.append("late"))  # ended already: called at once
    assert calls == ["first", "late"]


async def test_first_of_returns_on_the_first_leg_to_end_and_leaves_nothing_behind() -> None:
    a, b = leg(), leg()
    waiting = asyncio.create_task(_first_of(None, (a, b), None))
    await asyncio.sleep(0)
    assert not waiting.done()
    asyncio.get_running_loop().call_soon(b._end, "callee hung up")
    await asyncio.wait_for(waiting, 1)
    assert a._end_callbacks == [] and b._end_callbacks == []
    await asyncio.wait_for(_first_of(None, (a, b), None), 1)  # b has ended: at once


async def test_first_of_returns_when_the_task_is_done_or_the_time_is_up() -> None:
    a = leg()
    answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def dial() -> Any:
        await answer

    task = asyncio.create_task(dial())
    waiting = asyncio.create_task(_first_of(task, (a,), 30.0))
    await asyncio.sleep(0)
    answer.set_result(None)
    await asyncio.wait_for(waiting, 1)
    assert task.done() and not a.ended.is_set() and a._end_callbacks == []

    slow = asyncio.create_task(asyncio.sleep(30))
    await asyncio.wait_for(_first_of(slow, (a,), 0.01), 1)  # the ring timeout
    assert not slow.done() and a._end_callbacks == []
    slow.cancel()
