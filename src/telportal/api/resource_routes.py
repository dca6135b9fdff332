"""HTTP routes generated for each resource of the operator's model.

The same five routes for every resource keep isolation, pagination, errors and
idempotency identical everywhere; what differs lives in the resource classes.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.errors import ErrorBody
from telportal.api.pages import Page
from telportal.api.paths import API_PREFIX
from telportal.api.writes import run_write
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.crud import MAX_PAGE, Resource

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)
}

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Items to skip")]
TenantFilter = Annotated[
    str | None, Query(description="Platform operators: only this tenant's objects")
]


def resource_router(res: Resource[Any]) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/{res.path}", tags=[res.path], responses=ERRORS)
    label = res.entity.replace("_", " ")
    out_model: Any = res.out_schema
    page_model: Any = Page[out_model]

    async def list_items(
        platform: PlatformDep,
        scope: ScopeDep,
        limit: Limit = 50,
        offset: Offset = 0,
        tenant_id: TenantFilter = None,
    ) -> Any:
        async with platform.db.read() as session:
            rows, total = await res.list(session, scope, limit, offset, tenant_id)
            items = [await res.out(session, scope, row) for row in rows]
        return page_model(items=items, total=total, limit=limit, offset=offset)

    async def get_item(item_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        async with platform.db.read() as session:
            return await res.out(session, scope, await res.get(session, scope, item_id))

    async def create_item(
        request: Request, body: BaseModel, platform: PlatformDep, scope: ScopeDep
    ) -> Response:
        async def work(uow: UnitOfWork) -> BaseModel:
            return await res.create_out(uow, body)

        return await run_write(request, platform, scope, work, 201)

    async def update_item(
        request: Request, item_id: str, body: BaseModel, platform: PlatformDep, scope: ScopeDep
    ) -> Response:
        async def work(uow: UnitOfWork) -> BaseModel:
            return await res.out(uow.session, uow.scope, await res.update(uow, item_id, body))

        return await run_write(request, platform, scope, work, 200)

    async def delete_item(
        request: Request, item_id: str, platform: PlatformDep, scope: ScopeDep
    ) -> Response:
        async def work(uow: UnitOfWork) -> None:
            await res.delete(uow, item_id)

        return await run_write(request, platform, scope, work, 204)

    # The body types differ per resource; FastAPI reads them from the annotations.
    create_item.__annotations__["body"] = res.create_schema
    router.add_api_route(
        "", list_items, methods=["GET"], response_model=page_model, summary=f"List {label}s"
    )
    router.add_api_route(
        "",
        create_item,
        methods=["POST"],
        status_code=201,
        response_model=res.created_schema or out_model,
        summary=f"Create a {label}",
    )
    router.add_api_route(
        "/{item_id}", get_item, methods=["GET"], response_model=out_model, summary=f"Get a {label}"
    )
    if res.update_schema is not None:
        update_item.__annotations__["body"] = res.update_schema
        router.add_api_route(
            "/{item_id}",
            update_item,
            methods=["PATCH"],
            response_model=out_model,
            summary=f"Change a {label}",
        )
    router.add_api_route(
        "/{item_id}",
        delete_item,
        methods=["DELETE"],
        status_code=204,
        response_class=Response,
        summary=f"Delete a {label}",
    )
    return router
