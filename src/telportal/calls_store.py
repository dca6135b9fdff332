"""Call records (CDRs): the call layer writes one per call, the API reads them.

Call records are data, not configuration: they are written in the write path's
transactions but without audit entries or revision bumps, and no site reloads
anything when one changes. When a call is finished a `CallFinished` event is
published after the commit, for wallboards and reports.

The call layer records, for each call: `start` when the call arrives, `answered`
when it is answered, `save_ivr` when its flow ends, `queued` and `connected` as
the ACD handles it, `add_leg` for every leg it places, and `finish` when it ends.
Each is an operation (`Start`, `Answered`, ... below), stamped with the time it
happened; `CallRecords.write` applies a list of them, in order, in one transaction.
The methods of `CallRecords` write one operation at once and raise what the rules
refuse. The call layer goes through `telportal.calls_batch.CallRecordWriter`, which
queues the operations and writes them in batches behind the calls (decision 0010).
Records a crash left open are closed by `close_orphans` when the site starts again.
"""

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Final, Literal, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from telportal.errors import Conflict, DomainError, Invalid, NotFound
from telportal.events.types import CallFinished
from telportal.ivr.record import CallRecord, Visit
from telportal.store.database import Database
from telportal.store.schema import CallDetailRecord, Service, new_id
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

Direction = Literal["inbound", "outbound", "internal"]
MAX_TEXT = 200  # end_reason and outcome columns
# Calls looked up per SELECT ... IN (...): well under SQLite's bound-parameter limit.
LOAD_CHUNK = 500

# A call first recorded in this write: its columns by name (None: not set), kept out of
# the ORM and inserted with the others of the batch in one statement (`_insert`). Built
# as an ORM object, its instrumented attributes and the unit of work's bookkeeping were
# most of what recording a call cost (bench/sip_calls.py), for a row written once here.
_TABLE: Final = cast(Table, CallDetailRecord.__table__)
_COLUMNS: Final = tuple(column.key for column in _TABLE.columns)
_NAMES: Final = {column.key: column.name for column in _TABLE.columns}
_Row = SimpleNamespace
# Open calls whose columns `CallRecords` remembers: far more than a site carries at once.
REMEMBER_OPEN_CALLS = 100_000
REMEMBER_SERVICES = 10_000
# A row the database refused (a duplicate call id, a service deleted meanwhile), from
# SQLAlchemy or from SQLite's own connection (store/sqlite_rows.py).
_CONSTRAINT_FAILED = (IntegrityError, sqlite3.IntegrityError)


def visit_json(visit: Visit) -> dict[str, Any]:
    return {
        "step": visit.step,
        "type": visit.type,
        "at": visit.at.isoformat(),
        "elapsed": round(visit.elapsed, 3),
        "keys": list(visit.inputs),
        "outcome": visit.outcome,
        "notes": list(visit.notes),
    }


# --- operations: what the call layer records, stamped when it happened ---------------


@dataclass(frozen=True, slots=True)
class Start:
    tenant_id: str
    call_id: str
    record_id: str
    site: str
    direction: Direction
    caller: str
    called: str
    service_id: str | None
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Answered:
    tenant_id: str
    call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class SaveIvr:
    """What the call did in its flow; `flow_version` is the published version it ran."""

    tenant_id: str
    call_id: str
    path: list[dict[str, Any]]
    digits: list[str]
    outcome: str
    flow_version: int | None

    @classmethod
    def of(
        cls, tenant_id: str, call_id: str, record: CallRecord, flow_version: int | None
    ) -> "SaveIvr":
        path = [visit_json(v) for v in record.path]
        return cls(tenant_id, call_id, path, list(record.digits), record.outcome, flow_version)


@dataclass(frozen=True, slots=True)
class Queued:
    """The call entered a queue (the first queue counts for the wait)."""

    tenant_id: str
    call_id: str
    queue: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Connected:
    """An agent answered and was put through; the wait ends here."""

    tenant_id: str
    call_id: str
    agent_id: str | None
    extension: str | None
    routing: dict[str, Any] | None
    recording: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AddLeg:
    """One leg placed for the call (an agent's phone, a trunk...), as it ended."""

    tenant_id: str
    call_id: str
    leg: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AddTransfer:
    tenant_id: str
    call_id: str
    transfer: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Finish:
    """The record is closed and `CallFinished` announced. A call is finished once."""

    tenant_id: str
    call_id: str
    end_reason: str
    ended_at: datetime
    outcome: str | None
    hangup_by: str | None


RecordOp = Start | Answered | SaveIvr | Queued | Connected | AddLeg | AddTransfer | Finish


@dataclass(frozen=True, slots=True)
class Refused:
    """An operation `write` left out, and why; the rest of its list was applied."""

    op: RecordOp
    error: DomainError


class CallRecords:
    """The call records of one process's calls. It remembers the columns of the calls it
    started and has not finished (`open_calls`), as committed, so that their later
    operations (answered, finish...) are applied without reading the row back: an
    UPDATE of the columns that changed, in one statement per set of columns. A call it
    does not remember (started before a restart, or forgotten past `remember` calls)
    is read from the database first, as any call was before."""

    def __init__(self, db: Database, *, remember: int = REMEMBER_OPEN_CALLS) -> None:
        self.db = db
        self.scope = Scope.system("calls")
        self.remember = remember
        self._open: dict[tuple[str, str], SimpleNamespace] = {}
        # The tenant of each service a start named, as read from the database.
        self._service_tenants: dict[str, str] = {}

    @property
    def open_calls(self) -> int:
        """Calls started here and not finished whose columns are remembered."""
        return len(self._open)

    async def write(self, ops: Sequence[RecordOp]) -> list[Refused]:
        """Apply `ops` in order in one transaction; `CallFinished` events follow the commit.

        What the rules refuse (a call started twice or finished twice, an operation on
        a call never started, a service of another tenant) is left out and returned;
        the rest is applied. A database error rolls back the whole list and is raised.

        The first try trusts that a call started here is new and that a service seen
        before still exists, and so reads nothing back for them (two queries a batch,
        a quarter of what recording cost). The database's constraints check both; if
        one fails, the whole list is applied again with every check made here.
        """
        try:
            return await self._write(ops, trusting=True)
        except _CONSTRAINT_FAILED:
            self._service_tenants.clear()
            return await self._write(ops, trusting=False)

    async def _write(self, ops: Sequence[RecordOp], *, trusting: bool) -> list[Refused]:
        refused: list[Refused] = []
        async with self.db.write(self.scope) as uow:
            # Copies: what is remembered changes only once the transaction commits.
            rows = {key: SimpleNamespace(**vars(self._open[key])) for key in
                    _keys(ops) if key in self._open}  # fmt: skip
            before = {key: vars(row).copy() for key, row in rows.items()}
            starting = {_key(op) for op in ops if isinstance(op, Start)} if trusting else set()
            unknown = [op for op in ops if _key(op) not in rows and _key(op) not in starting]
            loaded = await _existing(uow, unknown)
            for key, row in loaded.items():
                rows[key], before[key] = row, vars(row).copy()
            services = await self._services(uow, ops)
            started: list[SimpleNamespace] = []
            applied: set[tuple[str, str]] = set()
            for op in ops:
                key = (op.tenant_id, op.call_id)
                error = _refusal(op, rows.get(key), services)
                if error is not None:
                    refused.append(Refused(op, error))
                    continue
                applied.add(key)
                if isinstance(op, Start):
                    record = _new_record(op)
                    rows[key] = record
                    started.append(record)
                elif isinstance(op, Finish):
                    uow.emit(_finish(rows[key], op))
                else:
                    _apply(rows[key], op)
            await _insert(uow, started)
            await _update(uow, [(before[key], rows[key]) for key in before])
        self._remember({key: rows[key] for key in applied})
        return refused

    async def _services(self, uow: UnitOfWork, ops: Sequence[RecordOp]) -> set[tuple[str, str]]:
        """(service id, tenant id) of the services the starts in `ops` name, when they
        exist: those not seen before read from the database."""
        ids = {op.service_id for op in ops if isinstance(op, Start) and op.service_id is not None}
        known = self._service_tenants
        missing = sorted(ids - known.keys())
        if missing:
            q = select(Service.id, Service.tenant_id).where(Service.id.in_(missing))
            found = (await uow.session.execute(q)).all()
            if len(known) + len(found) > REMEMBER_SERVICES:
                known.clear()
            known.update((sid, tid) for sid, tid in found)
        return {(sid, known[sid]) for sid in ids if sid in known}

    def _remember(self, rows: dict[tuple[str, str], SimpleNamespace]) -> None:
        """After the commit: keep the calls still open, forget the finished ones. Only
        the calls this process wrote to: a row read only to refuse an operation (a
        call recorded elsewhere) is not taken for one of ours."""
        for key, row in rows.items():
            if row.ended_at is None:
                self._open.pop(key, None)  # re-inserted last: the oldest go first
                self._open[key] = row
            else:
                self._open.pop(key, None)
        while len(self._open) > self.remember:
            del self._open[next(iter(self._open))]

    async def _one(self, op: RecordOp) -> None:
        """Write one operation now; raise what the rules refuse."""
        try:
            refused = await self.write([op])
        except _CONSTRAINT_FAILED:
            if not isinstance(op, Start):
                raise
            # Another process recorded the same call between the look-up and the insert.
            raise Conflict(f"call {op.call_id!r} is already recorded") from None
        if refused:
            raise refused[0].error

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
        """Record a new call; returns the record's id. A call id is recorded once per tenant."""
        record_id = new_id()
        started = started_at or self.db.clock.now()
        await self._one(
            Start(
                tenant_id, call_id, record_id, site, direction, caller, called, service_id, started
            )
        )
        return record_id

    async def answered(self, tenant_id: str, call_id: str, at: datetime | None = None) -> None:
        await self._one(Answered(tenant_id, call_id, at or self.db.clock.now()))

    async def save_ivr(
        self, tenant_id: str, call_id: str, record: CallRecord, flow_version: int | None = None
    ) -> None:
        await self._one(SaveIvr.of(tenant_id, call_id, record, flow_version))

    async def queued(
        self, tenant_id: str, call_id: str, queue: str, at: datetime | None = None
    ) -> None:
        await self._one(Queued(tenant_id, call_id, queue, at or self.db.clock.now()))

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
        now = at or self.db.clock.now()
        await self._one(Connected(tenant_id, call_id, agent_id, extension, routing, recording, now))

    async def add_leg(self, tenant_id: str, call_id: str, leg: dict[str, Any]) -> None:
        await self._one(AddLeg(tenant_id, call_id, leg))

    async def add_transfer(self, tenant_id: str, call_id: str, transfer: dict[str, Any]) -> None:
        await self._one(AddTransfer(tenant_id, call_id, transfer))

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
        ended = ended_at or self.db.clock.now()
        await self._one(Finish(tenant_id, call_id, end_reason, ended, outcome, hangup_by))

    async def close_orphans(self, site: str, reason: str = "site restarted") -> int:
        """Close the records this site left open when it stopped without ending its calls.

        Their end time is unknown; the restart time is the honest upper bound, and the
        reason says so. Returns how many were closed.
        """
        async with self.db.write(self.scope) as uow:
            result = await uow.session.execute(
                update(CallDetailRecord)
                .where(CallDetailRecord.site == site, CallDetailRecord.ended_at.is_(None))
                .values(ended_at=uow.clock.now(), end_reason=reason, hangup_by="system")
            )
            closed = int(getattr(result, "rowcount", 0) or 0)
        # Whatever this process remembered of the site's calls is closed now.
        self._open = {key: row for key, row in self._open.items() if row.site != site}
        return closed


# The rows of some calls of one tenant; built once (statements cost more to build than
# SQLite takes to run them), the call ids bound as an expanding IN list.
_EXISTING = select(_TABLE).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"),
    _TABLE.c.call_id.in_(bindparam("call_ids", expanding=True)),
)


def _key(op: RecordOp) -> tuple[str, str]:
    return (op.tenant_id, op.call_id)


def _keys(ops: Sequence[RecordOp]) -> dict[tuple[str, str], None]:
    return dict.fromkeys(_key(op) for op in ops)


async def _existing(
    uow: UnitOfWork, ops: Sequence[RecordOp]
) -> dict[tuple[str, str], SimpleNamespace]:
    """The rows already written for the calls in `ops`, as namespaces of their columns:
    one query per tenant (and chunk). None at all when `ops` is empty."""
    wanted: dict[str, set[str]] = {}
    for op in ops:
        wanted.setdefault(op.tenant_id, set()).add(op.call_id)
    rows: dict[tuple[str, str], SimpleNamespace] = {}
    for tenant_id, call_ids in wanted.items():
        ids = sorted(call_ids)
        for i in range(0, len(ids), LOAD_CHUNK):
            chunk = {"tenant_id": tenant_id, "call_ids": ids[i : i + LOAD_CHUNK]}
            for found in (await (await uow.connection()).execute(_EXISTING, chunk)).mappings():
                row = SimpleNamespace(**{key: found[name] for key, name in _NAMES.items()})
                rows[(row.tenant_id, row.call_id)] = row
    return rows


def _refusal(op: RecordOp, row: _Row | None, services: set[tuple[str, str]]) -> DomainError | None:
    """Why the rules refuse `op` on the call's `row` (None: not written yet), if they do."""
    if isinstance(op, Start):
        if row is not None:
            return Conflict(f"call {op.call_id!r} is already recorded")
        if op.service_id is not None and (op.service_id, op.tenant_id) not in services:
            return Invalid("service_id", "no such service")
        return None
    if row is None:
        return NotFound("call")
    if isinstance(op, Finish) and row.ended_at is not None:
        return Conflict(f"call {op.call_id!r} is already finished")
    return None


def _new_record(op: Start) -> SimpleNamespace:
    record = SimpleNamespace(**dict.fromkeys(_COLUMNS))
    record.id = op.record_id
    record.tenant_id = op.tenant_id
    record.call_id = op.call_id
    record.site = op.site
    record.direction = op.direction
    record.caller = op.caller
    record.called = op.called
    record.service_id = op.service_id
    record.started_at = op.started_at
    record.ivr_path, record.digits, record.legs, record.transfers = [], [], [], []
    return record


async def _insert(uow: UnitOfWork, records: list[SimpleNamespace]) -> None:
    """INSERT the new records: one statement per set of columns given a value.

    A column left None is left out, as the ORM leaves out an attribute never set: the
    column's default applies, and a JSON column is SQL NULL rather than JSON null.
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for record in records:
        values = {name: value for name, value in vars(record).items() if value is not None}
        groups.setdefault(tuple(values), []).append(values)
    for rows in groups.values():
        await uow.insert(_TABLE, rows)


async def _update(uow: UnitOfWork, changes: list[tuple[dict[str, Any], SimpleNamespace]]) -> None:
    """UPDATE the records that were written before: of each, the columns whose value
    changed (`changes` pairs the columns as read with the record now), one statement
    per set of columns. The tenant is matched with the id, as every query matches it."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for before, record in changes:
        now = vars(record)
        values = {name: value for name, value in now.items() if before[name] != value}
        if values:
            values["id"], values["tenant_id"] = record.id, record.tenant_id
            groups.setdefault(tuple(values), []).append(values)
    for rows in groups.values():
        await uow.update(_TABLE, ("id", "tenant_id"), rows)


def _apply(row: _Row, op: RecordOp) -> None:
    if isinstance(op, Answered):
        if row.answered_at is None:
            row.answered_at = op.at
    elif isinstance(op, SaveIvr):
        row.flow_version = op.flow_version
        row.ivr_path = op.path
        row.digits = op.digits
        row.outcome = op.outcome[:MAX_TEXT]
    elif isinstance(op, Queued):
        row.queue = op.queue[:100]
        if row.queued_at is None:
            row.queued_at = op.at
    elif isinstance(op, Connected):
        row.agent_id, row.agent_extension = op.agent_id, op.extension
        row.connected_at = op.at
        if row.queued_at is not None:
            row.wait_seconds = round((op.at - row.queued_at).total_seconds(), 3)
        if op.routing is not None:
            row.routing = op.routing
        if op.recording is not None:
            row.recording = op.recording[:500]
    elif isinstance(op, AddLeg):
        row.legs = [*(row.legs or []), _jsonable(op.leg)]
    elif isinstance(op, AddTransfer):
        row.transfers = [*(row.transfers or []), _jsonable(op.transfer)]


def _finish(row: _Row, op: Finish) -> CallFinished:
    """Close `row` as `op` says; the event that announces it."""
    reason = op.end_reason[:MAX_TEXT]
    row.ended_at, row.end_reason = op.ended_at, reason
    if op.hangup_by is not None:
        row.hangup_by = op.hangup_by[:16]
    if row.connected_at is not None:
        row.talk_seconds = round((op.ended_at - row.connected_at).total_seconds(), 3)
    if op.outcome is not None:
        row.outcome = op.outcome[:MAX_TEXT]
    return CallFinished(
        tenant_id=op.tenant_id,
        at=op.ended_at,
        record_id=row.id,
        call_id=op.call_id,
        service_id=row.service_id,
        caller=row.caller,
        called=row.called,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=op.ended_at,
        end_reason=reason,
        outcome=row.outcome,
        queue=row.queue,
        agent_id=row.agent_id,
        wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds,
        hangup_by=row.hangup_by,
    )


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO text: JSON columns hold plain values only."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}
