"""The asyncio adapters: the ticker drives the scheduler in real time and sleeps when idle.

No timing is asserted here (that is the benchmark's job), only that ticks happen."""

import asyncio

import pytest

from telportal.clock import SystemClock
from telportal.media.realtime import AsyncioTicker
from telportal.media.scheduler import TickScheduler


class Counter:
    def __init__(self, wanted: int) -> None:
        self.frames: list[int] = []
        self.wanted = wanted
        self.done = asyncio.Event()

    def on_tick(self, frame: int, now: float) -> None:
        self.frames.append(frame)
        if len(self.frames) >= self.wanted:
            self.done.set()


async def test_ticker_runs_subscribed_clients_and_sleeps_when_idle() -> None:
    clock = SystemClock()
    scheduler = TickScheduler(clock.monotonic(), slots=4, early=0.001)
    ticker = AsyncioTicker(scheduler, clock, asyncio.get_running_loop())
    try:
        client = Counter(5)
        scheduler.subscribe(client)  # wakes the sleeping ticker
        await asyncio.wait_for(client.done.wait(), 10)
        frames = client.frames
        assert frames == list(range(frames[0], frames[0] + len(frames)))
        scheduler.unsubscribe(client)
        ticker.wake()
        assert ticker._handle is None  # nothing subscribed: no timer at all
    finally:
        ticker.close()
    assert scheduler.wake is None


def test_early_must_be_under_a_tick() -> None:
    with pytest.raises(ValueError, match="under one tick"):
        TickScheduler(0.0, slots=10, early=0.002)
