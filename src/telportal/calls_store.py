"""Call records (CDRs): the call layer writes one per call, the API reads them.

Call records are data, not configuration: they are written in the write path's
transactions but without audit entries or revision bumps, and no site reloads
anything when one changes. When a call is finished a `CallFinished` event is
published after the commit, for wallboards and reports.

The call layer records, for each call: `start` when the call arrives, `answered`
when it is answered, `save_ivr` when its flow ends, `queued` and `connected` as
the ACD handles it, `add_leg` for every leg it places, and `finish` when it ends.
Each is an operation (`Start`, `Answered`, ...), stamped with the time it happened;
`CallRecords.write` applies a list of them, in order, in one transaction. What an
operation does to a call's row, and what the rules refuse, is decided without IO in
`telportal.calls_rows` (compiled, decision 0022); this module reads and writes rows.
The methods of `CallRecords` write one operation at once and raise what the rules
refuse. The call layer goes through `telportal.calls_batch.CallRecordWriter`, which
queues the operations and writes them in batches behind the calls (decision 0010).
Records a crash left open are closed by `close_orphans` when the site starts again.
"""

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError

from telportal.calls_rows import (
    MAX_TEXT,
    AddLeg,
    AddTransfer,
    Answered,
    CallRow,
    Connected,
    Direction,
    Finish,
    Key,
    Queued,
    RecordOp,
    Refused,
    SaveIvr,
    Start,
    play,
    remember,
    remembered_rows,
    unread,
    visit_json,
)
from telportal.errors import Conflict
from telportal.ivr.record import CallRecord
from telportal.store.database import Database
from telportal.store.ids import new_id
from telportal.store.schema import CallDetailRecord, Service
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Scope

# The operations and their rules live in `calls_rows` (compiled, without IO); they are
# this module's too, as the call layer and the API know them.
__all__ = [
    "MAX_TEXT",
    "AddLeg",
    "AddTransfer",
    "Answered",
    "CallRecords",
    "Connected",
    "Direction",
    "Finish",
    "Queued",
    "RecordOp",
    "Refused",
    "SaveIvr",
    "Start",
    "visit_json",
]

# Calls looked up per SELECT ... IN (...): well under SQLite's bound-parameter limit.
LOAD_CHUNK = 500

# Rows are written past the ORM (`_insert`, `_update`): built as ORM objects, their
# instrumented attributes and the unit of work's bookkeeping were most of what
# recording a call cost (bench/sip_calls.py), for a row written once here.
_TABLE: Final = cast(Table, CallDetailRecord.__table__)
_NAMES: Final = {column.key: column.name for column in _TABLE.columns}
# Open calls whose columns `CallRecords` remembers: far more than a site carries at once.
REMEMBER_OPEN_CALLS = 100_000
REMEMBER_SERVICES = 10_000
# A row the database refused (a duplicate call id, a service deleted meanwhile), from
# SQLAlchemy or from SQLite's own connection (store/sqlite_rows.py).
_CONSTRAINT_FAILED = (IntegrityError, sqlite3.IntegrityError)


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
        self._open: dict[Key, dict[str, Any]] = {}  # each call's columns set, by key
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
        async with self.db.write(self.scope) as uow:
            # Copies: what is remembered changes only once the transaction commits.
            rows = remembered_rows(ops, self._open)
            for call, values in (await _existing(uow, unread(ops, rows, trusting))).items():
                rows[call] = CallRow(values)
            played = play(ops, rows, await self._services(uow, ops))
            for event in played.events:
                uow.emit(event)
            await _insert(uow, [row.inserted() for row in played.started])
            await _update(uow, [row.updated() for row in rows.values() if row.changed])
        remember(self._open, rows, played.applied, self.remember)
        return played.refused

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
        self._open = {key: row for key, row in self._open.items() if row.get("site") != site}
        return closed


# The rows of some calls of one tenant; built once (statements cost more to build than
# SQLite takes to run them), the call ids bound as an expanding IN list.
_EXISTING = select(_TABLE).where(
    _TABLE.c.tenant_id == bindparam("tenant_id"),
    _TABLE.c.call_id.in_(bindparam("call_ids", expanding=True)),
)


async def _existing(uow: UnitOfWork, ops: Sequence[RecordOp]) -> dict[Key, dict[str, Any]]:
    """The rows already written for the calls in `ops`, as their columns by key: one
    query per tenant (and chunk). None at all when `ops` is empty."""
    wanted: dict[str, set[str]] = {}
    for op in ops:
        wanted.setdefault(op.tenant_id, set()).add(op.call_id)
    rows: dict[Key, dict[str, Any]] = {}
    for tenant_id, call_ids in wanted.items():
        ids = sorted(call_ids)
        for i in range(0, len(ids), LOAD_CHUNK):
            chunk = {"tenant_id": tenant_id, "call_ids": ids[i : i + LOAD_CHUNK]}
            for found in (await (await uow.connection()).execute(_EXISTING, chunk)).mappings():
                row = {key: found[name] for key, name in _NAMES.items()}
                rows[(row["tenant_id"], row["call_id"])] = row
    return rows


async def _insert(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    """INSERT new rows (`CallRow.inserted`): one statement per set of columns."""
    for group in _by_columns(rows):
        await uow.insert(_TABLE, group)


async def _update(uow: UnitOfWork, rows: list[dict[str, Any]]) -> None:
    """UPDATE rows written before (`CallRow.updated`): of each, the columns that
    changed, one statement per set of columns. The tenant is matched with the id, as
    every query matches it."""
    for group in _by_columns(rows):
        await uow.update(_TABLE, ("id", "tenant_id"), group)


def _by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """`rows` grouped by the columns they give, in order: one statement a group."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for values in rows:
        groups.setdefault(tuple(values), []).append(values)
    return list(groups.values())
