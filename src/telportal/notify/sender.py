"""The task that empties the outbox: claim a due row, send it, settle it, repeat.

`deliver_due` is one pass and is what tests call, with a fake clock moved past the
backoff instead of sleeping. `start` runs passes when woken (a notice was just stored)
and every `poll_seconds` otherwise, which is also how rows left unsent by the last run
and rows whose backoff has passed go out. A pass stops at the first failure that may
pass: with the server down every other row would fail the same way, each after its
own timeout.
"""

import asyncio
import contextlib
import logging

from telportal.clock import Clock
from telportal.notify.delivery import OutboxState, RetryPolicy, after_attempt
from telportal.notify.outbox import Outbox
from telportal.notify.smtp import DeliveryError, MailTransport
from telportal.store.database import Database
from telportal.tasks import stop_task

log = logging.getLogger(__name__)


class OutboxSender:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        transport: MailTransport,
        policy: RetryPolicy,
        *,
        poll_seconds: float = 5.0,
        batch: int = 100,
    ) -> None:
        self.clock = clock
        self.transport = transport
        self.policy = policy
        self.outbox = Outbox(db, policy)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def deliver_due(self) -> int:
        """Send what is due now, up to `batch` rows; how many the server accepted."""
        sent = 0
        for _ in range(self.batch):
            if self._stopping:
                break
            claimed = await self.outbox.claim()
            if claimed is None:
                break
            try:
                await self.transport.send(claimed.message)
            except DeliveryError as exc:
                result = after_attempt(
                    self.policy, claimed.attempts, self.clock.now(),
                    error=str(exc), permanent=exc.permanent,
                )  # fmt: skip
                await self.outbox.settle(claimed.id, result)
                if result.state is OutboxState.FAILED:
                    log.error(
                        "email %s to user %s given up after %d tries: %s",
                        claimed.id, claimed.user_id, claimed.attempts, exc,
                    )  # fmt: skip
                    continue
                log.warning(
                    "email %s to user %s: try %d failed (%s); next at %s",
                    claimed.id, claimed.user_id, claimed.attempts, exc, result.next_attempt_at,
                )  # fmt: skip
                break
            await self.outbox.settle(
                claimed.id, after_attempt(self.policy, claimed.attempts, self.clock.now())
            )
            sent += 1
        return sent

    def wake(self) -> None:
        self._wake.set()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="email sender")

    async def stop(self) -> None:
        if self._task is not None:
            # The flag as well as the cancel: aiosmtplib waits for the server with
            # Python 3.11's `wait_for`, which drops a cancellation that comes as the
            # server's answer does; the loop then ended a send and went on, and `stop`
            # waited for ever (seen in CI). Now the loop ends at its next check.
            self._stopping = True
            self._wake.set()
            try:
                await stop_task(self._task)
            finally:
                self._task = None
                self._stopping = False  # `deliver_due` called on its own runs whole

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the pass: a wake during it means "go again"
            try:
                await self.deliver_due()
            except Exception:  # the store went away for a moment: try again next round
                log.exception("email sender")
            # `asyncio.timeout`, not `wait_for`: Python 3.11's `wait_for` drops a
            # cancellation that comes as the event is set (a `wake` just before `stop`),
            # and `stop` then waited for ever (seen in CI).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds):
                    await self._wake.wait()
