"""Call records written behind the calls: queued in memory, written in batches.

Three transactions per call (start, answered, finish) cost a B2BUA call several times
what its SIP costs, and made every call wait on the database. The call layer instead
hands each operation to a `CallRecordWriter` (decision 0010), which stamps it with
the time it happened, queues it and returns at once. A flusher task writes the queue
in one transaction per batch (`CallRecords.write`): when the oldest operation has
waited `interval` seconds, or as soon as `batch_size` operations are waiting; what
stays after a batch waits for its own deadline.

- **Order.** One queue, written oldest first, one batch at a time: a call's
  operations reach the database in the order they happened.
- **Errors** never reach the call: an operation the rules refuse (a call finished
  twice) is logged and the rest of its batch is written; a batch the database refuses
  is written again call by call, so one bad call costs only its own records.
- **Events.** `CallFinished` is published after the commit of the batch that closed
  the record, as before.
- **Shutdown.** `aclose()` (the SIP service's `stop`, so on SIGTERM) writes what is
  queued. A process killed outright loses at most the last `interval` of operations;
  records it left open are closed by `close_orphans` at the next start.
- **Back-pressure.** If the database falls behind by `max_pending` operations, the
  next operation waits for a flush instead of growing the queue without bound.

Before `open()` and after `aclose()` nothing runs in the background and every
operation is written at once (write-through). `CallRecordBatch` is the queue and its
deadline without IO: tests drive it with a `FakeClock`, and the writer with `flush()`.
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from telportal.calls_rows import (
    AddLeg,
    AddTransfer,
    Answered,
    Connected,
    Direction,
    Finish,
    Queued,
    RecordOp,
    Refused,
    SaveIvr,
    Start,
)
from telportal.clock import Clock
from telportal.ivr.record import CallRecord
from telportal.store.database import Database
from telportal.store.ids import new_id

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.05  # seconds the oldest queued operation may wait
BATCH_SIZE = 500  # operations per transaction, and the count that flushes at once
MAX_PENDING = 50_000  # queued operations beyond which the call layer waits for a flush


class RecordStore(Protocol):
    """What the writer writes to: `CallRecords` (tests give it a fake)."""

    db: Database

    async def write(self, ops: Sequence[RecordOp]) -> list[Refused]: ...

    async def close_orphans(self, site: str, reason: str = "site restarted") -> int: ...


class CallRecordBatch:
    """Operations waiting to be written, oldest first, and when they fall due."""

    def __init__(self, interval: float = FLUSH_INTERVAL, size: int = BATCH_SIZE) -> None:
        if interval < 0 or size < 1:
            raise ValueError("interval must be >= 0 and size >= 1")
        self.interval = interval
        self.size = size
        self._ops: list[RecordOp] = []
        self._times: list[float] = []  # when each queued operation came, oldest first

    def __len__(self) -> int:
        return len(self._ops)

    def add(self, op: RecordOp, now: float) -> bool:
        """Queue `op`. True when the flusher must look again: the first operation
        armed the deadline, or the batch just became full."""
        self._ops.append(op)
        self._times.append(now)
        return len(self._ops) == 1 or len(self._ops) == self.size

    def deadline(self) -> float | None:
        """When the queue must be written; None when it is empty."""
        return self._times[0] + self.interval if self._times else None

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and (len(self._ops) >= self.size or now >= deadline)

    def take(self) -> list[RecordOp]:
        """The oldest `size` operations. What stays falls due by its own oldest
        operation's time (or at once, if a full batch stays)."""
        size = self.size
        taken, self._ops = self._ops[:size], self._ops[size:]
        del self._times[:size]
        return taken


class CallRecordWriter:
    """What the call layer records through: the methods of `CallRecords`, written behind.

    The methods queue an operation and return; they never raise (a refused operation
    is logged when its batch is written). `start` returns the record's id at once.
    """

    def __init__(
        self,
        records: RecordStore,
        clock: Clock,
        *,
        interval: float = FLUSH_INTERVAL,
        batch_size: int = BATCH_SIZE,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.records = records
        self.db: Database = records.db  # readers beside the call layer use it
        self.clock = clock
        self.batch = CallRecordBatch(interval, batch_size)
        self.max_pending = max_pending
        self.written = 0  # operations written (or refused and logged) so far
        self._lock = asyncio.Lock()  # one batch in flight: keeps the order
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------

    def open(self) -> None:
        """Start writing behind: a flusher task writes the queue as it falls due."""
        if self._task is None:
            self._closing = False
            self._task = asyncio.create_task(self._run(), name="call-record-writer")

    async def aclose(self) -> None:
        """Stop the flusher and write everything queued; later operations write through."""
        task, self._task = self._task, None
        if task is not None:
            self._closing = True
            self._wake.set()
            await task
        await self.flush()

    async def flush(self) -> None:
        """Write everything queued so far (and what comes meanwhile); return once it is."""
        async with self._lock:
            while self.batch:
                await self._write(self.batch.take())
                if self.batch:
                    await asyncio.sleep(0)  # let the calls run between big batches

    async def _run(self) -> None:
        while not self._closing:
            now = self.clock.monotonic()
            if self.batch.due(now):
                await self._write_due()
                continue
            self._wake.clear()
            deadline = self.batch.deadline()
            delay = None if deadline is None else max(0.0, deadline - now)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _write_due(self) -> None:
        """One batch, if one is due. Not the whole queue, as `flush` writes it: the
        operations that came while a full batch was written would each be written
        in a transaction of a few, one after another (five times the transactions
        at full speed, bench/sip_calls.py), instead of waiting for their deadline."""
        async with self._lock:
            if self.batch.due(self.clock.monotonic()):  # a flush may have emptied it
                await self._write(self.batch.take())

    async def _write(self, ops: Sequence[RecordOp]) -> None:
        try:
            refused = await self.records.write(ops)
        except Exception:
            calls = _by_call(ops)
            if len(calls) == 1:
                log.exception("call records of call %s were not written", ops[0].call_id)
                refused = []
            else:
                log.warning("a batch of %d call records failed; writing them one call at a "
                            "time", len(calls), exc_info=True)  # fmt: skip
                refused = await self._write_each(calls)
        for r in refused:
            log.error(
                "call record of call %s: %s refused: %s", r.op.call_id, type(r.op).__name__, r.error
            )
        self.written += len(ops)

    async def _write_each(self, calls: list[list[RecordOp]]) -> list[Refused]:
        refused: list[Refused] = []
        lost: list[str] = []
        for ops in calls:
            try:
                refused += await self.records.write(ops)
            except Exception:
                if not lost:
                    log.exception("call records of call %s were not written", ops[0].call_id)
                lost.append(ops[0].call_id)
        if len(lost) > 1:
            log.error("call records of %d calls were not written: %s", len(lost), lost[:20])
        return refused

    def _queued(self, op: RecordOp) -> bool:
        """Queue `op`; True when the caller must wait for a flush: write-through when
        not open, back-pressure when behind. Not a coroutine: an operation costs no
        await unless it has to wait."""
        if self.batch.add(op, self.clock.monotonic()):
            self._wake.set()
        return self._task is None or len(self.batch) >= self.max_pending

    # --- the operations (the signatures of `CallRecords`) --------------------------

    async def start(
        self,
        tenant_id: str,
        call_id: str,
        *,
        site: str,
        direction: Direction,
        caller: str,
        called: str,
        service_id: str | None = None,
        started_at: datetime | None = None,
    ) -> str:
        record_id = new_id()
        started = started_at or self.clock.now()
        op = Start(
            tenant_id, call_id, record_id, site, direction, caller, called, service_id, started
        )
        if self._queued(op):
            await self.flush()
        return record_id

    async def answered(self, tenant_id: str, call_id: str, at: datetime | None = None) -> None:
        if self._queued(Answered(tenant_id, call_id, at or self.clock.now())):
            await self.flush()

    async def save_ivr(
        self, tenant_id: str, call_id: str, record: CallRecord, flow_version: int | None = None
    ) -> None:
        if self._queued(SaveIvr.of(tenant_id, call_id, record, flow_version)):
            await self.flush()

    async def queued(
        self, tenant_id: str, call_id: str, queue: str, at: datetime | None = None
    ) -> None:
        if self._queued(Queued(tenant_id, call_id, queue, at or self.clock.now())):
            await self.flush()

    async def connected(
        self,
        tenant_id: str,
        call_id: str,
        *,
        agent_id: str | None,
        extension: str | None,
        routing: dict[str, Any] | None = None,
        recording: str | None = None,
        at: datetime | None = None,
    ) -> None:
        now = at or self.clock.now()
        if self._queued(
            Connected(tenant_id, call_id, agent_id, extension, routing, recording, now)
        ):
            await self.flush()

    async def add_leg(self, tenant_id: str, call_id: str, leg: dict[str, Any]) -> None:
        if self._queued(AddLeg(tenant_id, call_id, dict(leg))):
            await self.flush()

    async def add_transfer(self, tenant_id: str, call_id: str, transfer: dict[str, Any]) -> None:
        if self._queued(AddTransfer(tenant_id, call_id, dict(transfer))):
            await self.flush()

    async def finish(
        self,
        tenant_id: str,
        call_id: str,
        *,
        end_reason: str,
        ended_at: datetime | None = None,
        outcome: str | None = None,
        hangup_by: str | None = None,
    ) -> None:
        ended = ended_at or self.clock.now()
        if self._queued(Finish(tenant_id, call_id, end_reason, ended, outcome, hangup_by)):
            await self.flush()

    async def close_orphans(self, site: str, reason: str = "site restarted") -> int:
        """`CallRecords.close_orphans`, after what is queued is written."""
        await self.flush()
        return await self.records.close_orphans(site, reason)


def _by_call(ops: Sequence[RecordOp]) -> list[list[RecordOp]]:
    """`ops` grouped by call, each call's in their order."""
    calls: dict[tuple[str, str], list[RecordOp]] = {}
    for op in ops:
        calls.setdefault((op.tenant_id, op.call_id), []).append(op)
    return list(calls.values())
