"""The write-behind of call records: the queue's deadlines, and the writer over a fake store.

No sleeping: the queue is driven by a FakeClock, the writer by `flush()` and by the
store's own signal that a batch arrived.
"""

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from telportal.calls_batch import CallRecordBatch, CallRecordWriter
from telportal.calls_store import Answered, Finish, RecordOp, Refused, Start
from telportal.clock import FakeClock
from telportal.errors import Conflict
from telportal.store.database import Database

AT = datetime(2026, 1, 1, tzinfo=UTC)


def answered(call_id: str) -> Answered:
    return Answered("t1", call_id, AT)


class FakeStore:
    """Keeps every batch it is given; refuses a second finish; breaks on `poison` calls."""

    def __init__(self, poison: str | None = None) -> None:
        self.db: Database = None  # type: ignore[assignment]  # the writer only passes it on
        self.batches: list[list[RecordOp]] = []
        self.finished: set[str] = set()
        self.poison = poison
        self.arrived = asyncio.Event()
        self.orphans_closed_after: int | None = None

    @property
    def ops(self) -> list[RecordOp]:
        return [op for batch in self.batches for op in batch]

    async def write(self, ops: Sequence[RecordOp]) -> list[Refused]:
        if any(op.call_id == self.poison for op in ops):
            raise RuntimeError("the database refused the batch")
        refused = []
        for op in ops:
            if isinstance(op, Finish):
                if op.call_id in self.finished:
                    refused.append(Refused(op, Conflict("already finished")))
                self.finished.add(op.call_id)
        self.batches.append(list(ops))
        self.arrived.set()
        return refused

    async def close_orphans(self, site: str, reason: str = "site restarted") -> int:
        self.orphans_closed_after = len(self.ops)
        return 0


# --- the queue ---------------------------------------------------------------------------


def test_the_oldest_operation_sets_the_deadline() -> None:
    clock = FakeClock()
    batch = CallRecordBatch(interval=0.05, size=100)
    assert batch.deadline() is None and not batch.due(clock.monotonic())
    assert batch.add(answered("a"), clock.monotonic()) is True  # armed: wake the flusher
    clock.advance(0.03)
    assert batch.add(answered("b"), clock.monotonic()) is False  # the deadline stays
    assert batch.deadline() == pytest.approx(0.05)
    assert not batch.due(clock.monotonic())
    clock.advance(0.02)
    assert batch.due(clock.monotonic())
    assert [op.call_id for op in batch.take()] == ["a", "b"]
    assert len(batch) == 0 and batch.deadline() is None


def test_a_full_batch_is_due_at_once_and_taken_a_batch_at_a_time() -> None:
    clock = FakeClock()
    batch = CallRecordBatch(interval=10, size=3)
    woke = [batch.add(answered(str(i)), clock.monotonic()) for i in range(7)]
    assert woke == [True, False, True, False, False, False, False]  # armed, then full
    assert batch.due(clock.monotonic())
    assert [op.call_id for op in batch.take()] == ["0", "1", "2"]
    assert batch.due(clock.monotonic())  # a full batch stays: due at once
    assert [op.call_id for op in batch.take()] == ["3", "4", "5"]
    assert len(batch) == 1 and not batch.due(clock.monotonic())
    clock.advance(10)
    assert batch.due(clock.monotonic())


def test_what_stays_after_a_batch_falls_due_by_its_own_oldest_operation() -> None:
    clock = FakeClock()
    batch = CallRecordBatch(interval=1.0, size=2)
    batch.add(answered("a"), clock.monotonic())
    clock.advance(0.5)
    batch.add(answered("b"), clock.monotonic())
    batch.add(answered("c"), clock.monotonic())
    assert [op.call_id for op in batch.take()] == ["a", "b"]
    assert batch.deadline() == pytest.approx(1.5)  # c's, not a's
    clock.advance(0.5)
    assert not batch.due(clock.monotonic())
    clock.advance(0.5)
    assert batch.due(clock.monotonic())


def test_the_queue_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError, match="interval"):
        CallRecordBatch(interval=-1)
    with pytest.raises(ValueError, match="size"):
        CallRecordBatch(size=0)


# --- the writer ----------------------------------------------------------------------------


async def test_before_open_every_operation_is_written_at_once() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock())
    await writer.answered("t1", "a")
    await writer.answered("t1", "b")
    assert [[op.call_id for op in b] for b in store.batches] == [["a"], ["b"]]


async def test_open_queues_and_a_flush_writes_one_batch_in_order() -> None:
    store, clock = FakeStore(), FakeClock()
    writer = CallRecordWriter(store, clock, interval=60)
    writer.open()
    try:
        record_id = await writer.start(
            "t1", "c1", site="s", direction="inbound", caller="1", called="2"
        )
        clock.advance(2)
        await writer.answered("t1", "c1")
        clock.advance(3)
        await writer.finish("t1", "c1", end_reason="bye", hangup_by="caller")
        assert store.batches == []  # nothing waited on the database
        await writer.flush()
        (batch,) = store.batches
        assert [type(op) for op in batch] == [Start, Answered, Finish]
        start, ok, end = batch
        assert isinstance(start, Start) and start.record_id == record_id
        # Stamped when they happened, not when they were written.
        assert isinstance(ok, Answered) and ok.at == start.started_at + timedelta(seconds=2)
        assert isinstance(end, Finish) and (end.ended_at - start.started_at).total_seconds() == 5
        assert writer.written == 3
    finally:
        await writer.aclose()


async def test_the_flusher_writes_on_its_own_when_the_batch_is_full() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=3600, batch_size=2)
    writer.open()
    try:
        await writer.answered("t1", "a")
        await writer.answered("t1", "b")  # full: the flusher wakes, the clock never moved
        async with asyncio.timeout(5):
            await store.arrived.wait()
        assert [op.call_id for op in store.ops] == ["a", "b"]
    finally:
        await writer.aclose()


async def test_what_comes_while_a_full_batch_is_written_waits_for_its_deadline() -> None:
    """Not written straight after in a transaction of its own (see `_write_due`)."""
    store = FakeStore()
    release = asyncio.Event()
    write = store.write

    async def slow_write(ops: Sequence[RecordOp]) -> list[Refused]:
        await release.wait()
        return await write(ops)

    store.write = slow_write  # type: ignore[method-assign]
    writer = CallRecordWriter(store, FakeClock(), interval=3600, batch_size=2)
    writer.open()
    try:
        await writer.answered("t1", "a")
        await writer.answered("t1", "b")  # full: the flusher starts writing a and b
        for _ in range(5):
            await asyncio.sleep(0)
        await writer.answered("t1", "c")  # comes while a and b are being written
        release.set()
        async with asyncio.timeout(5):
            await store.arrived.wait()
        for _ in range(20):
            await asyncio.sleep(0)
        assert [[op.call_id for op in batch] for batch in store.batches] == [["a", "b"]]
    finally:
        await writer.aclose()
    assert [[op.call_id for op in batch] for batch in store.batches] == [["a", "b"], ["c"]]


async def test_the_flusher_writes_on_its_own_when_the_deadline_passes() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=0)
    writer.open()
    try:
        await writer.answered("t1", "a")
        async with asyncio.timeout(5):
            await store.arrived.wait()
        assert [op.call_id for op in store.ops] == ["a"]
    finally:
        await writer.aclose()


async def test_refusals_are_logged_and_never_reach_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=60)
    writer.open()
    try:
        await writer.finish("t1", "a", end_reason="bye")
        await writer.finish("t1", "a", end_reason="bye again")  # the call layer's mistake
        await writer.answered("t1", "b")
        with caplog.at_level(logging.ERROR, logger="telportal.calls_batch"):
            await writer.flush()
        assert "call a: Finish refused: already finished" in caplog.text
        assert [op.call_id for op in store.ops] == ["a", "a", "b"]
    finally:
        await writer.aclose()


async def test_a_batch_the_database_refuses_is_written_call_by_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore(poison="bad")
    writer = CallRecordWriter(store, FakeClock(), interval=60)
    writer.open()
    try:
        for call_id in ("a", "bad", "b", "a"):
            await writer.answered("t1", call_id)
        with caplog.at_level(logging.WARNING, logger="telportal.calls_batch"):
            await writer.flush()
        # Only the bad call's records are lost; each other call's stay in order.
        assert [[op.call_id for op in b] for b in store.batches] == [["a", "a"], ["b"]]
        assert "call records of call bad were not written" in caplog.text
    finally:
        await writer.aclose()


async def test_close_writes_what_is_queued_and_later_operations_write_through() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=3600)
    writer.open()
    await writer.answered("t1", "a")
    await writer.answered("t1", "b")
    await writer.aclose()
    assert [op.call_id for op in store.ops] == ["a", "b"]
    await writer.answered("t1", "c")
    assert [op.call_id for op in store.ops] == ["a", "b", "c"]


async def test_orphans_are_closed_after_the_queue_is_written() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=3600)
    writer.open()
    try:
        await writer.answered("t1", "a")
        await writer.close_orphans("site-1")
        assert store.orphans_closed_after == 1
    finally:
        await writer.aclose()


async def test_a_queue_too_long_makes_the_call_layer_wait_for_a_flush() -> None:
    store = FakeStore()
    writer = CallRecordWriter(store, FakeClock(), interval=3600, batch_size=100, max_pending=3)
    writer.open()
    try:
        await writer.answered("t1", "a")
        await writer.answered("t1", "b")
        assert store.ops == []
        await writer.answered("t1", "c")  # the third waits until the queue is written
        assert [op.call_id for op in store.ops] == ["a", "b", "c"]
    finally:
        await writer.aclose()
