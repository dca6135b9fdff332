"""`telportal.tasks.stop_task`: the stopped task's cancellation is absorbed, the
stopper's own is not."""

import asyncio
import contextlib

import pytest

from telportal.tasks import stop_task


async def _slow_to_stop(cleanup_seconds: float) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(cleanup_seconds)  # a task that tidies up before it ends
        raise


async def test_the_task_is_cancelled_and_waited_for() -> None:
    task = asyncio.create_task(_slow_to_stop(0.01))
    await asyncio.sleep(0)
    await stop_task(task)
    assert task.cancelled()


async def test_a_stopper_cancelled_meanwhile_is_cancelled_too() -> None:
    task = asyncio.create_task(_slow_to_stop(0.5))
    await asyncio.sleep(0)
    stopper = asyncio.create_task(stop_task(task))
    await asyncio.sleep(0.05)  # the stopper waits for the task's clean-up
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    assert stopper.cancelled()  # with `suppress(CancelledError)` it returned normally
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_other_failures_of_the_task_come_through() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("could not close its file") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="could not close its file"):
        await stop_task(task)
