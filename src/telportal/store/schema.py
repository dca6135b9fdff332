"""Tables of the operator's model (MISSION M13) and of access control.

Every tenant-owned row carries `tenant_id`, and deleting a tenant removes
everything it owns in one action (ON DELETE CASCADE; MISSION M18). Platform
objects (sites, service numbers, shared business centers) have no tenant.
Ids are UUIDs with 74 random bits, so that they cannot be guessed or counted.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from telportal.store.ids import new_id

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way out on every backend (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


def _tenant_fk(nullable: bool = False, index: bool = True) -> Mapped[Any]:
    return mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=nullable, index=index
    )


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The SIP domain that names this tenant in Request-URIs (besides its slug).
    sip_domain: Mapped[str | None] = mapped_column(String(255), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Site(Base):
    """A physical site. Roles: access (SIP edge, IVR), center (agents), control."""

    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    roles: Mapped[list[str]]
    region: Mapped[str] = mapped_column(String(63))
    sip_uri: Mapped[str | None] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BusinessCenter(Base):
    """Runs services and owns their configuration. Shared when `tenant_id` is None."""

    __tablename__ = "business_centers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = _tenant_fk(nullable=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    site_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("sites.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Service(Base):
    """A tenant's line of business (业务); run by exactly one business center."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("tenant_id", "code"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    code: Mapped[str] = mapped_column(String(63))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    business_center_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("business_centers.id", ondelete="RESTRICT"), index=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ServiceNumber(Base):
    """A dialled number (DID, 400/800). Platform-owned; linked to tenants by NumberLink."""

    __tablename__ = "service_numbers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NumberLink(Base):
    """One number serving one tenant (and one of its services).

    Several links on one number share it between tenants or services; a call is
    told apart by the calling number's prefix or by the caller's IVR choice.
    """

    __tablename__ = "number_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    number_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("service_numbers.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = _tenant_fk()
    service_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    caller_prefix: Mapped[str | None] = mapped_column(String(32))
    ivr_digit: Mapped[str | None] = mapped_column(String(4))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Department(Base):
    __tablename__ = "departments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("departments.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Skill(Base):
    __tablename__ = "skills"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class User(Base):
    """A person who signs in. Platform operators have no tenant.

    Secrets are never stored in the clear: `password_hash` is argon2, and the SIP
    secret is kept only as digest HA1 values (RFC 2617 MD5, RFC 8760 SHA-256)
    over the tenant's realm.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "username"),
        UniqueConstraint("tenant_id", "extension"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = _tenant_fk(nullable=True)
    username: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[str] = mapped_column(String(32))
    agent_kinds: Mapped[list[str]]
    extension: Mapped[str | None] = mapped_column(String(32))
    mobile_number: Mapped[str | None] = mapped_column(String(32))
    department_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("departments.id", ondelete="SET NULL")
    )
    password_hash: Mapped[str | None] = mapped_column(String(255))
    sip_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class UserSkill(Base):
    __tablename__ = "user_skills"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    level: Mapped[int] = mapped_column(Integer)


class Queue(Base):
    """Where calls wait for agents. The ACD (another layer) gives it behaviour."""

    __tablename__ = "queues"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    service_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    max_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    max_size: Mapped[int | None] = mapped_column(Integer)
    wrap_up_seconds: Mapped[int] = mapped_column(Integer, default=10)
    # How long one agent's phone rings before the call goes back to the queue's head.
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer, default=20)
    # Service level: the share of calls answered within this many seconds.
    service_level_seconds: Mapped[int] = mapped_column(Integer, default=20)
    # Where a call goes past max_wait or max_size: queue, service, voicemail,
    # callback or agent (a supervisor's extension); NULL keeps it waiting.
    overflow_action: Mapped[str | None] = mapped_column(String(16))
    overflow_target: Mapped[str | None] = mapped_column(String(100))
    offer_callback: Mapped[bool] = mapped_column(Boolean, default=True)
    announce_position: Mapped[bool] = mapped_column(Boolean, default=True)
    # Music on hold: a WAV under the data dir's prompts; NULL plays the built-in music.
    music: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class QueueSkill(Base):
    """A skill a queue's calls need, with the least proficiency that will do."""

    __tablename__ = "queue_skills"

    queue_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    min_level: Mapped[int] = mapped_column(Integer, default=1)


class QueueMember(Base):
    __tablename__ = "queue_members"

    queue_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Trunk(Base):
    """A SIP peer we exchange calls with without registration: a carrier or a PBX.

    Requests from `inbound_addresses` are trusted as this trunk and not
    challenged. For outbound authentication only HA1 values over `auth_realm`
    are kept, which is all a digest client needs.
    """

    __tablename__ = "trunks"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = _tenant_fk(nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    # None: the carrier is located by DNS, its SRV records giving hosts and ports (RFC 3263).
    port: Mapped[int | None] = mapped_column(Integer)
    transport: Mapped[str] = mapped_column(String(8), default="udp")
    inbound_addresses: Mapped[list[str]]
    username: Mapped[str | None] = mapped_column(String(100))
    auth_realm: Mapped[str | None] = mapped_column(String(255))
    auth_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    auth_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    max_channels: Mapped[int | None] = mapped_column(Integer)
    keepalive: Mapped[bool] = mapped_column(Boolean, default=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class FlowVersion(Base):
    """One published text of a service's IVR flow. Versions count from 1 per service and
    are never changed or reused, so a call record's `flow_version` names the exact text."""

    __tablename__ = "flows"
    __table_args__ = (UniqueConstraint("service_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    service_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    yaml: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime]
    published_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")


class CurrentFlow(Base):
    """Which version of a service's flow new calls run: at most one row per service.

    The foreign key on (service_id, version) lets the database guarantee that the
    version in service exists and is this service's own.
    """

    __tablename__ = "current_flows"
    __table_args__ = (
        ForeignKeyConstraint(
            ["service_id", "version"], ["flows.service_id", "flows.version"], ondelete="CASCADE"
        ),
    )

    service_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = _tenant_fk()
    version: Mapped[int] = mapped_column(Integer)
    since: Mapped[datetime]
    made_by: Mapped[str] = mapped_column(String(200))


class CallDetailRecord(Base):
    """One call as it happened (a CDR): who called whom, when, and its way through the IVR.

    Data, not configuration: written without audit entries or revision bumps. Records
    outlive the service they were for (`service_id` is then NULL) but not their tenant.
    """

    __tablename__ = "call_records"
    __table_args__ = (
        UniqueConstraint("tenant_id", "call_id"),
        Index("ix_call_records_tenant_id_started_at", "tenant_id", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(String(36), ForeignKey("tenants.id", ondelete="CASCADE"))
    call_id: Mapped[str] = mapped_column(String(255))
    site: Mapped[str] = mapped_column(String(63))
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str] = mapped_column(String(255))
    called: Mapped[str] = mapped_column(String(255))
    service_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="SET NULL"), index=True
    )
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(200))
    flow_version: Mapped[int | None] = mapped_column(Integer)
    # The IVR visits in order: step, type, at, elapsed, keys, outcome, notes.
    ivr_path: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    digits: Mapped[list[str]]
    outcome: Mapped[str | None] = mapped_column(String(200))
    # The ACD's part: the queue, the wait, the agent who answered, the conversation.
    queue: Mapped[str | None] = mapped_column(String(100))
    queued_at: Mapped[datetime | None]
    wait_seconds: Mapped[float | None] = mapped_column(Float)
    agent_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    agent_extension: Mapped[str | None] = mapped_column(String(32))
    connected_at: Mapped[datetime | None]
    talk_seconds: Mapped[float | None] = mapped_column(Float)
    # caller, agent, system (the server ended it: flow, timeout, shutdown).
    hangup_by: Mapped[str | None] = mapped_column(String(16))
    recording: Mapped[str | None] = mapped_column(String(500))
    # Each leg: kind (agent, trunk, phone), target, started/answered/ended, status.
    legs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    transfers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # The routing decision and the live figures it used.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The agent's wrap-up: a disposition code and notes, saved from the desktop.
    wrap_up_code: Mapped[str | None] = mapped_column(String(64))
    wrap_up_notes: Mapped[str | None] = mapped_column(Text)
    wrap_up_at: Mapped[datetime | None]


class AccessToken(Base):
    """A bearer token from `POST /auth/token`; only its SHA-256 is kept."""

    __tablename__ = "access_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiKey(Base):
    """A machine credential with a fixed role; only its SHA-256 is kept."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str | None] = _tenant_fk(nullable=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who changed what. No foreign keys: the record outlives what it describes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str | None] = mapped_column(String(36), index=True)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(36))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(36), index=True)
    changes: Mapped[dict[str, Any]]


class IdempotencyRecord(Base):
    """The stored answer to a write sent with an Idempotency-Key, for replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    principal: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1000))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class ConfigRevision(Base):
    """A counter per scope ('platform' or a tenant id) that every config change bumps."""

    __tablename__ = "config_revisions"

    scope: Mapped[str] = mapped_column(String(36), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]


class Customer(Base):
    """A customer of a tenant, known across branches and channels (MISSION M9).

    Data, not configuration: changes are audited and announced, never bump the
    revision. `merged_into` points a duplicate at the record that absorbed it; the
    duplicate keeps its history and is hidden from lookups.
    """

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "external_id"),
        # A tenant's customers in id order: how a change of importance rules walks
        # them, one batch at a time (`crm.importance.refresh_tenant`).
        Index("ix_customers_tenant_id_id", "tenant_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(200), default="")
    # The enterprise's own customer id, for its systems to push and find records.
    external_id: Mapped[str | None] = mapped_column(String(100))
    # 0 ordinary .. 5 most important (VIP); raises the call's priority in the queue.
    # The effective level, kept by `crm.importance` from the two below and the
    # tenant's importance rules; everything that reads importance reads this.
    importance: Mapped[int] = mapped_column(Integer, default=0)
    # The level set by hand (API, enterprise push, lookup): a floor the rules can
    # raise but not lower; None when nobody set one.
    importance_manual: Mapped[int | None] = mapped_column(Integer)
    # What gave `importance`: an importance rule's id, "manual", or "" (nothing).
    importance_rule: Mapped[str] = mapped_column(String(36), default="", server_default="")
    tags: Mapped[list[str]]
    notes: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Indexed: what was merged into a customer is asked for each timeline and each
    # recompute of their importance (their purchases count).
    merged_into: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class DecimalText(TypeDecorator[Decimal]):
    """An exact decimal kept as text: SQLite has no decimal type (SQLAlchemy's Numeric
    would round through float there, and warn), and the store never compares these."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(value)


class ImportanceRule(Base):
    """A tenant's rule giving customers an importance level (`cases.customers`): every
    criterion named must hold (yearly spend at least, any of some tags); none named
    means every customer. Configuration: a change recomputes the tenant's customers."""

    __tablename__ = "importance_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    min_yearly_spend: Mapped[Decimal | None] = mapped_column(DecimalText)
    any_tags: Mapped[list[str]]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CustomerIdentity(Base):
    """One way to recognise a customer: a phone number, an email, a chat handle.

    Values are normalised before they are stored or looked up, so one unique index
    answers "who is this?" for any channel.
    """

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("tenant_id", "kind", "value"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    customer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))


class CustomerInteraction(Base):
    """Something that happened with a customer outside our calls: a purchase pushed by
    the enterprise, a note, a message. Calls and cases join the timeline by reference."""

    __tablename__ = "customer_interactions"
    __table_args__ = (
        Index("ix_customer_interactions_customer_id_at", "customer_id", "at"),
        # A tenant's purchases by date: those leaving the yearly window of importance
        # rules (`crm.importance.refresh_aged`).
        Index("ix_customer_interactions_tenant_id_kind_at", "tenant_id", "kind", "at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    customer_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="CASCADE")
    )
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="")
    summary: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    source: Mapped[str] = mapped_column(String(100), default="")


class Case(Base):
    """A request tracked to closure (MISSION M10-M12); the pure rules are telportal.cases.

    Data, not configuration. `number` is the tenant's own running number for people
    to quote ("case 1042"); `version` rises with every event (optimistic concurrency).
    """

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("tenant_id", "number"),
        Index("ix_cases_tenant_id_state", "tenant_id", "state"),
        Index("ix_cases_tenant_id_assignee", "tenant_id", "assignee"),
        Index("ix_cases_tenant_id_customer_id", "tenant_id", "customer_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # No index of its own: every index above starts with it (one B-tree less to
    # write for each new case).
    tenant_id: Mapped[str] = _tenant_fk(index=False)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    service_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("services.id", ondelete="SET NULL")
    )
    customer_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("customers.id", ondelete="SET NULL")
    )
    call_record_id: Mapped[str | None] = mapped_column(
        String(36), ForeignKey("call_records.id", ondelete="SET NULL"), index=True
    )
    channel: Mapped[str] = mapped_column(String(32), default="")
    category: Mapped[str] = mapped_column(String(100), default="")
    urgency: Mapped[str] = mapped_column(String(32), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    department: Mapped[str] = mapped_column(String(100), default="")
    assignee: Mapped[str] = mapped_column(String(100), default="")
    watchers: Mapped[list[str]]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(Text, default="")
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    feedback: Mapped[str] = mapped_column(Text, default="")
    closed_at: Mapped[datetime | None]
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    # SLA pauses: [{"start", "end", "reason"}] as ISO texts.
    pauses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    # When the next escalation step falls due if nothing changes (the desk's wake-up).
    escalate_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CaseEscalation(Base):
    """An escalation step carried out: stored by its key, so each happens once."""

    __tablename__ = "case_escalations"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    chain_id: Mapped[str] = mapped_column(String(100))
    trigger: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer)
    notify: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime]


class CaseFollowUp(Base):
    """A follow-up task (回访): call the customer after the resolution, by rule."""

    __tablename__ = "case_follow_ups"
    __table_args__ = (
        Index("ix_case_follow_ups_tenant_id_state_due_at", "tenant_id", "state", "due_at"),
    )

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    customer_id: Mapped[str] = mapped_column(String(36), default="")
    rule_id: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(32))
    due_at: Mapped[datetime]
    # pending, completed (feedback recorded), cancelled (closed or reopened)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime]


class CaseHistory(Base):
    """Every event of a case, in order: who, when, from which state to which, details."""

    __tablename__ = "case_history"
    __table_args__ = (UniqueConstraint("case_id", "version"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(String(36), ForeignKey("cases.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(32))
    to_state: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CaseAttachment(Base):
    """A file attached to a case (a photo of the broken part, a contract, a voicemail).

    The bytes live under the data dir (`stored_as`, relative to it), written and synced
    before this row is committed; the row is what the API lists and checks access by.
    """

    __tablename__ = "case_attachments"
    __table_args__ = (Index("ix_case_attachments_tenant_id_case_id", "tenant_id", "case_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(String(36), ForeignKey("cases.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_as: Mapped[str] = mapped_column(String(500))
    uploaded_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CaseTimer(Base):
    """A moment a case's SLA must not miss; durable, so a restart fires it late rather
    than never. `fired_at` marks the one firing its key allows."""

    __tablename__ = "case_timers"
    __table_args__ = (Index("ix_case_timers_fired_at_fire_at", "fired_at", "fire_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(32))
    fire_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    fired_at: Mapped[datetime | None]


class CaseSettings(Base):
    """A tenant's case rules: SLA policies, the business calendar they count in, and
    follow-up rules, as validated JSON (the API checks them with telportal.cases)."""

    __tablename__ = "case_settings"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    sla_policies: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    calendar: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    follow_ups: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # {"rules": [...], "default_department": "", "default_assignees": [...]}
    dispatch: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime]


class CrmSettings(Base):
    """Where a tenant's own customer system is asked about callers the CRM does not
    know (`crm.lookup`). Header values are credentials for that system: they are sent
    with each lookup and never shown back by the API."""

    __tablename__ = "crm_settings"

    tenant_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    lookup_url: Mapped[str | None] = mapped_column(String(1000))
    lookup_timeout_ms: Mapped[int] = mapped_column(Integer, default=800)
    lookup_headers: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime]


class EmailOutbox(Base):
    """An email to send (a case's SLA alarm or escalation), stored before it is sent.

    The sender (telportal.notify) delivers pending rows with retries and records each
    try, so a restart or a mail server that is down loses nothing. One row per case,
    alarm (`kind`) and person: the unique key is the deduplication, so telling the same
    alarm twice (a replayed event, the start-up catch-up) stores nothing new. Sent rows
    stay, as the record of who was told what and when.
    """

    __tablename__ = "email_outbox"
    __table_args__ = (
        UniqueConstraint("case_id", "kind", "user_id"),
        Index("ix_email_outbox_state_next_attempt_at", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = _tenant_fk()
    case_id: Mapped[str] = mapped_column(String(36), ForeignKey("cases.id", ondelete="CASCADE"))
    # sla/<target>/<level>, or escalation/<chain>/<episode start>/<level>
    kind: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    to_address: Mapped[str] = mapped_column(String(254))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text)
    # The whole RFC 5322 message as it will be sent.
    message: Mapped[str] = mapped_column(Text)
    # pending, sent, failed (see telportal.notify.delivery)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
