"""Routes that are not plain resources: sign-in, who am I, revisions, audit, health."""

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select, text

from telportal import __version__
from telportal.api.deps import PlatformDep, ScopeDep, _bearer
from telportal.api.errors import ApiError, ErrorBody
from telportal.api.pages import Page
from telportal.api.paths import API_PREFIX
from telportal.errors import Forbidden
from telportal.store.schema import AuditEntry, ConfigRevision
from telportal.store.unit_of_work import PLATFORM_SCOPE
from telportal.tenancy.crud import MAX_PAGE
from telportal.tenancy.roles import Role

router = APIRouter(prefix=API_PREFIX)
health = APIRouter()


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=300, description="name, or name@tenant")
    password: str = Field(min_length=1, max_length=1024)
    tenant: str | None = Field(None, max_length=63, description="Tenant slug (or use name@tenant)")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type
    expires_at: datetime
    tenant_id: str | None
    role: Role


@router.post(
    "/auth/token",
    tags=["auth"],
    response_model=TokenResponse,
    responses={401: {"model": ErrorBody}, 422: {"model": ErrorBody}, 429: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": TokenRequest.model_json_schema()},
            }
        }
    },
)
async def issue_token(request: Request, platform: PlatformDep) -> TokenResponse:
    """Sign in with a username and password (JSON or an OAuth2 password form)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    raw: Any
    if content_type == "application/json":
        try:
            raw = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(422, "invalid_request", "body: not valid JSON") from None
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        raw = {k: v for k, v in form.items() if k in ("username", "password", "tenant")}
    else:
        raise ApiError(415, "unsupported_media_type", "send JSON or a form")
    try:
        req = TokenRequest.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise ApiError(422, "invalid_request", f"{field}: {first['msg']}") from None
    client = request.client.host if request.client else "unknown"
    issued = await platform.auth.login(req.username, req.password, req.tenant, client)
    return TokenResponse(
        access_token=issued.token,
        expires_at=issued.expires_at,
        tenant_id=issued.scope.tenant_id,
        role=issued.scope.role,
    )


@router.post("/auth/logout", tags=["auth"], status_code=204, responses={401: {"model": ErrorBody}})
async def logout(request: Request, platform: PlatformDep, scope: ScopeDep) -> None:
    """Revoke the bearer token this request carries."""
    creds: HTTPAuthorizationCredentials | None = await _bearer(request)
    if creds is not None:
        await platform.auth.logout(creds.credentials)


class Me(BaseModel):
    tenant_id: str | None
    role: Role
    actor_kind: str
    actor_id: str | None
    name: str


@router.get("/me", tags=["auth"], response_model=Me, responses={401: {"model": ErrorBody}})
async def me(scope: ScopeDep) -> Me:
    return Me(
        tenant_id=scope.tenant_id,
        role=scope.role,
        actor_kind=scope.actor_kind,
        actor_id=scope.actor_id,
        name=scope.actor_name,
    )


class Revision(BaseModel):
    scope: str
    revision: int


@router.get("/config/revision", tags=["config"], response_model=Revision)
async def config_revision(platform: PlatformDep, scope: ScopeDep) -> Revision:
    """The configuration revision of the caller's tenant (or of the platform)."""
    key = scope.tenant_id or PLATFORM_SCOPE
    async with platform.db.read() as session:
        rev = await session.scalar(
            select(ConfigRevision.revision).where(ConfigRevision.scope == key)
        )
    return Revision(scope=key, revision=rev or 0)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    tenant_id: str | None
    at: datetime
    actor_kind: str
    actor_id: str | None
    actor_name: str
    action: str
    entity: str
    entity_id: str
    changes: dict[str, Any]


@router.get("/audit", tags=["audit"], response_model=Page[AuditOut])
async def audit_log(
    platform: PlatformDep,
    scope: ScopeDep,
    *,
    entity: str | None = None,
    entity_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AuditOut]:
    """Who changed what, newest first."""
    if not scope.role.at_least(Role.TENANT_ADMIN):
        raise Forbidden("only administrators read the audit log")
    q = select(AuditEntry)
    if scope.tenant_id is not None:
        q = q.where(AuditEntry.tenant_id == scope.tenant_id)
    if entity is not None:
        q = q.where(AuditEntry.entity == entity)
    if entity_id is not None:
        q = q.where(AuditEntry.entity_id == entity_id)
    async with platform.db.read() as session:
        total = await session.scalar(select(func.count()).select_from(q.subquery()))
        rows = (
            await session.execute(q.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
        ).scalars()
        items = [AuditOut.model_validate(r) for r in rows]
    return Page[AuditOut](items=items, total=total or 0, limit=limit, offset=offset)


class Health(BaseModel):
    status: str
    version: str
    site: str
    database: str


@health.get("/healthz", tags=["health"], response_model=Health)
async def healthz(platform: PlatformDep) -> Health:
    """Liveness and database reachability; no credentials needed."""
    try:
        async with platform.db.read() as session:
            await session.execute(text("SELECT 1"))
        db = "ok"
    except Exception:  # any failure means "not healthy", reported below
        db = "unreachable"
    body = Health(
        status="ok" if db == "ok" else "degraded",
        version=__version__,
        site=platform.config.site.name,
        database=db,
    )
    if db != "ok":
        raise ApiError(503, "degraded", "database unreachable")
    return body
