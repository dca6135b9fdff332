"""The call records' rules without IO: the operations the call layer records, and
how each changes a call's row.

`telportal.calls_store.CallRecords` reads and writes the rows; this module decides
what they become. A row (`CallRow`) is a dict of the columns set, by column key: a
column missing from it is NULL. It also keeps the columns an operation changed, so
that the store updates only those, without comparing a copy of every column.

Every call the B2BUA handles passes its four to six operations through here, so the
module is compiled with mypyc (decision 0022), and its records write out their
`__init__` (decision 0021).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, final

from telportal.errors import Conflict, DomainError, Invalid, NotFound
from telportal.events.types import CallFinished
from telportal.ivr.record import CallRecord, Visit
from telportal.store.row_values import iso_text

Direction = Literal["inbound", "outbound", "internal"]
MAX_TEXT = 200  # end_reason and outcome columns
Key = tuple[str, str]  # (tenant id, call id)


def visit_json(visit: Visit) -> dict[str, Any]:
    return {
        "step": visit.step,
        "type": visit.type,
        "at": iso_text(visit.at),
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

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant_id: str,
        call_id: str,
        record_id: str,
        site: str,
        direction: Direction,
        caller: str,
        called: str,
        service_id: str | None,
        started_at: datetime,
    ) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "record_id", record_id)
        object.__setattr__(self, "site", site)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "caller", caller)
        object.__setattr__(self, "called", called)
        object.__setattr__(self, "service_id", service_id)
        object.__setattr__(self, "started_at", started_at)


@dataclass(frozen=True, slots=True)
class Answered:
    tenant_id: str
    call_id: str
    at: datetime

    # Written out, not generated: see decision 0021.
    def __init__(self, tenant_id: str, call_id: str, at: datetime) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "at", at)


@final
@dataclass(frozen=True, slots=True)
class SaveIvr:
    """What the call did in its flow; `flow_version` is the published version it ran."""

    tenant_id: str
    call_id: str
    path: list[dict[str, Any]]
    digits: list[str]
    outcome: str
    flow_version: int | None

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant_id: str,
        call_id: str,
        path: list[dict[str, Any]],
        digits: list[str],
        outcome: str,
        flow_version: int | None,
    ) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "digits", digits)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "flow_version", flow_version)

    @classmethod
    def of(
        cls, tenant_id: str, call_id: str, record: CallRecord, flow_version: int | None
    ) -> "SaveIvr":
        path = [visit_json(v) for v in record.path]
        return SaveIvr(tenant_id, call_id, path, list(record.digits), record.outcome, flow_version)


@dataclass(frozen=True, slots=True)
class Queued:
    """The call entered a queue (the first queue counts for the wait)."""

    tenant_id: str
    call_id: str
    queue: str
    at: datetime

    # Written out, not generated: see decision 0021.
    def __init__(self, tenant_id: str, call_id: str, queue: str, at: datetime) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "queue", queue)
        object.__setattr__(self, "at", at)


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

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant_id: str,
        call_id: str,
        agent_id: str | None,
        extension: str | None,
        routing: dict[str, Any] | None,
        recording: str | None,
        at: datetime,
    ) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "agent_id", agent_id)
        object.__setattr__(self, "extension", extension)
        object.__setattr__(self, "routing", routing)
        object.__setattr__(self, "recording", recording)
        object.__setattr__(self, "at", at)


@dataclass(frozen=True, slots=True)
class AddLeg:
    """One leg placed for the call (an agent's phone, a trunk...), as it ended."""

    tenant_id: str
    call_id: str
    leg: dict[str, Any]

    # Written out, not generated: see decision 0021.
    def __init__(self, tenant_id: str, call_id: str, leg: dict[str, Any]) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "leg", leg)


@dataclass(frozen=True, slots=True)
class AddTransfer:
    tenant_id: str
    call_id: str
    transfer: dict[str, Any]

    # Written out, not generated: see decision 0021.
    def __init__(self, tenant_id: str, call_id: str, transfer: dict[str, Any]) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "transfer", transfer)


@dataclass(frozen=True, slots=True)
class Finish:
    """The record is closed and `CallFinished` announced. A call is finished once."""

    tenant_id: str
    call_id: str
    end_reason: str
    ended_at: datetime
    outcome: str | None
    hangup_by: str | None

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant_id: str,
        call_id: str,
        end_reason: str,
        ended_at: datetime,
        outcome: str | None,
        hangup_by: str | None,
    ) -> None:
        object.__setattr__(self, "tenant_id", tenant_id)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "end_reason", end_reason)
        object.__setattr__(self, "ended_at", ended_at)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "hangup_by", hangup_by)


RecordOp = Start | Answered | SaveIvr | Queued | Connected | AddLeg | AddTransfer | Finish


@dataclass(frozen=True, slots=True)
class Refused:
    """An operation `write` left out, and why; the rest of its list was applied."""

    op: RecordOp
    error: DomainError


# --- rows ------------------------------------------------------------------------------


class CallRow:
    """One call's columns as they stand in a write: `values`, the columns set (a column
    missing is NULL), and `changed`, those set since the row was read or remembered.
    A row `new` in this write is inserted whole and keeps no changes."""

    def __init__(self, values: dict[str, Any], new: bool = False) -> None:
        self.values = values
        self.new = new
        self.changed: dict[str, Any] = {}

    def get(self, column: str) -> Any:
        return self.values.get(column)

    def set(self, column: str, value: Any) -> None:
        self.values[column] = value
        if not self.new:
            self.changed[column] = value

    def inserted(self) -> dict[str, Any]:
        """The columns an INSERT gives: those set and not None. A column left out takes
        its default, and a JSON column is SQL NULL rather than JSON null."""
        return {name: value for name, value in self.values.items() if value is not None}

    def updated(self) -> dict[str, Any]:
        """The columns an UPDATE sets, and the row's `id` and `tenant_id` to match it."""
        values = dict(self.changed)
        values["id"] = self.values["id"]
        values["tenant_id"] = self.values["tenant_id"]
        return values


def started(op: Start) -> CallRow:
    """The row a call's start makes."""
    return CallRow(
        {
            "id": op.record_id,
            "tenant_id": op.tenant_id,
            "call_id": op.call_id,
            "site": op.site,
            "direction": op.direction,
            "caller": op.caller,
            "called": op.called,
            "service_id": op.service_id,
            "started_at": op.started_at,
            "ivr_path": [],
            "digits": [],
            "legs": [],
            "transfers": [],
        },
        new=True,
    )


class Played:
    """What `play` made of a list of operations."""

    def __init__(self) -> None:
        self.refused: list[Refused] = []
        self.started: list[CallRow] = []  # rows to insert, in the order they started
        self.events: list[CallFinished] = []  # to publish once the rows are committed
        self.applied: dict[Key, None] = {}  # the calls some operation changed


def play(
    ops: Sequence[RecordOp], rows: dict[Key, CallRow], services: set[tuple[str, str]]
) -> Played:
    """Apply `ops` in order to `rows` (the calls already written, by key), adding the
    rows of the calls they start. What the rules refuse is left out and returned in
    `refused`; `services` holds the (service id, tenant id) of the services that exist."""
    played = Played()
    for op in ops:
        call = (op.tenant_id, op.call_id)
        row = rows.get(call)
        error = refusal(op, row, services)
        if error is not None:
            played.refused.append(Refused(op, error))
            continue
        played.applied[call] = None
        if isinstance(op, Start):
            row = started(op)
            rows[call] = row
            played.started.append(row)
            continue
        assert row is not None  # refusal() refuses any other operation on no row
        if isinstance(op, Finish):
            played.events.append(finish(row, op))
        else:
            apply(row, op)
    return played


def remembered_rows(
    ops: Sequence[RecordOp], remembered: dict[Key, dict[str, Any]]
) -> dict[Key, CallRow]:
    """Rows for the calls of `ops` whose columns are `remembered`, on copies of them."""
    rows: dict[Key, CallRow] = {}
    for op in ops:
        call = (op.tenant_id, op.call_id)
        if call not in rows:
            values = remembered.get(call)
            if values is not None:
                rows[call] = CallRow(dict(values))
    return rows


def unread(ops: Sequence[RecordOp], rows: dict[Key, CallRow], trusting: bool) -> list[RecordOp]:
    """The operations of `ops` on calls with no row in `rows`, whose rows must be read:
    when `trusting`, not those of calls that `ops` starts (taken to be new)."""
    starting: set[Key] = set()
    if trusting:
        starting = {(op.tenant_id, op.call_id) for op in ops if isinstance(op, Start)}
    found: list[RecordOp] = []
    for op in ops:
        call = (op.tenant_id, op.call_id)
        if call not in rows and call not in starting:
            found.append(op)
    return found


def remember(
    remembered: dict[Key, dict[str, Any]],
    rows: dict[Key, CallRow],
    applied: dict[Key, None],
    limit: int,
) -> None:
    """After the commit: keep the columns of the calls `applied` changed and left open,
    forget the finished ones, and the oldest past `limit`. Only the calls written to:
    a row read only to refuse an operation (a call recorded elsewhere) is not taken
    for one of ours."""
    for call in applied:
        values = rows[call].values
        remembered.pop(call, None)  # re-inserted last: the oldest go first
        if values.get("ended_at") is None:
            remembered[call] = values
    while len(remembered) > limit:
        del remembered[next(iter(remembered))]


def refusal(
    op: RecordOp, row: CallRow | None, services: set[tuple[str, str]]
) -> DomainError | None:
    """Why the rules refuse `op` on the call's `row` (None: not written yet), if they
    do. `services` holds the (service id, tenant id) of the services that exist."""
    if isinstance(op, Start):
        if row is not None:
            return Conflict(f"call {op.call_id!r} is already recorded")
        if op.service_id is not None and (op.service_id, op.tenant_id) not in services:
            return Invalid("service_id", "no such service")
        return None
    if row is None:
        return NotFound("call")
    if isinstance(op, Finish) and row.get("ended_at") is not None:
        return Conflict(f"call {op.call_id!r} is already finished")
    return None


def apply(row: CallRow, op: RecordOp) -> None:
    """What `op` (neither a start nor a finish) changes in `row`."""
    if isinstance(op, Answered):
        if row.get("answered_at") is None:
            row.set("answered_at", op.at)
    elif isinstance(op, SaveIvr):
        row.set("flow_version", op.flow_version)
        row.set("ivr_path", op.path)
        row.set("digits", op.digits)
        row.set("outcome", op.outcome[:MAX_TEXT])
    elif isinstance(op, Queued):
        row.set("queue", op.queue[:100])
        if row.get("queued_at") is None:
            row.set("queued_at", op.at)
    elif isinstance(op, Connected):
        row.set("agent_id", op.agent_id)
        row.set("agent_extension", op.extension)
        row.set("connected_at", op.at)
        queued_at = row.get("queued_at")
        if queued_at is not None:
            row.set("wait_seconds", round((op.at - queued_at).total_seconds(), 3))
        if op.routing is not None:
            row.set("routing", op.routing)
        if op.recording is not None:
            row.set("recording", op.recording[:500])
    elif isinstance(op, AddLeg):
        row.set("legs", [*(row.get("legs") or []), _jsonable(op.leg)])
    elif isinstance(op, AddTransfer):
        row.set("transfers", [*(row.get("transfers") or []), _jsonable(op.transfer)])


def finish(row: CallRow, op: Finish) -> CallFinished:
    """Close `row` as `op` says; the event that announces it."""
    reason = op.end_reason[:MAX_TEXT]
    row.set("ended_at", op.ended_at)
    row.set("end_reason", reason)
    if op.hangup_by is not None:
        row.set("hangup_by", op.hangup_by[:16])
    connected_at = row.get("connected_at")
    if connected_at is not None:
        row.set("talk_seconds", round((op.ended_at - connected_at).total_seconds(), 3))
    if op.outcome is not None:
        row.set("outcome", op.outcome[:MAX_TEXT])
    values = row.values
    return CallFinished.from_fields(
        {
            "tenant_id": op.tenant_id,
            "at": op.ended_at,
            "record_id": values["id"],
            "call_id": op.call_id,
            "service_id": values.get("service_id"),
            "caller": values["caller"],
            "called": values["called"],
            "started_at": values["started_at"],
            "answered_at": values.get("answered_at"),
            "ended_at": op.ended_at,
            "end_reason": reason,
            "outcome": values.get("outcome"),
            "queue": values.get("queue"),
            "agent_id": values.get("agent_id"),
            "wait_seconds": values.get("wait_seconds"),
            "talk_seconds": values.get("talk_seconds"),
            "hangup_by": values.get("hangup_by"),
        }
    )


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO text: JSON columns hold plain values only."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}
