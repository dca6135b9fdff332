"""Call records, newest first, as pages of JSON or as one CSV export.

Who sees which calls is `tenancy.resources.Calls`' rule: supervisors their
tenant's, agents the calls they answered.
"""

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime
from sqlalchemy import or_

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.pages import Page
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS, Limit, Offset, TenantFilter
from telportal.errors import Conflict, NotFound
from telportal.store.schema import CallDetailRecord
from telportal.tenancy import schemas as s
from telportal.tenancy.resources import CallFilter, Calls

When = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with an offset, e.g. 2026-11-25T08:00:00Z"),
]
Party = Annotated[str | None, Query(max_length=255, description="Exactly this number")]
Text = Annotated[str | None, Query(max_length=100)]
# The export streams in pages so a month of calls never sits in memory at once.
EXPORT_PAGE = 500
EXPORT_MAX = 1_000_000
CSV_COLUMNS = (
    "id", "call_id", "tenant_id", "site", "direction", "caller", "called", "service_id",
    "started_at", "answered_at", "ended_at", "end_reason", "hangup_by", "flow_version",
    "digits", "outcome", "queue", "queued_at", "wait_seconds", "agent_id", "agent_extension",
    "connected_at", "talk_seconds", "recording", "ivr_path", "legs", "transfers",
    "wrap_up_code", "wrap_up_notes", "wrap_up_at",
)  # fmt: skip


def call_filter(
    caller: Party = None,
    called: Party = None,
    since: When = None,
    until: When = None,
    tenant_id: TenantFilter = None,
    service_id: Text = None,
    queue: Text = None,
    agent_id: Text = None,
    direction: Annotated[
        str | None, Query(pattern="^(inbound|outbound|internal)$", description="Call direction")
    ] = None,
    hangup_by: Annotated[str | None, Query(pattern="^(caller|callee|agent|system)$")] = None,
    answered: Annotated[
        bool | None, Query(description="Only answered (or unanswered) calls")
    ] = None,
) -> CallFilter:
    return CallFilter(
        caller=caller,
        called=called,
        since=since,
        until=until,
        tenant_id=tenant_id,
        service_id=service_id,
        queue=queue,
        agent_id=agent_id,
        direction=direction,
        hangup_by=hangup_by,
        answered=answered,
    )


FilterDep = Annotated[CallFilter, Depends(call_filter)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


def _csv_line(values: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def call_router(calls: Calls) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/calls", tags=["calls"], responses=ERRORS)

    @router.get("", response_model=Page[s.CallRecordOut], summary="List calls")
    async def list_calls(
        platform: PlatformDep,
        scope: ScopeDep,
        f: FilterDep,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """Newest first. `since` (inclusive) and `until` (exclusive) bound the start time."""
        async with platform.db.read() as session:
            rows, total = await calls.search(session, scope, f, limit, offset)
            items = [s.CallRecordOut.model_validate(row) for row in rows]
        return Page[s.CallRecordOut](items=items, total=total, limit=limit, offset=offset)

    @router.get(
        "/export",
        summary="Export calls as CSV",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}},
    )
    async def export_calls(platform: PlatformDep, scope: ScopeDep, f: FilterDep) -> Any:
        """Every matching call, newest first, one CSV row each; lists and objects as JSON."""
        query = calls.filtered(scope, f)  # checks the role before the response starts

        async def rows() -> AsyncIterator[str]:
            yield _csv_line(list(CSV_COLUMNS))
            offset = 0
            while offset < EXPORT_MAX:
                async with platform.db.read() as session:
                    page = (
                        (await session.execute(query.limit(EXPORT_PAGE).offset(offset)))
                        .scalars()
                        .all()
                    )
                    lines = [
                        _csv_line([_cell(getattr(row, c)) for c in CSV_COLUMNS]) for row in page
                    ]
                yield "".join(lines)
                if len(page) < EXPORT_PAGE:
                    return
                offset += EXPORT_PAGE

        return StreamingResponse(
            rows(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
        )

    @router.put(
        "/{call_ref}/wrap-up", response_model=s.CallRecordOut, summary="Save the agent's wrap-up"
    )
    async def wrap_up(
        call_ref: str, body: s.WrapUpIn, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        """`call_ref` is the record's id or the call's id (as in the screen pop). The agent
        who took the call saves it, or a supervisor of the tenant; saving again replaces it."""
        calls.require(scope, "read")
        async with platform.db.write(scope) as uow:
            row = (
                await uow.session.execute(
                    calls.query(scope)
                    .where(
                        or_(CallDetailRecord.id == call_ref, CallDetailRecord.call_id == call_ref)
                    )
                    .order_by(CallDetailRecord.started_at.desc())
                    .limit(1)
                )
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("call")
            if row.agent_id is None:
                raise Conflict("no agent took this call: there is nothing to wrap up")
            row.wrap_up_code = body.code
            row.wrap_up_notes = body.notes
            row.wrap_up_at = uow.clock.now()
            uow.data_changed(row.tenant_id, "call", row.id, "updated", {"wrap_up": body.code})
            return s.CallRecordOut.model_validate(row)

    @router.get("/{record_id}", response_model=s.CallRecordOut, summary="Get a call")
    async def get_call(record_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        async with platform.db.read() as session:
            return s.CallRecordOut.model_validate(await calls.get(session, scope, record_id))

    return router
