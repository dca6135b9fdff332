"""Background loops stop when asked, even when woken in the same moment.

Python 3.11's `asyncio.wait_for` drops a cancellation that arrives as the awaited
event is set; a loop waiting on "woken or N seconds" with it went on running after
`stop()` cancelled it, and `stop()` waited for ever (a hang seen in CI, in the
email tests). These loops wait with `asyncio.timeout` instead."""

import asyncio
import contextlib
from email.message import EmailMessage

from telportal.app import Platform
from telportal.clock import FakeClock
from telportal.notify.delivery import RetryPolicy
from telportal.notify.sender import OutboxSender


class _NoMail:
    async def send(self, message: EmailMessage) -> None:
        raise AssertionError("the outbox is empty: nothing is sent")


async def test_the_email_sender_stops_when_woken_just_before(
    sqlite_platform: Platform, clock: FakeClock
) -> None:
    # The wake and the cancel meet at different points of the waiting loop.
    for turns_between in range(6):
        sender = OutboxSender(sqlite_platform.db, clock, _NoMail(), RetryPolicy(), poll_seconds=30)
        await sender.start()
        for _ in range(10):  # its first pass, then it waits for a wake
            await asyncio.sleep(0)
        sender.wake()
        for _ in range(turns_between):
            await asyncio.sleep(0)
        stopping = asyncio.create_task(sender.stop())
        done, _ = await asyncio.wait({stopping}, timeout=5)  # with `wait_for`: for ever
        assert stopping in done, f"stop() did not return ({turns_between} turns after the wake)"


async def test_the_email_sender_stops_though_a_send_swallowed_the_cancel(
    sqlite_platform: Platform, clock: FakeClock
) -> None:
    """aiosmtplib waits for the server with `wait_for`, which can swallow the cancel
    when the server's answer comes at the same moment: the loop must end anyway."""
    sender = OutboxSender(sqlite_platform.db, clock, _NoMail(), RetryPolicy(), poll_seconds=30)
    sending = asyncio.Event()

    async def deliver_due() -> int:
        sending.set()
        with contextlib.suppress(asyncio.CancelledError):  # the swallowed cancel
            await asyncio.sleep(0.2)
        return 0

    sender.deliver_due = deliver_due  # type: ignore[method-assign]
    await sender.start()
    await sending.wait()
    stopping = asyncio.create_task(sender.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)  # without the flag: 30 s and more
    assert stopping in done, "stop() did not return after a swallowed cancel"
