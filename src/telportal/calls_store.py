"""Call records (CDRs): the call layer writes one per call, the API reads them.

Call records are data, not configuration: they are written in the write path's
transactions but without audit entries or revision bumps, and no site reloads
anything when one changes. When a call is finished a `CallFinished` event is
published after the commit, for wallboards and reports.

The call layer calls, for each call: `start` when the call arrives, `answered`
when it is answered, `save_ivr` when its flow ends, `queued` and `connected` as
the ACD handles it, `add_leg` for every leg it places, and `finish` when it ends.
A record is written before the caller hears anything (persist before you
acknowledge); records a crash left open are closed by `close_orphans` when the
site starts again.
"""

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from telportal.errors import Conflict, NotFound
from telportal.events.types import CallFinished
from telportal.ivr.record import CallRecord, Visit
from telportal.store.database import Database
from telportal.store.schema import CallDetailRecord, Service
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.crud import ensure_ref
from telportal.tenancy.roles import Scope

Direction = Literal["inbound", "outbound", "internal"]
MAX_TEXT = 200  # end_reason and outcome columns


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


class CallRecords:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.scope = Scope.system("calls")

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
        async with self.db.write(self.scope) as uow:
            await ensure_ref(uow.session, Service, service_id, tenant_id, "service_id")
            row = CallDetailRecord(
                tenant_id=tenant_id,
                call_id=call_id,
                site=site,
                direction=direction,
                caller=caller,
                called=called,
                service_id=service_id,
                started_at=started_at or uow.clock.now(),
                ivr_path=[],
                digits=[],
            )
            uow.session.add(row)
            try:
                await uow.session.flush()
            except IntegrityError:
                raise Conflict(f"call {call_id!r} is already recorded") from None
            return row.id

    async def answered(self, tenant_id: str, call_id: str, at: datetime | None = None) -> None:
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            if row.answered_at is None:
                row.answered_at = at or uow.clock.now()

    async def save_ivr(
        self, tenant_id: str, call_id: str, record: CallRecord, flow_version: int | None = None
    ) -> None:
        """Keep what the call did in its flow; `flow_version` is the published version it ran."""
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            row.flow_version = flow_version
            row.ivr_path = [visit_json(v) for v in record.path]
            row.digits = list(record.digits)
            row.outcome = record.outcome[:MAX_TEXT]

    async def queued(
        self, tenant_id: str, call_id: str, queue: str, at: datetime | None = None
    ) -> None:
        """The call entered a queue (the first queue counts for the wait)."""
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            row.queue = queue[:100]
            if row.queued_at is None:
                row.queued_at = at or uow.clock.now()

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
        """An agent answered and was put through; the wait ends here."""
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            now = at or uow.clock.now()
            row.agent_id, row.agent_extension = agent_id, extension
            row.connected_at = now
            if row.queued_at is not None:
                row.wait_seconds = round((now - row.queued_at).total_seconds(), 3)
            if routing is not None:
                row.routing = routing
            if recording is not None:
                row.recording = recording[:500]

    async def add_leg(self, tenant_id: str, call_id: str, leg: dict[str, Any]) -> None:
        """One leg we placed for the call (an agent's phone, a trunk...), as it ended."""
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            row.legs = [*row.legs, _jsonable(leg)]

    async def add_transfer(self, tenant_id: str, call_id: str, transfer: dict[str, Any]) -> None:
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            row.transfers = [*row.transfers, _jsonable(transfer)]

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
        """Close the record and announce `CallFinished`. A call is finished once."""
        async with self.db.write(self.scope) as uow:
            row = await self._row(uow, tenant_id, call_id)
            if row.ended_at is not None:
                raise Conflict(f"call {call_id!r} is already finished")
            ended = ended_at or uow.clock.now()
            reason = end_reason[:MAX_TEXT]
            row.ended_at, row.end_reason = ended, reason
            if hangup_by is not None:
                row.hangup_by = hangup_by[:16]
            if row.connected_at is not None:
                row.talk_seconds = round((ended - row.connected_at).total_seconds(), 3)
            if outcome is not None:
                row.outcome = outcome[:MAX_TEXT]
            uow.emit(
                CallFinished(
                    tenant_id=tenant_id,
                    at=ended,
                    record_id=row.id,
                    call_id=call_id,
                    service_id=row.service_id,
                    caller=row.caller,
                    called=row.called,
                    started_at=row.started_at,
                    answered_at=row.answered_at,
                    ended_at=ended,
                    end_reason=reason,
                    outcome=row.outcome,
                    queue=row.queue,
                    agent_id=row.agent_id,
                    wait_seconds=row.wait_seconds,
                    talk_seconds=row.talk_seconds,
                    hangup_by=row.hangup_by,
                )
            )

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
            return int(getattr(result, "rowcount", 0) or 0)

    @staticmethod
    async def _row(uow: UnitOfWork, tenant_id: str, call_id: str) -> CallDetailRecord:
        q = select(CallDetailRecord).where(
            CallDetailRecord.tenant_id == tenant_id, CallDetailRecord.call_id == call_id
        )
        row = (await uow.session.execute(q)).scalar_one_or_none()
        if row is None:
            raise NotFound("call")
        return row


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Datetimes as ISO text: JSON columns hold plain values only."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}
