"""What becomes of an outbox email after a try: pure, so retries are tested by the clock.

    state     how it got there                           what the sender does
    --------  -----------------------------------------  ------------------------------
    pending   stored, or a try failed for a reason that  tries again at next_attempt_at
              may pass (server down, 4xx, timeout)
    sent      the server accepted it (sent_at)            nothing, ever again
    failed    the server refused it for good (5xx), or    nothing; the row keeps the
              max_attempts tries all failed               last error for people to read

The wait after the n-th failed try is first_delay * 2^(n-1), at most max_delay. A try
is counted when it is claimed, before the message leaves: a row claimed by a process
that then dies is tried again once its lease is over, and the lost try still counts,
so a message that crashes the sender cannot be retried forever.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 8
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    lease: timedelta = timedelta(minutes=2)
    """How long a claimed row is left alone: longer than one try can take."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def delay(self, attempts: int) -> timedelta:
        """The wait after the `attempts`-th failed try."""
        exponent = max(attempts - 1, 0)
        if exponent >= 32:  # far past any max_delay; avoids a huge multiplication
            return self.max_delay
        return min(self.first_delay * (1 << exponent), self.max_delay)


@dataclass(frozen=True, slots=True)
class AfterAttempt:
    state: OutboxState
    next_attempt_at: datetime | None
    sent_at: datetime | None
    last_error: str | None


def after_attempt(
    policy: RetryPolicy,
    attempts: int,
    now: datetime,
    *,
    error: str | None = None,
    permanent: bool = False,
) -> AfterAttempt:
    """The row's next state after its `attempts`-th try ended at `now` (no error: sent)."""
    if error is None:
        return AfterAttempt(OutboxState.SENT, None, now, None)
    if permanent or attempts >= policy.max_attempts:
        return AfterAttempt(OutboxState.FAILED, None, None, error)
    return AfterAttempt(OutboxState.PENDING, now + policy.delay(attempts), None, error)
