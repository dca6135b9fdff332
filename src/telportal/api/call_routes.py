"""Call records, newest first. Who sees which calls is `tenancy.resources.Calls`' rule."""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.pages import Page
from telportal.api.resource_routes import ERRORS, Limit, Offset, TenantFilter
from telportal.tenancy import schemas as s
from telportal.tenancy.resources import Calls

When = Annotated[
    AwareDatetime | None,
    Query(description="ISO 8601 with an offset, e.g. 2026-11-25T08:00:00Z"),
]
Party = Annotated[str | None, Query(max_length=255, description="Exactly this number")]


def call_router(calls: Calls) -> APIRouter:
    router = APIRouter(prefix="/calls", tags=["calls"], responses=ERRORS)

    @router.get("", response_model=Page[s.CallRecordOut], summary="List calls")
    async def list_calls(
        platform: PlatformDep,
        scope: ScopeDep,
        caller: Party = None,
        called: Party = None,
        since: When = None,
        until: When = None,
        tenant_id: TenantFilter = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        """Newest first. `since` (inclusive) and `until` (exclusive) bound the start time."""
        async with platform.db.read() as session:
            rows, total = await calls.search(
                session,
                scope,
                caller=caller,
                called=called,
                since=since,
                until=until,
                tenant_id=tenant_id,
                limit=limit,
                offset=offset,
            )
            items = [s.CallRecordOut.model_validate(row) for row in rows]
        return Page[s.CallRecordOut](items=items, total=total, limit=limit, offset=offset)

    @router.get("/{record_id}", response_model=s.CallRecordOut, summary="Get a call")
    async def get_call(record_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        async with platform.db.read() as session:
            return s.CallRecordOut.model_validate(await calls.get(session, scope, record_id))

    return router
