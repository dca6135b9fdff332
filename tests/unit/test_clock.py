"""The system clock: its readings are the C functions' own, aware and in UTC."""

import time
from datetime import UTC, datetime

from telportal.clock import Clock, SystemClock


def test_the_system_clock_reads_utc_wall_time_and_a_monotonic_clock() -> None:
    clock: Clock = SystemClock()
    before = datetime.now(UTC)
    now = clock.now()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC and before <= now <= after
    first = clock.monotonic()
    assert time.monotonic() >= first
    assert clock.monotonic() >= first
    # Plain attributes holding C callables, not Python methods: no frame a reading.
    assert clock.monotonic is time.monotonic
