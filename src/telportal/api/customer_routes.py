"""Customer routes beyond CRUD: lookup by any identity, timeline, merge, interactions;
and the tenant's customer-system lookup settings (`/crm-settings`).

CRUD (`/customers`, `/customers/{id}`) comes from the generic resource routes; these
are mounted first so `/customers/lookup` is not taken for an id.
"""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import case, select

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS
from telportal.crm import store
from telportal.crm.identities import IdentityKind
from telportal.errors import Forbidden, Invalid, NotFound
from telportal.store.schema import CrmSettings, Customer
from telportal.tenancy import schemas as s
from telportal.tenancy.resources import Customers
from telportal.tenancy.roles import Role, Scope

Ident = Annotated[str | None, Query(max_length=255)]


class Merge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duplicate_id: str = Field(max_length=36)


class InteractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=32, examples=["purchase", "complaint", "note"])
    channel: str = Field("", max_length=32)
    summary: str = Field("", max_length=500)
    data: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    at: AwareDatetime | None = None


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    channel: str
    summary: str
    ref: str
    data: dict[str, Any]


class CrmSettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lookup_url: str | None = Field(
        None,
        max_length=1000,
        description="http(s) URL template with {value} (and optionally {kind}); null: no lookup",
        examples=["https://crm.example.com/api/customers?phone={value}"],
    )
    lookup_timeout_ms: int = Field(800, ge=100, le=5000)
    lookup_headers: (
        dict[
            Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")],
            Annotated[str, Field(max_length=2000)],
        ]
        | None
    ) = Field(None, description="Sent with each lookup (an API key); null keeps the stored ones")

    @field_validator("lookup_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value.replace("{value}", "x").replace("{kind}", "x"))
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError("must be an http or https URL")
        if "{value}" not in value:
            raise ValueError("must contain {value}, where the caller's identity goes")
        return value


class CrmSettingsOut(BaseModel):
    lookup_url: str | None
    lookup_timeout_ms: int
    # Names only: the values are credentials for the enterprise's system.
    lookup_header_names: list[str]


def _settings_out(row: CrmSettings | None) -> CrmSettingsOut:
    if row is None:
        return CrmSettingsOut(lookup_url=None, lookup_timeout_ms=800, lookup_header_names=[])
    return CrmSettingsOut(
        lookup_url=row.lookup_url,
        lookup_timeout_ms=row.lookup_timeout_ms,
        lookup_header_names=sorted(row.lookup_headers),
    )


def crm_settings_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["customers"], responses=ERRORS)

    @router.get("/crm-settings", response_model=CrmSettingsOut, summary="Customer-system lookup")
    async def get_settings(platform: PlatformDep, scope: ScopeDep) -> Any:
        tenant_id = _tenant(scope)
        if not scope.role.at_least(Role.TENANT_ADMIN):
            raise Forbidden("CRM settings take a tenant admin")
        async with platform.db.read() as session:
            return _settings_out(await session.get(CrmSettings, tenant_id))

    @router.put("/crm-settings", response_model=CrmSettingsOut, summary="Set the lookup")
    async def put_settings(body: CrmSettingsIn, platform: PlatformDep, scope: ScopeDep) -> Any:
        """Callers the CRM does not know are looked up there (screen pop, `/customers/lookup`)
        and stored as customers. A 200 JSON object answers: name, id, importance 0-5,
        tags, notes, attributes; 404 means unknown."""
        tenant_id = _tenant(scope)
        if not scope.role.at_least(Role.TENANT_ADMIN):
            raise Forbidden("CRM settings take a tenant admin")
        async with platform.db.write(scope) as uow:
            row = await uow.session.get(CrmSettings, tenant_id)
            if row is None:
                row = CrmSettings(tenant_id=tenant_id, lookup_headers={})
                uow.session.add(row)
            row.lookup_url = body.lookup_url
            row.lookup_timeout_ms = body.lookup_timeout_ms
            if body.lookup_headers is not None:
                row.lookup_headers = dict(body.lookup_headers)
            row.updated_at = uow.clock.now()
            await uow.config_changed(tenant_id, "crm_settings", tenant_id, "updated", {})
            return _settings_out(row)

    return router


def _tenant(scope: Scope) -> str:
    if scope.tenant_id is None:
        raise Invalid("tenant", "customers belong to a tenant: use a tenant user's token")
    return scope.tenant_id


def customer_router(customers: Customers) -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/customers", tags=["customers"], responses=ERRORS)

    @router.get("/lookup", response_model=s.CustomerOut, summary="Find by any identity")
    async def lookup(
        platform: PlatformDep,
        scope: ScopeDep,
        phone: Ident = None,
        email: Ident = None,
        chat: Ident = None,
        external_id: Ident = None,
    ) -> Any:
        """Exactly one of phone, email, chat or external_id; merged records lead to the
        record they went into. 404 when nobody has it."""
        customers.require(scope, "read")
        given = [
            (kind, value)
            for kind, value in (
                (IdentityKind.PHONE, phone),
                (IdentityKind.EMAIL, email),
                (IdentityKind.CHAT, chat),
                (IdentityKind.EXTERNAL, external_id),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise Invalid("query", "give exactly one of phone, email, chat, external_id")
        kind, value = given[0]
        tenant_id = _tenant(scope)
        if platform.crm_lookup is not None:  # a miss asks the tenant's own system
            found = await platform.crm_lookup.find(tenant_id, kind, value)
        else:
            async with platform.db.read() as session:
                found = await store.find(session, tenant_id, kind, value)
        if found is None:
            raise NotFound("customer")
        async with platform.db.read() as session:
            return await customers.out(session, scope, found)

    @router.get("/search", response_model=list[s.CustomerOut], summary="Find by name")
    async def search(
        platform: PlatformDep,
        scope: ScopeDep,
        q: Annotated[str, Query(min_length=1, max_length=100, description="Part of a name")],
        limit: Annotated[int, Query(ge=1, le=50)] = 20,
    ) -> Any:
        """Customers whose name contains `q` (any case), best match first: names that
        start with it, then the rest, alphabetically. Merged duplicates are left out."""
        customers.require(scope, "read")
        tenant_id = _tenant(scope)
        text = q.strip()
        if not text:
            raise Invalid("q", "give part of a name")
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        starts = case((Customer.name.ilike(f"{escaped}%", escape="\\"), 0), else_=1)
        query = (
            select(Customer)
            .where(
                Customer.tenant_id == tenant_id,
                Customer.merged_into.is_(None),
                Customer.name.ilike(f"%{escaped}%", escape="\\"),
            )
            .order_by(starts, Customer.name, Customer.id)
            .limit(limit)
        )
        async with platform.db.read() as session:
            rows = (await session.execute(query)).scalars().all()
            return [await customers.out(session, scope, row) for row in rows]

    @router.get("/{customer_id}/timeline", response_model=list[TimelineOut], summary="Interactions")
    async def timeline(
        customer_id: str,
        platform: PlatformDep,
        scope: ScopeDep,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> Any:
        """Calls (by any of the customer's numbers) and pushed interactions, newest first."""
        async with platform.db.read() as session:
            customer = await customers.get(session, scope, customer_id)
            entries = await store.timeline(session, customer.tenant_id, customer, limit)
        return [TimelineOut(**e.__dict__) for e in entries]

    @router.post(
        "/{customer_id}/interactions",
        status_code=201,
        response_model=TimelineOut,
        summary="Record an interaction (enterprise systems push transactions here)",
    )
    async def add_interaction(
        customer_id: str, body: InteractionIn, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        customers.require(scope, "update")
        async with platform.db.write(scope) as uow:
            row = await store.add_interaction(
                uow, _tenant(scope), customer_id, kind=body.kind, channel=body.channel,
                summary=body.summary, data=dict(body.data), source=scope.actor_name,
                at=body.at,
            )  # fmt: skip
            return TimelineOut(
                at=row.at, kind=row.kind, channel=row.channel, summary=row.summary,
                ref=row.id, data=dict(row.data),
            )  # fmt: skip

    @router.post("/{customer_id}/merge", response_model=s.CustomerOut, summary="Merge a duplicate")
    async def merge(customer_id: str, body: Merge, platform: PlatformDep, scope: ScopeDep) -> Any:
        """The duplicate's identities move here; its record and history stay, pointing here."""
        if not scope.role.at_least(Role.SUPERVISOR):
            customers.require(scope, "delete")  # raises Forbidden with the usual message
        async with platform.db.write(scope) as uow:
            await store.merge(uow, _tenant(scope), customer_id, body.duplicate_id)
        async with platform.db.read() as session:
            return await customers.out(
                session, scope, await customers.get(session, scope, customer_id)
            )

    return router
