"""The shared tick scheduler, driven on explicit times: accounting, catch-up, skipping."""

import pytest

from telportal.media.scheduler import (
    PHASE_HOUSEKEEPING,
    PHASE_MIX,
    PHASE_RECORD,
    PHASE_SEND,
    TickScheduler,
)

TICK = 0.020


class Recorder:
    def __init__(self, name: str = "client", log: list[tuple[str, int, float]] | None = None):
        self.name = name
        self.log = log if log is not None else []

    def on_tick(self, frame: int, now: float) -> None:
        self.log.append((self.name, frame, now))

    @property
    def frames(self) -> list[int]:
        return [frame for name, frame, _ in self.log if name == self.name]


def drive(scheduler: TickScheduler, until: float, start: float = 0.0) -> None:
    """Wake exactly when the scheduler asks, like the asyncio ticker on an idle loop."""
    now = start
    while True:
        wake = scheduler.next_wake(now)
        if wake is None or wake > until + 1e-12:
            return
        now = max(now, wake)
        scheduler.run_due(now)


def test_on_time_ticks_run_each_client_once_per_frame() -> None:
    scheduler = TickScheduler(0.0)
    client = Recorder()
    scheduler.subscribe(client)
    drive(scheduler, 1.0 - 1e-9)
    assert client.frames == list(range(50))
    stats = scheduler.stats
    assert (stats.ticks_run, stats.ticks_late, stats.ticks_skipped) == (50, 0, 0)
    assert stats.max_lateness == pytest.approx(0.0, abs=1e-9)


def test_nothing_runs_before_the_deadline() -> None:
    scheduler = TickScheduler(0.0)
    client = Recorder()
    scheduler.subscribe(client)
    assert scheduler.run_due(0.0) == 1
    assert scheduler.run_due(0.019) == 0
    assert scheduler.run_due(0.020) == 1
    assert client.frames == [0, 1]


def test_a_stall_is_caught_up_one_extra_tick_per_period_not_in_a_burst() -> None:
    scheduler = TickScheduler(0.0, max_late_frames=3, catch_up_per_wake=1)
    client = Recorder()
    scheduler.subscribe(client)
    scheduler.run_due(0.0)
    # The loop stalls 65 ms: frames 1, 2 and 3 are due at once at 0.065.
    bursts = [scheduler.run_due(0.065)]
    now = 0.065
    while True:
        wake = scheduler.next_wake(now)
        assert wake is not None
        assert wake > now, "a backlog must never ask for an immediate wake-up"
        now = wake
        if now > 0.2:
            break
        bursts.append(scheduler.run_due(now))
    # Never more than two ticks per wake-up: one due, one caught up.
    assert max(bursts) == 2
    assert client.frames == list(range(client.frames[-1] + 1)), "no frame lost"
    assert scheduler.stats.ticks_skipped == 0
    assert scheduler.stats.ticks_late >= 2
    assert scheduler.stats.max_lateness == pytest.approx(0.045)


def test_more_than_max_late_frames_behind_skips_the_oldest_and_counts_them() -> None:
    scheduler = TickScheduler(0.0, max_late_frames=3, catch_up_per_wake=1)
    client = Recorder()
    scheduler.subscribe(client)
    scheduler.run_due(0.0)
    # 500 ms stall: frames 1-25 due; only the newest 4 frames (3 late + current) are kept.
    ran = scheduler.run_due(0.5)
    assert ran == 2
    assert scheduler.stats.ticks_skipped == 21
    assert client.frames == [0, 22, 23]
    drive(scheduler, 0.6, start=0.5)
    frames = client.frames
    assert frames[:5] == [0, 22, 23, 24, 25]
    assert frames == [0, *range(22, frames[-1] + 1)]
    assert scheduler.stats.ticks_skipped == 21


def test_slots_spread_clients_over_the_frame() -> None:
    scheduler = TickScheduler(0.0, slots=4)
    log: list[tuple[str, int, float]] = []
    clients = [Recorder(f"c{i}", log) for i in range(8)]
    for client in clients:
        scheduler.subscribe(client)
    assert sorted(scheduler.slot_of(c) for c in clients) == [0, 0, 1, 1, 2, 2, 3, 3]
    drive(scheduler, 0.1 - 1e-9)
    for client in clients:
        times = [now for name, _, now in log if name == client.name]
        assert client.frames == [0, 1, 2, 3, 4]
        # Each client at its slot's offset in every frame, 20 ms apart.
        offset = scheduler.slot_of(client) * TICK / 4
        assert times == pytest.approx([offset + k * TICK for k in range(5)])


def test_phases_run_in_order_within_a_tick() -> None:
    scheduler = TickScheduler(0.0)
    log: list[tuple[str, int, float]] = []
    for name, phase in [
        ("housekeeping", PHASE_HOUSEKEEPING),
        ("record", PHASE_RECORD),
        ("send", PHASE_SEND),
        ("mix", PHASE_MIX),
    ]:
        scheduler.subscribe(Recorder(name, log), phase)
    scheduler.run_due(0.0)
    assert [name for name, _, _ in log] == ["mix", "send", "record", "housekeeping"]


def test_idle_scheduler_sleeps_and_does_not_count_idle_time_as_backlog() -> None:
    scheduler = TickScheduler(0.0)
    assert scheduler.next_wake(5.0) is None
    client = Recorder()
    scheduler.subscribe(client)
    assert scheduler.run_due(10.0) == 1
    assert scheduler.stats.ticks_skipped == 0
    assert client.frames == [500]
    scheduler.unsubscribe(client)
    assert scheduler.next_wake(10.0) is None


def test_a_client_that_unsubscribes_during_its_tick() -> None:
    scheduler = TickScheduler(0.0)

    class Once:
        runs = 0

        def on_tick(self, frame: int, now: float) -> None:
            self.runs += 1
            scheduler.unsubscribe(self)

    once = Once()
    scheduler.subscribe(once)
    drive(scheduler, 0.1)
    assert once.runs == 1
    assert len(scheduler) == 0


def test_a_failing_client_is_removed_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = TickScheduler(0.0)

    class Broken:
        def on_tick(self, frame: int, now: float) -> None:
            raise RuntimeError("boom")

    good = Recorder()
    scheduler.subscribe(Broken())
    scheduler.subscribe(good)
    drive(scheduler, 0.05)
    assert good.frames == [0, 1, 2]
    assert scheduler.stats.client_errors == 1
    assert "failed and was removed" in caplog.text


def test_empty_slots_are_passed_over_without_counting() -> None:
    scheduler = TickScheduler(0.0, slots=10)
    client = Recorder()
    scheduler.subscribe(client)
    drive(scheduler, 0.1 - 1e-9)
    assert client.frames == [0, 1, 2, 3, 4]
    assert scheduler.stats.ticks_run == 5
    assert scheduler.stats.wakeups == 5


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="slots"):
        TickScheduler(0.0, slots=0)
    with pytest.raises(ValueError, match="cannot be negative"):
        TickScheduler(0.0, max_late_frames=-1)
    with pytest.raises(ValueError, match="phase"):
        TickScheduler(0.0).subscribe(Recorder(), 9)
