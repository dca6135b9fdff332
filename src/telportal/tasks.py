"""Stopping a background task without losing the stopper's own cancellation."""

import asyncio
from typing import Any


async def stop_task(task: "asyncio.Task[Any]") -> None:
    """Cancel `task` and wait until it has ended.

    The usual `task.cancel()` then `with suppress(CancelledError): await task`
    also swallows a cancellation of the task that is doing the stopping (a shutdown
    with a time limit, a hung-up call): the stopper then carried on as if nothing had
    been asked of it. Here the stopped task's CancelledError is absorbed, the
    stopper's own is not. The task's other exceptions come through."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
