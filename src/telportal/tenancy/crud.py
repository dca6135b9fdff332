"""Generic create/read/update/delete for the operator's model, with tenant isolation.

Isolation is enforced in one place: every read and write of a resource goes
through `visible()`, which adds the scope's tenant to the query. An object of
another tenant is therefore indistinguishable from one that does not exist
(NotFound), and a reference to one in a request body is "no such ..." (Invalid).
"""

from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.errors import Conflict, Forbidden, Invalid, NotFound
from telportal.events.types import ChangeAction
from telportal.store.schema import Base, Tenant
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Role, Scope

M = TypeVar("M", bound=Base)
Action = Literal["read", "create", "update", "delete"]
# tenant: every row has a tenant; optional: rows may be platform-wide (tenant None);
# platform: rows never have a tenant.
Tenancy = Literal["tenant", "optional", "platform"]

MAX_PAGE = 500


def _col(model: type[Base], name: str) -> Any:
    return getattr(model, name)


class Resource(Generic[M]):
    entity: ClassVar[str]
    path: ClassVar[str]
    model: type[M]
    tenancy: ClassVar[Tenancy] = "tenant"
    create_schema: ClassVar[type[BaseModel]]
    update_schema: ClassVar[type[BaseModel] | None]
    out_schema: ClassVar[type[BaseModel]]
    # What POST answers, when it says more than a read does (a secret shown once).
    created_schema: ClassVar[type[BaseModel] | None] = None
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.AGENT,
        "create": Role.TENANT_ADMIN,
        "update": Role.TENANT_ADMIN,
        "delete": Role.TENANT_ADMIN,
    }
    # Fields never written to the audit log in the clear.
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    # Fields of the request that are not columns (links, secrets to derive from).
    extra_fields: ClassVar[frozenset[str]] = frozenset()
    # Configuration bumps the revision and makes sites reload; data (customers, cases)
    # is audited and announced, but no site reloads anything for it.
    is_data: ClassVar[bool] = False

    # --- access ---------------------------------------------------------------

    def require(self, scope: Scope, action: Action) -> None:
        if not scope.role.at_least(self.roles[action]):
            raise Forbidden(f"your role may not {action} {self.entity.replace('_', ' ')}s")

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        if scope.tenant_id is None or self.tenancy == "platform":
            return []
        return [_col(self.model, "tenant_id") == scope.tenant_id]

    def writable(self, scope: Scope, obj: M) -> None:
        """Raise when the scope may see `obj` but not change it."""

    # --- reads ----------------------------------------------------------------

    def query(self, scope: Scope) -> Select[M]:
        return select(self.model).where(true(), *self.visible(scope))

    async def get(self, session: AsyncSession, scope: Scope, obj_id: str) -> M:
        self.require(scope, "read")
        row = (
            await session.execute(self.query(scope).where(_col(self.model, "id") == obj_id))
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(self.entity)
        return row

    async def list(
        self,
        session: AsyncSession,
        scope: Scope,
        limit: int = 50,
        offset: int = 0,
        tenant_id: str | None = None,
    ) -> tuple[Sequence[M], int]:
        self.require(scope, "read")
        q = self.query(scope)
        if tenant_id is not None and self.tenancy != "platform":
            q = q.where(_col(self.model, "tenant_id") == tenant_id)
        total = (await session.execute(select(func.count()).select_from(q.subquery()))).scalar_one()
        rows = (
            await session.execute(
                q.order_by(_col(self.model, "created_at"), _col(self.model, "id"))
                .limit(min(limit, MAX_PAGE))
                .offset(offset)
            )
        ).scalars()
        return rows.all(), int(total)

    async def out(self, session: AsyncSession, scope: Scope, obj: M) -> BaseModel:
        return self.out_schema.model_validate(obj, from_attributes=True)

    # --- writes ---------------------------------------------------------------

    async def owner(self, uow: UnitOfWork, requested: str | None) -> str | None:
        """The tenant a new object belongs to, from the scope and the request."""
        scope = uow.scope
        if self.tenancy == "platform":
            return None
        if scope.tenant_id is not None:
            if requested not in (None, scope.tenant_id):
                raise Invalid("tenant_id", "no such tenant")
            return scope.tenant_id
        if requested is None:
            if self.tenancy == "tenant":
                raise Invalid("tenant_id", "required when acting for the platform")
            return None
        if await uow.session.get(Tenant, requested) is None:
            raise Invalid("tenant_id", "no such tenant")
        return requested

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: M | None
    ) -> dict[str, Any]:
        """Validate references and derive stored values; returns the column values."""
        return values

    async def after_write(
        self, uow: UnitOfWork, obj: M, values: dict[str, Any], creating: bool
    ) -> None:
        """Maintain link tables after the row exists."""

    def _redact(self, values: dict[str, Any]) -> dict[str, Any]:
        return {
            k: ("***" if k in self.secret_fields else v)
            for k, v in values.items()
            if v is not None or k not in self.secret_fields
        }

    async def _flush(self, uow: UnitOfWork) -> None:
        try:
            await uow.session.flush()
        except IntegrityError:
            raise Conflict(
                f"a {self.entity.replace('_', ' ')} with these values already exists"
            ) from None

    def _columns(self, values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k not in self.extra_fields}

    async def create(
        self, uow: UnitOfWork, body: BaseModel, extra: dict[str, Any] | None = None
    ) -> M:
        """Create from a request; `extra` adds server-made column values."""
        self.require(uow.scope, "create")
        values = body.model_dump() | (extra or {})
        tenant_id = await self.owner(uow, values.pop("tenant_id", None))
        values = await self.check(uow, tenant_id, values, None)
        now = uow.clock.now()
        stamps = {"created_at": now}
        if hasattr(self.model, "updated_at"):
            stamps["updated_at"] = now
        obj = self.model(**self._columns(values), **stamps)
        if self.tenancy != "platform":
            setattr(obj, "tenant_id", tenant_id)  # noqa: B010 - not every model has the column
        uow.session.add(obj)
        await self._flush(uow)
        await self.after_write(uow, obj, values, creating=True)
        await self.changed(uow, tenant_id, self.id_of(obj), "created", self._redact(values))
        return obj

    async def create_out(self, uow: UnitOfWork, body: BaseModel) -> BaseModel:
        """Create and describe the new object as the API answers it."""
        return await self.out(uow.session, uow.scope, await self.create(uow, body))

    async def update(self, uow: UnitOfWork, obj_id: str, body: BaseModel) -> M:
        self.require(uow.scope, "update")
        obj = await self.get(uow.session, uow.scope, obj_id)
        self.writable(uow.scope, obj)
        values = body.model_dump(exclude_unset=True)
        tenant_id = self.tenant_of(obj)
        values = await self.check(uow, tenant_id, values, obj)
        before = {k: getattr(obj, k) for k in self._columns(values) if hasattr(obj, k)}
        for key, value in self._columns(values).items():
            setattr(obj, key, value)
        obj_updated_at = uow.clock.now()
        setattr(obj, "updated_at", obj_updated_at)  # noqa: B010 - generic over models
        await self._flush(uow)
        await self.after_write(uow, obj, values, creating=False)
        changes = {
            "before": self._redact({k: _plain(v) for k, v in before.items()}),
            "after": self._redact({k: _plain(v) for k, v in values.items()}),
        }
        await self.changed(uow, tenant_id, self.id_of(obj), "updated", changes)
        return obj

    async def delete(self, uow: UnitOfWork, obj_id: str) -> None:
        self.require(uow.scope, "delete")
        obj = await self.get(uow.session, uow.scope, obj_id)
        self.writable(uow.scope, obj)
        tenant_id = self.tenant_of(obj)
        await uow.session.delete(obj)
        try:
            await uow.session.flush()
        except IntegrityError:
            raise Conflict(
                f"this {self.entity.replace('_', ' ')} is still in use; remove what refers to it"
            ) from None
        await self.changed(uow, tenant_id, obj_id, "deleted", {})

    async def changed(
        self,
        uow: UnitOfWork,
        tenant_id: str | None,
        obj_id: str,
        action: ChangeAction,
        changes: dict[str, Any],
    ) -> None:
        if self.is_data:
            uow.data_changed(tenant_id, self.entity, obj_id, action, changes)
        else:
            await uow.config_changed(tenant_id, self.entity, obj_id, action, changes)

    @staticmethod
    def id_of(obj: Base) -> str:
        return str(getattr(obj, "id"))  # noqa: B009 - generic over models

    def tenant_of(self, obj: M) -> str | None:
        return None if self.tenancy == "platform" else getattr(obj, "tenant_id", None)


def _plain(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


async def ensure_ref(
    session: AsyncSession,
    model: type[Base],
    obj_id: str | None,
    tenant_id: str | None,
    field: str,
    *,
    allow_shared: bool = False,
) -> None:
    """Check that a referenced object exists and belongs to the same tenant."""
    if obj_id is None:
        return
    col = _col(model, "tenant_id")
    cond = col == tenant_id if tenant_id is not None else col.is_(None)
    if allow_shared:
        cond = cond | col.is_(None)
    found = (
        await session.execute(select(_col(model, "id")).where(_col(model, "id") == obj_id, cond))
    ).first()
    if found is None:
        raise Invalid(field, f"no such {model.__tablename__.rstrip('s').replace('_', ' ')}")
