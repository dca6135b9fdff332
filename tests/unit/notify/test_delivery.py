"""Retries: exponential backoff up to a ceiling, giving up, permanent refusals."""

from datetime import UTC, datetime, timedelta

import pytest

from telportal.notify.delivery import OutboxState, RetryPolicy, after_attempt

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(
    max_attempts=5, first_delay=timedelta(seconds=30), max_delay=timedelta(minutes=3)
)


def test_the_wait_doubles_up_to_the_ceiling() -> None:
    assert [POLICY.delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 180, 180, 180]
    assert POLICY.delay(500) == timedelta(minutes=3)  # no overflow far out


def test_a_success_is_sent_and_final() -> None:
    done = after_attempt(POLICY, 3, NOW)
    assert (done.state, done.sent_at, done.next_attempt_at, done.last_error) == (
        OutboxState.SENT, NOW, None, None,
    )  # fmt: skip


def test_a_passing_failure_waits_then_the_last_try_gives_up() -> None:
    first = after_attempt(POLICY, 1, NOW, error="connection refused")
    assert first.state is OutboxState.PENDING
    assert first.next_attempt_at == NOW + timedelta(seconds=30)
    assert first.last_error == "connection refused" and first.sent_at is None
    third = after_attempt(POLICY, 3, NOW, error="421 busy")
    assert third.next_attempt_at == NOW + timedelta(seconds=120)
    last = after_attempt(POLICY, 5, NOW, error="421 busy")
    assert (last.state, last.next_attempt_at, last.last_error) == (
        OutboxState.FAILED, None, "421 busy",
    )  # fmt: skip


def test_a_permanent_refusal_gives_up_at_once() -> None:
    done = after_attempt(POLICY, 1, NOW, error="550 no such user", permanent=True)
    assert done.state is OutboxState.FAILED and done.last_error == "550 no such user"


def test_at_least_one_try() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)
