"""The resources of the operator's model: who sees them, who changes them, what they check."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel
from sqlalchemy import ColumnElement, Select, delete, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.auth.credentials import Passwords, digest_secrets, new_api_key
from telportal.crm import importance
from telportal.crm.identities import IdentityKind, normalize
from telportal.errors import Conflict, Forbidden, Invalid
from telportal.events.types import ChangeAction
from telportal.store.schema import (
    ApiKey,
    BusinessCenter,
    CallDetailRecord,
    Customer,
    CustomerIdentity,
    Department,
    FlowVersion,
    ImportanceRule,
    NumberLink,
    Queue,
    QueueMember,
    QueueSkill,
    Service,
    ServiceNumber,
    Site,
    Skill,
    Tenant,
    Trunk,
    User,
    UserSkill,
)
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy import schemas as s
from telportal.tenancy.crud import MAX_PAGE, Action, Resource, ensure_ref
from telportal.tenancy.roles import Role, Scope

OPERATOR_ONLY: dict[Action, Role] = {
    "read": Role.AGENT,
    "create": Role.PLATFORM_OPERATOR,
    "update": Role.PLATFORM_OPERATOR,
    "delete": Role.PLATFORM_OPERATOR,
}


class Tenants(Resource[Tenant]):
    entity = "tenant"
    path = "tenants"
    model = Tenant
    tenancy = "platform"
    create_schema = s.TenantCreate
    update_schema = s.TenantUpdate
    out_schema = s.TenantOut
    roles = OPERATOR_ONLY

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        return [] if scope.tenant_id is None else [Tenant.id == scope.tenant_id]

    def tenant_of(self, obj: Tenant) -> str | None:
        return obj.id

    async def create(
        self, uow: UnitOfWork, body: BaseModel, extra: dict[str, Any] | None = None
    ) -> Tenant:
        tenant = await super().create(uow, body, extra)
        # Announce the tenant in its own scope too, so its revision starts at 1
        # and sites subscribed to the tenant learn that it exists.
        await uow.config_changed(tenant.id, self.entity, tenant.id, "created", {})
        return tenant


class Sites(Resource[Site]):
    entity = "site"
    path = "sites"
    model = Site
    tenancy = "platform"
    create_schema = s.SiteCreate
    update_schema = s.SiteUpdate
    out_schema = s.SiteOut
    roles = OPERATOR_ONLY


class BusinessCenters(Resource[BusinessCenter]):
    entity = "business_center"
    path = "business-centers"
    model = BusinessCenter
    tenancy = "optional"
    create_schema = s.BusinessCenterCreate
    update_schema = s.BusinessCenterUpdate
    out_schema = s.BusinessCenterOut

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        if scope.tenant_id is None:
            return []
        return [(BusinessCenter.tenant_id == scope.tenant_id) | BusinessCenter.tenant_id.is_(None)]

    def writable(self, scope: Scope, obj: BusinessCenter) -> None:
        if scope.tenant_id is not None and obj.tenant_id is None:
            raise Forbidden("shared business centers are managed by the platform operator")

    async def check(
        self,
        uow: UnitOfWork,
        tenant_id: str | None,
        values: dict[str, Any],
        obj: BusinessCenter | None,
    ) -> dict[str, Any]:
        if (
            values.get("site_id") is not None
            and await uow.session.get(Site, values["site_id"]) is None
        ):
            raise Invalid("site_id", "no such site")
        return values


class Services(Resource[Service]):
    entity = "service"
    path = "services"
    model = Service
    create_schema = s.ServiceCreate
    update_schema = s.ServiceUpdate
    out_schema = s.ServiceOut

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: Service | None
    ) -> dict[str, Any]:
        if "business_center_id" in values:
            if values["business_center_id"] is None:
                raise Invalid("business_center_id", "a service is always run by a business center")
            await ensure_ref(
                uow.session,
                BusinessCenter,
                values["business_center_id"],
                tenant_id,
                "business_center_id",
                allow_shared=True,
            )
        return values


class Numbers(Resource[ServiceNumber]):
    entity = "service_number"
    path = "numbers"
    model = ServiceNumber
    tenancy = "platform"
    create_schema = s.NumberCreate
    update_schema = s.NumberUpdate
    out_schema = s.NumberOut
    roles = OPERATOR_ONLY

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        if scope.tenant_id is None:
            return []
        linked = select(NumberLink.number_id).where(NumberLink.tenant_id == scope.tenant_id)
        return [ServiceNumber.id.in_(linked)]

    async def out(self, session: AsyncSession, scope: Scope, obj: ServiceNumber) -> BaseModel:
        q = select(NumberLink).where(NumberLink.number_id == obj.id)
        if scope.tenant_id is not None:
            q = q.where(NumberLink.tenant_id == scope.tenant_id)
        links = (await session.execute(q.order_by(NumberLink.created_at))).scalars().all()
        return s.NumberOut(
            id=obj.id,
            number=obj.number,
            description=obj.description,
            links=[s.NumberLinkOut.model_validate(link) for link in links],
            created_at=obj.created_at,
            updated_at=obj.updated_at,
        )


class NumberLinks(Resource[NumberLink]):
    """Assigning a number to a tenant is the operator's act; routing it is the tenant's."""

    entity = "number_link"
    path = "number-links"
    model = NumberLink
    create_schema = s.NumberLinkCreate
    update_schema = s.NumberLinkUpdate
    out_schema = s.NumberLinkOut
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.AGENT,
        "create": Role.PLATFORM_OPERATOR,
        "update": Role.TENANT_ADMIN,
        "delete": Role.PLATFORM_OPERATOR,
    }

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: NumberLink | None
    ) -> dict[str, Any]:
        if obj is None and await uow.session.get(ServiceNumber, values["number_id"]) is None:
            raise Invalid("number_id", "no such service number")
        await ensure_ref(uow.session, Service, values.get("service_id"), tenant_id, "service_id")
        number_id = obj.number_id if obj else values["number_id"]
        prefix = values.get("caller_prefix", obj.caller_prefix if obj else None)
        digit = values.get("ivr_digit", obj.ivr_digit if obj else None)
        # Two links of one number with the same selector could never be told apart.
        clash = select(NumberLink.id).where(
            NumberLink.number_id == number_id,
            NumberLink.caller_prefix.is_(None)
            if prefix is None
            else NumberLink.caller_prefix == prefix,
            NumberLink.ivr_digit.is_(None) if digit is None else NumberLink.ivr_digit == digit,
        )
        if obj is not None:
            clash = clash.where(NumberLink.id != obj.id)
        if (await uow.session.execute(clash)).first() is not None:
            raise Conflict(
                "this number already has a link with the same caller_prefix and ivr_digit"
            )
        return values


class Departments(Resource[Department]):
    entity = "department"
    path = "departments"
    model = Department
    create_schema = s.DepartmentCreate
    update_schema = s.DepartmentUpdate
    out_schema = s.DepartmentOut

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: Department | None
    ) -> dict[str, Any]:
        parent = values.get("parent_id")
        await ensure_ref(uow.session, Department, parent, tenant_id, "parent_id")
        # Walk up from the new parent: meeting ourselves would make a cycle.
        while obj is not None and parent is not None:
            if parent == obj.id:
                raise Invalid("parent_id", "a department cannot be inside itself")
            parent = (
                await uow.session.execute(
                    select(Department.parent_id).where(Department.id == parent)
                )
            ).scalar_one_or_none()
        return values


class Skills(Resource[Skill]):
    entity = "skill"
    path = "skills"
    model = Skill
    create_schema = s.SkillCreate
    update_schema = s.SkillUpdate
    out_schema = s.SkillOut


class Users(Resource[User]):
    entity = "user"
    path = "users"
    model = User
    tenancy = "optional"
    create_schema = s.UserCreate
    update_schema = s.UserUpdate
    out_schema = s.UserOut
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.AGENT,
        "create": Role.TENANT_ADMIN,
        "update": Role.TENANT_ADMIN,
        "delete": Role.TENANT_ADMIN,
    }
    secret_fields = frozenset(
        {"password", "sip_password", "password_hash", "sip_ha1_md5", "sip_ha1_sha256"}
    )
    extra_fields = frozenset({"password", "sip_password", "skills"})

    def __init__(self, passwords: Passwords) -> None:
        self.passwords = passwords

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        conds = super().visible(scope)
        if not scope.role.at_least(Role.SUPERVISOR):
            # An agent sees only themself.
            conds.append(User.id == scope.actor_id)
        return conds

    def writable(self, scope: Scope, obj: User) -> None:
        if obj.role == Role.PLATFORM_OPERATOR and not scope.role.at_least(Role.PLATFORM_OPERATOR):
            raise Forbidden("only platform operators manage platform operators")

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: User | None
    ) -> dict[str, Any]:
        role = values.get("role", obj.role if obj else None)
        if role is not None:
            role = Role(role)
            if not uow.scope.role.at_least(role):
                raise Forbidden("you cannot grant a role above your own")
            if (tenant_id is None) != (role == Role.PLATFORM_OPERATOR):
                raise Invalid(
                    "role",
                    "platform operators have no tenant, and every other user has one",
                )
        await ensure_ref(
            uow.session, Department, values.get("department_id"), tenant_id, "department_id"
        )
        for i, skill in enumerate(values.get("skills") or []):
            await ensure_ref(
                uow.session, Skill, skill["skill_id"], tenant_id, f"skills.{i}.skill_id"
            )
        if tenant_id is None and obj is None:
            # Platform operators share one namespace; the unique constraint
            # cannot see it because NULL tenants never compare equal.
            taken = select(User.id).where(
                User.tenant_id.is_(None), User.username == values["username"]
            )
            if (await uow.session.execute(taken)).first() is not None:
                raise Conflict("a user with these values already exists")
        if (
            obj is not None
            and values.get("extension") not in (None, obj.extension)
            and obj.sip_ha1_sha256 is not None
            and values.get("sip_password") is None
        ):
            raise Invalid("extension", "a new extension needs a new sip_password (the phone's)")
        if values.get("password") is not None:
            values["password_hash"] = self.passwords.hash(values["password"])
        if values.get("sip_password") is not None:
            if tenant_id is None:
                raise Invalid("sip_password", "platform operators have no phone")
            realm = (await uow.session.get(Tenant, tenant_id)).slug  # type: ignore[union-attr]
            # The phone's SIP user is the extension (what it registers as and is
            # called by), so HA1 is over the extension, not the sign-in name.
            sip_user = values.get("extension") or (obj.extension if obj else None)
            if not sip_user:
                raise Invalid("sip_password", "a phone needs an extension to register as")
            secrets = digest_secrets(sip_user, realm, values["sip_password"])
            values["sip_ha1_md5"] = secrets.ha1_md5
            values["sip_ha1_sha256"] = secrets.ha1_sha256
        return values

    async def after_write(
        self, uow: UnitOfWork, obj: User, values: dict[str, Any], creating: bool
    ) -> None:
        if values.get("skills") is None:
            return
        await uow.session.execute(delete(UserSkill).where(UserSkill.user_id == obj.id))
        seen: set[str] = set()
        for skill in values["skills"]:
            if skill["skill_id"] in seen:
                raise Invalid("skills", "a skill is listed twice")
            seen.add(skill["skill_id"])
            uow.session.add(
                UserSkill(user_id=obj.id, skill_id=skill["skill_id"], level=skill["level"])
            )
        await uow.session.flush()

    async def out(self, session: AsyncSession, scope: Scope, obj: User) -> BaseModel:
        levels = (
            await session.execute(select(UserSkill).where(UserSkill.user_id == obj.id))
        ).scalars()
        out = s.UserOut.model_validate(obj)
        out.skills = [s.SkillLevel(skill_id=x.skill_id, level=x.level) for x in levels]
        out.has_password = obj.password_hash is not None
        out.has_sip_password = obj.sip_ha1_sha256 is not None
        return out


class Queues(Resource[Queue]):
    entity = "queue"
    path = "queues"
    model = Queue
    create_schema = s.QueueCreate
    update_schema = s.QueueUpdate
    out_schema = s.QueueOut
    extra_fields = frozenset({"member_ids", "skills"})

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: Queue | None
    ) -> dict[str, Any]:
        if "service_id" in values:
            if values["service_id"] is None:
                raise Invalid("service_id", "a queue always belongs to a service")
            await ensure_ref(uow.session, Service, values["service_id"], tenant_id, "service_id")
        for i, user_id in enumerate(values.get("member_ids") or []):
            await ensure_ref(uow.session, User, user_id, tenant_id, f"member_ids.{i}")
        for i, skill in enumerate(values.get("skills") or []):
            await ensure_ref(
                uow.session, Skill, skill["skill_id"], tenant_id, f"skills.{i}.skill_id"
            )
        if obj is not None and ("overflow_action" in values or "overflow_target" in values):
            action = values.get("overflow_action", obj.overflow_action)
            target = values.get("overflow_target", obj.overflow_target)
            try:
                s.check_overflow(action and s.OverflowAction(action), target)
            except ValueError as exc:
                raise Invalid("overflow_target", str(exc)) from None
        return values

    async def after_write(
        self, uow: UnitOfWork, obj: Queue, values: dict[str, Any], creating: bool
    ) -> None:
        if values.get("member_ids") is not None:
            await uow.session.execute(delete(QueueMember).where(QueueMember.queue_id == obj.id))
            for user_id in dict.fromkeys(values["member_ids"]):
                uow.session.add(QueueMember(queue_id=obj.id, user_id=user_id))
        if values.get("skills") is not None:
            await uow.session.execute(delete(QueueSkill).where(QueueSkill.queue_id == obj.id))
            seen: set[str] = set()
            for skill in values["skills"]:
                if skill["skill_id"] in seen:
                    raise Invalid("skills", "a skill is listed twice")
                seen.add(skill["skill_id"])
                uow.session.add(
                    QueueSkill(
                        queue_id=obj.id, skill_id=skill["skill_id"], min_level=skill["min_level"]
                    )
                )
        await uow.session.flush()

    async def out(self, session: AsyncSession, scope: Scope, obj: Queue) -> BaseModel:
        members = await session.execute(
            select(QueueMember.user_id).where(QueueMember.queue_id == obj.id)
        )
        skills = await session.execute(select(QueueSkill).where(QueueSkill.queue_id == obj.id))
        out = s.QueueOut.model_validate(obj)
        out.member_ids = sorted(members.scalars())
        out.skills = sorted(
            (s.RequiredSkill(skill_id=x.skill_id, min_level=x.min_level) for x in skills.scalars()),
            key=lambda x: x.skill_id,
        )
        return out


class ApiKeys(Resource[ApiKey]):
    """Machine credentials. Deleting one revokes it; the row stays for the record."""

    entity = "api_key"
    path = "api-keys"
    model = ApiKey
    tenancy = "optional"
    create_schema = s.ApiKeyCreate
    update_schema = None
    out_schema = s.ApiKeyOut
    created_schema = s.ApiKeyCreated
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.TENANT_ADMIN,
        "create": Role.TENANT_ADMIN,
        "update": Role.TENANT_ADMIN,
        "delete": Role.TENANT_ADMIN,
    }
    secret_fields = frozenset({"key_hash"})

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: ApiKey | None
    ) -> dict[str, Any]:
        role = Role(values["role"])
        if not uow.scope.role.at_least(role):
            raise Forbidden("you cannot grant a role above your own")
        if (tenant_id is None) != (role == Role.PLATFORM_OPERATOR):
            raise Invalid("role", "platform keys have no tenant, and every other key has one")
        return values

    async def create_out(self, uow: UnitOfWork, body: BaseModel) -> BaseModel:
        key = new_api_key()
        obj = await self.create(
            uow,
            body,
            extra={"prefix": key.prefix, "key_hash": key.hash, "created_by": uow.scope.actor_name},
        )
        out = s.ApiKeyOut.model_validate(obj).model_dump()
        return s.ApiKeyCreated.model_validate({**out, "key": key.secret})

    async def delete(self, uow: UnitOfWork, obj_id: str) -> None:
        self.require(uow.scope, "delete")
        obj = await self.get(uow.session, uow.scope, obj_id)
        if obj.revoked_at is None:
            obj.revoked_at = uow.clock.now()
            uow.audit(obj.tenant_id, self.entity, obj.id, "revoked", {})


class Trunks(Resource[Trunk]):
    """Carriers and PBXs. A tenant sees only its own; shared ones are the operator's."""

    entity = "trunk"
    path = "trunks"
    model = Trunk
    tenancy = "optional"
    create_schema = s.TrunkCreate
    update_schema = s.TrunkUpdate
    out_schema = s.TrunkOut
    secret_fields = frozenset({"password", "auth_ha1_md5", "auth_ha1_sha256"})
    extra_fields = frozenset({"password"})

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: Trunk | None
    ) -> dict[str, Any]:
        if values.get("password") is not None:
            username = values.get("username") or (obj.username if obj else None)
            realm = values.get("auth_realm") or (obj.auth_realm if obj else None)
            if username is None or realm is None:
                raise Invalid("password", "needs username and auth_realm")
            ha1 = digest_secrets(username, realm, values["password"])
            values["auth_ha1_md5"] = ha1.ha1_md5
            values["auth_ha1_sha256"] = ha1.ha1_sha256
        elif obj is not None and ({"username", "auth_realm"} & values.keys()):
            # The stored HA1 covers the old name and realm; it cannot be kept.
            values["auth_ha1_md5"] = values["auth_ha1_sha256"] = None
        return values

    async def out(self, session: AsyncSession, scope: Scope, obj: Trunk) -> BaseModel:
        out = s.TrunkOut.model_validate(obj)
        out.has_password = obj.auth_ha1_sha256 is not None
        return out


class Flows(Resource[FlowVersion]):
    """Published versions of a service's IVR flow (issue 5).

    Not among `all_resources`: versions live under their service
    (`/services/{id}/flows`), are never changed or deleted, and are written by
    `telportal.ivr.publishing.FlowRepository`. "update" is the role that rolls back.
    """

    entity = "flow"
    path = "flows"
    model = FlowVersion
    create_schema = s.FlowPublish
    update_schema = None
    out_schema = s.FlowVersionOut
    _verbs: ClassVar[dict[Action, str]] = {"create": "publish", "update": "roll back"}

    def require(self, scope: Scope, action: Action) -> None:
        if not scope.role.at_least(self.roles[action]):
            raise Forbidden(f"your role may not {self._verbs.get(action, action)} flows")


@dataclass(frozen=True)
class CallFilter:
    """What `GET /calls` narrows by; every field is optional and they combine with AND."""

    caller: str | None = None
    called: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tenant_id: str | None = None
    service_id: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    direction: str | None = None
    hangup_by: str | None = None
    answered: bool | None = None


class Calls(Resource[CallDetailRecord]):
    """Call records: read here, written by `telportal.calls_store.CallRecords`.

    Supervisors and above see every call of their tenant; agents see the calls they
    answered, and nothing else.
    """

    entity = "call"
    path = "calls"
    model = CallDetailRecord
    update_schema = None
    out_schema = s.CallRecordOut
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.AGENT,
        "create": Role.PLATFORM_OPERATOR,
        "update": Role.PLATFORM_OPERATOR,
        "delete": Role.PLATFORM_OPERATOR,
    }

    def visible(self, scope: Scope) -> list[ColumnElement[bool]]:
        conds = super().visible(scope)
        if not scope.role.at_least(Role.SUPERVISOR):
            if scope.actor_kind == "user" and scope.actor_id is not None:
                conds.append(CallDetailRecord.agent_id == scope.actor_id)
            else:
                conds.append(false())
        return conds

    async def list(
        self,
        session: AsyncSession,
        scope: Scope,
        limit: int = 50,
        offset: int = 0,
        tenant_id: str | None = None,
    ) -> tuple[Sequence[CallDetailRecord], int]:
        return await self.search(session, scope, CallFilter(tenant_id=tenant_id), limit, offset)

    def filtered(self, scope: Scope, f: CallFilter) -> Select[CallDetailRecord]:
        """The visible records matching `f`, newest first; `since` inclusive, `until` not."""
        self.require(scope, "read")
        q = self.query(scope)
        for column, value in (
            (CallDetailRecord.caller, f.caller),
            (CallDetailRecord.called, f.called),
            (CallDetailRecord.tenant_id, f.tenant_id),
            (CallDetailRecord.service_id, f.service_id),
            (CallDetailRecord.queue, f.queue),
            (CallDetailRecord.agent_id, f.agent_id),
            (CallDetailRecord.direction, f.direction),
            (CallDetailRecord.hangup_by, f.hangup_by),
        ):
            if value is not None:
                q = q.where(column == value)
        if f.since is not None:
            q = q.where(CallDetailRecord.started_at >= f.since)
        if f.until is not None:
            q = q.where(CallDetailRecord.started_at < f.until)
        if f.answered is not None:
            answered = CallDetailRecord.answered_at
            q = q.where(answered.is_not(None) if f.answered else answered.is_(None))
        return q.order_by(CallDetailRecord.started_at.desc(), CallDetailRecord.id.desc())

    async def search(
        self,
        session: AsyncSession,
        scope: Scope,
        f: CallFilter,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[Sequence[CallDetailRecord], int]:
        q = self.filtered(scope, f)
        total = await session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
        rows = await session.execute(q.limit(min(limit, MAX_PAGE)).offset(offset))
        return rows.scalars().all(), int(total or 0)


class Customers(Resource[Customer]):
    """Customers: data, not configuration. Agents create and update them as they work."""

    entity = "customer"
    path = "customers"
    model = Customer
    create_schema = s.CustomerCreate
    update_schema = s.CustomerUpdate
    out_schema = s.CustomerOut
    is_data = True
    roles: ClassVar[dict[Action, Role]] = {
        "read": Role.AGENT,
        "create": Role.AGENT,
        "update": Role.AGENT,
        "delete": Role.SUPERVISOR,
    }
    extra_fields = frozenset({"identities"})

    async def check(
        self, uow: UnitOfWork, tenant_id: str | None, values: dict[str, Any], obj: Customer | None
    ) -> dict[str, Any]:
        # A level given through the API (by an agent, an enterprise's push or the
        # lookup) is the level set by hand: the floor. `importance` itself is the
        # effective level, kept by `crm.importance` from the floor and the rules.
        if "importance" in values:
            values["importance_manual"] = values.pop("importance")
        if obj is None:  # a new customer starts at its floor; its rules apply after
            manual = values.get("importance_manual")
            values["importance"] = manual or 0
            values["importance_rule"] = "" if manual is None else "manual"
        if values.get("identities") is not None:
            seen: set[tuple[str, str]] = set()
            normalized = []
            for item in values["identities"]:
                kind = IdentityKind(item["kind"])
                key = (kind.value, normalize(kind, item["value"]))
                if key not in seen:
                    seen.add(key)
                    normalized.append({"kind": key[0], "value": key[1]})
            values["identities"] = normalized
        return values

    async def after_write(
        self, uow: UnitOfWork, obj: Customer, values: dict[str, Any], creating: bool
    ) -> None:
        if values.get("identities") is not None:
            await self._identities(uow, obj, values["identities"])
        # The facts the rules look at: the floor and the tags (spend comes with
        # purchases, `crm.store.add_interaction`).
        if creating or values.keys() & {"importance_manual", "tags"}:
            await importance.refresh(uow, obj.tenant_id, obj)

    async def _identities(
        self, uow: UnitOfWork, obj: Customer, identities: list[dict[str, str]]
    ) -> None:
        await uow.session.execute(
            delete(CustomerIdentity).where(CustomerIdentity.customer_id == obj.id)
        )
        await uow.session.flush()
        for item in identities:
            taken = await uow.session.execute(
                select(CustomerIdentity.customer_id).where(
                    CustomerIdentity.tenant_id == obj.tenant_id,
                    CustomerIdentity.kind == item["kind"],
                    CustomerIdentity.value == item["value"],
                )
            )
            other = taken.scalar_one_or_none()
            if other is not None:
                raise Conflict(
                    f"{item['kind']} {item['value']} belongs to customer {other}; merge them"
                )
            uow.session.add(
                CustomerIdentity(
                    tenant_id=obj.tenant_id,
                    customer_id=obj.id,
                    kind=item["kind"],
                    value=item["value"],
                )
            )
        await uow.session.flush()

    async def out(self, session: AsyncSession, scope: Scope, obj: Customer) -> BaseModel:
        rows = await session.execute(
            select(CustomerIdentity)
            .where(CustomerIdentity.customer_id == obj.id)
            .order_by(CustomerIdentity.kind, CustomerIdentity.value)
        )
        out = s.CustomerOut.model_validate(obj)
        out.identities = [s.IdentityIn(kind=i.kind, value=i.value) for i in rows.scalars()]
        return out


class ImportanceRules(Resource[ImportanceRule]):
    """A tenant's rules for customers' importance (`crm.importance`). Configuration:
    changes bump the revision; each one also recomputes every customer of the tenant,
    in the same transaction (decision 0012)."""

    entity = "importance_rule"
    path = "importance-rules"
    model = ImportanceRule
    create_schema = s.ImportanceRuleCreate
    update_schema = s.ImportanceRuleUpdate
    out_schema = s.ImportanceRuleOut

    async def check(
        self,
        uow: UnitOfWork,
        tenant_id: str | None,
        values: dict[str, Any],
        obj: ImportanceRule | None,
    ) -> dict[str, Any]:
        # A PATCH may clear the spend criterion with null; nothing else may be null.
        for field in ("name", "level", "any_tags", "enabled"):
            if field in values and values[field] is None:
                raise Invalid(field, "may not be null")
        return values

    async def changed(
        self,
        uow: UnitOfWork,
        tenant_id: str | None,
        obj_id: str,
        action: ChangeAction,
        changes: dict[str, Any],
    ) -> None:
        # The audit entry is JSON: the spend as text, exact (an update's entry has it
        # so already).
        if isinstance(changes.get("min_yearly_spend"), Decimal):
            changes = {**changes, "min_yearly_spend": str(changes["min_yearly_spend"])}
        # First: it bumps the tenant's revision, an upsert whose row lock serialises
        # rule changes of one tenant on PostgreSQL, so the recompute that commits last
        # has seen every rule. After the rule's own flush, so it reads them as they are.
        await super().changed(uow, tenant_id, obj_id, action, changes)
        if tenant_id is not None:
            await importance.refresh_tenant(uow, tenant_id)


def all_resources(passwords: Passwords) -> list[Resource[Any]]:
    return [
        Tenants(),
        Sites(),
        BusinessCenters(),
        Services(),
        Numbers(),
        NumberLinks(),
        Departments(),
        Skills(),
        Users(passwords),
        Queues(),
        ApiKeys(),
        Trunks(),
        Customers(),
        ImportanceRules(),
    ]
