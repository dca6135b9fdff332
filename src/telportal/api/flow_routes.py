"""IVR flow versions under their service: publish, list, read, roll back.

Isolation is the service's: another tenant's service answers 404 on every route.
A flow with problems answers 422 `invalid_flow` with every problem in `details`.
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.errors import ApiError, error_response
from telportal.api.pages import Page
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS, Limit, Offset
from telportal.api.writes import run_write
from telportal.ivr.publishing import FlowRefused, FlowRepository
from telportal.store.schema import CurrentFlow, FlowVersion
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy import schemas as s

YAML_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})

NoteQuery = Annotated[
    str | None,
    Query(description="With a raw YAML body: why this version (JSON bodies carry `note`)"),
]


def version_out(row: FlowVersion, current: bool) -> s.FlowVersionOut:
    out = s.FlowVersionOut.model_validate(row)
    out.current = current
    return out


def refused(exc: FlowRefused) -> JSONResponse:
    details = [
        {
            "field": "yaml",
            "line": p.line,
            "column": p.column,
            "message": p.message,
            "problem": str(p),
        }
        for p in exc.problems
    ]
    return error_response(422, exc.code, exc.message, details)


async def _publish_body(request: Request, note: str | None) -> s.FlowPublish:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw: Any
    if content_type == "application/json":
        if note is not None:
            raise ApiError(422, "invalid_request", "note: with a JSON body, send note in it")
        try:
            raw = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(422, "invalid_request", "body: not valid JSON") from None
    elif content_type in YAML_TYPES:
        try:
            raw = {"yaml": (await request.body()).decode("utf-8")}
        except UnicodeDecodeError:
            raise ApiError(422, "invalid_request", "body: a flow is UTF-8 text") from None
        if note is not None:
            raw["note"] = note
    else:
        raise ApiError(415, "unsupported_media_type", "send JSON or application/yaml")
    try:
        return s.FlowPublish.model_validate(raw)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        raise RequestValidationError(errors) from None


def flow_router(repo: FlowRepository) -> APIRouter:
    router = APIRouter(
        prefix=API_PREFIX + "/services/{service_id}/flows", tags=["flows"], responses=ERRORS
    )

    @router.post(
        "",
        status_code=201,
        response_model=s.FlowVersionOut,
        summary="Publish a flow",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": s.FlowPublish.model_json_schema()},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def publish(
        service_id: str,
        request: Request,
        platform: PlatformDep,
        scope: ScopeDep,
        note: NoteQuery = None,
    ) -> Response:
        """Check the flow and put it in service as the service's next version."""
        body = await _publish_body(request, note)

        async def work(uow: UnitOfWork) -> BaseModel:
            return version_out(await repo.publish(uow, service_id, body.yaml, body.note), True)

        try:
            return await run_write(request, platform, scope, work, 201)
        except FlowRefused as exc:
            return refused(exc)

    @router.get("", response_model=Page[s.FlowVersionOut], summary="List a service's versions")
    async def list_versions(
        service_id: str,
        platform: PlatformDep,
        scope: ScopeDep,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Page[s.FlowVersionOut]:
        """Newest first, without their text; `current` marks the version in service."""
        async with platform.db.read() as session:
            page = await repo.versions(session, scope, service_id, limit=limit, offset=offset)
        items = [version_out(row, row.version == page.current) for row in page.items]
        return Page[s.FlowVersionOut](items=items, total=page.total, limit=limit, offset=offset)

    @router.get("/current", response_model=s.CurrentFlowOut, summary="The version in service")
    async def in_service(service_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        """The version new calls run, with its text; 404 when none was published."""
        async with platform.db.read() as session:
            row, pointer = await repo.in_service(session, scope, service_id)
        return _current_out(row, pointer)

    @router.get("/{version}", response_model=s.FlowVersionDetail, summary="One version")
    async def get_version(
        service_id: str, version: int, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        async with platform.db.read() as session:
            row, current = await repo.version(session, scope, service_id, version)
        return s.FlowVersionDetail.model_validate(
            {**version_out(row, current).model_dump(), "yaml": row.yaml}
        )

    @router.post(
        "/{version}/rollback", response_model=s.FlowVersionOut, summary="Put a version back"
    )
    async def rollback(
        service_id: str, version: int, request: Request, platform: PlatformDep, scope: ScopeDep
    ) -> Response:
        """Put an earlier version back in service (no new version is made)."""

        async def work(uow: UnitOfWork) -> BaseModel:
            return version_out(await repo.rollback(uow, service_id, version), True)

        try:
            return await run_write(request, platform, scope, work, 200)
        except FlowRefused as exc:
            return refused(exc)

    return router


def _current_out(row: FlowVersion, pointer: CurrentFlow) -> s.CurrentFlowOut:
    return s.CurrentFlowOut.model_validate(
        {
            **version_out(row, True).model_dump(),
            "yaml": row.yaml,
            "current_since": pointer.since,
            "made_current_by": pointer.made_by,
        }
    )
