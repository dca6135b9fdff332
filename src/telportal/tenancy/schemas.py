"""Request and response shapes of the operator's model, shared by the API and the CLI.

Requests forbid unknown fields, so a misspelt field is an error that names it
rather than a silently ignored value.
"""

import ipaddress
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    model_validator,
)

from telportal.acd.queues import Strategy
from telportal.config import SiteRole
from telportal.sip import SipParseError, SipUri, parse_uri
from telportal.tenancy.roles import AgentKind, Role

Slug = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", strip_whitespace=True)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Number = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{3,20}$")]
NumberPrefix = Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{1,20}$")]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{2,16}$")]
Username = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=36)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)]


def _site_sip_uri(value: object) -> object:
    """`sip:host[:port][;transport=udp|tcp|tls]`: where other sites send calls to this one."""
    if not isinstance(value, str):
        return value
    try:
        uri = parse_uri(value.strip())
    except SipParseError as exc:
        raise ValueError(f"not a SIP URI: {exc}") from None
    if not isinstance(uri, SipUri) or uri.user is not None:
        raise ValueError("expected sip:HOST[:PORT][;transport=udp|tcp|tls], without a user part")
    transport = (uri.params.get("transport") or "udp").lower()
    if transport not in ("udp", "tcp", "tls"):
        raise ValueError(f"transport {transport!r} is not one of udp, tcp, tls")
    return str(uri)


SiteSipUri = Annotated[str, BeforeValidator(_site_sip_uri), StringConstraints(max_length=255)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- tenants -------------------------------------------------------------------


Domain = Annotated[
    str,
    StringConstraints(
        max_length=255,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$",
        to_lower=True,
    ),
]


class TenantCreate(Input):
    slug: Slug
    name: Name
    sip_domain: Domain | None = Field(None, description="SIP domain naming this tenant")
    enabled: bool = True


class TenantUpdate(Input):
    name: Name | None = None
    sip_domain: Domain | None = None
    enabled: bool | None = None


class TenantOut(Output):
    id: str
    slug: str
    name: str
    sip_domain: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- sites ---------------------------------------------------------------------


class SiteCreate(Input):
    name: Slug
    roles: list[SiteRole] = Field(min_length=1)
    region: Name
    sip_uri: SiteSipUri | None = None
    enabled: bool = True


class SiteUpdate(Input):
    roles: list[SiteRole] | None = Field(None, min_length=1)
    region: Name | None = None
    sip_uri: SiteSipUri | None = None
    enabled: bool | None = None


class SiteOut(Output):
    id: str
    name: str
    roles: list[SiteRole]
    region: str
    sip_uri: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- business centers ------------------------------------------------------------


class BusinessCenterCreate(Input):
    tenant_id: Id | None = Field(
        None, description="Owner; omitted by a platform operator for a shared center"
    )
    name: Name
    description: str = Field("", max_length=2000)
    site_id: Id | None = None


class BusinessCenterUpdate(Input):
    name: Name | None = None
    description: str | None = Field(None, max_length=2000)
    site_id: Id | None = None


class BusinessCenterOut(Output):
    id: str
    tenant_id: str | None
    name: str
    description: str
    site_id: str | None
    created_at: datetime
    updated_at: datetime


# --- services ------------------------------------------------------------------


class ServiceCreate(Input):
    tenant_id: Id | None = None
    code: Slug
    name: Name
    description: str = Field("", max_length=2000)
    business_center_id: Id
    enabled: bool = True


class ServiceUpdate(Input):
    name: Name | None = None
    description: str | None = Field(None, max_length=2000)
    business_center_id: Id | None = None
    enabled: bool | None = None


class ServiceOut(Output):
    id: str
    tenant_id: str
    code: str
    name: str
    description: str
    business_center_id: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- service numbers and their links ------------------------------------------------


class NumberCreate(Input):
    number: Number
    description: str = Field("", max_length=2000)


class NumberUpdate(Input):
    description: str | None = Field(None, max_length=2000)


class NumberLinkOut(Output):
    id: str
    number_id: str
    tenant_id: str
    service_id: str | None
    caller_prefix: str | None
    ivr_digit: str | None
    created_at: datetime
    updated_at: datetime


class NumberOut(Output):
    id: str
    number: str
    description: str
    links: list[NumberLinkOut] = Field(
        default_factory=list, description="Only the links of the caller's own tenant"
    )
    created_at: datetime
    updated_at: datetime


IvrDigit = Annotated[str, StringConstraints(pattern=r"^[0-9*#]{1,4}$")]


class NumberLinkCreate(Input):
    number_id: Id
    tenant_id: Id | None = None
    service_id: Id | None = None
    caller_prefix: NumberPrefix | None = Field(
        None, description="Calls from numbers starting with this go to this link"
    )
    ivr_digit: IvrDigit | None = Field(
        None, description="On a shared number, the IVR choice that selects this link"
    )


class NumberLinkUpdate(Input):
    service_id: Id | None = None
    caller_prefix: NumberPrefix | None = None
    ivr_digit: IvrDigit | None = None


# --- departments and skills -----------------------------------------------------------


class DepartmentCreate(Input):
    tenant_id: Id | None = None
    name: Name
    parent_id: Id | None = None


class DepartmentUpdate(Input):
    name: Name | None = None
    parent_id: Id | None = None


class DepartmentOut(Output):
    id: str
    tenant_id: str
    name: str
    parent_id: str | None
    created_at: datetime
    updated_at: datetime


class SkillCreate(Input):
    tenant_id: Id | None = None
    name: Name
    description: str = Field("", max_length=2000)


class SkillUpdate(Input):
    name: Name | None = None
    description: str | None = Field(None, max_length=2000)


class SkillOut(Output):
    id: str
    tenant_id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime


# --- users ---------------------------------------------------------------------


class SkillLevel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill_id: Id
    level: int = Field(5, ge=1, le=10, description="Proficiency, 1 (novice) to 10 (expert)")


class UserCreate(Input):
    tenant_id: Id | None = Field(
        None, description="Omitted by a platform operator only for another platform operator"
    )
    username: Username
    display_name: str = Field("", max_length=200)
    email: Email | None = None
    role: Role
    agent_kinds: list[AgentKind] = Field(default_factory=list)
    extension: Extension | None = None
    mobile_number: Number | None = None
    department_id: Id | None = None
    password: Password | None = None
    sip_password: Password | None = None
    skills: list[SkillLevel] = Field(default_factory=list)
    enabled: bool = True


class UserUpdate(Input):
    display_name: str | None = Field(None, max_length=200)
    email: Email | None = None
    role: Role | None = None
    agent_kinds: list[AgentKind] | None = None
    extension: Extension | None = None
    mobile_number: Number | None = None
    department_id: Id | None = None
    password: Password | None = None
    sip_password: Password | None = None
    skills: list[SkillLevel] | None = None
    enabled: bool | None = None


class UserOut(Output):
    id: str
    tenant_id: str | None
    username: str
    display_name: str
    email: str | None
    role: Role
    agent_kinds: list[AgentKind]
    extension: str | None
    mobile_number: str | None
    department_id: str | None
    skills: list[SkillLevel] = Field(default_factory=list)
    has_password: bool = False
    has_sip_password: bool = False
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- queues --------------------------------------------------------------------


# The API offers exactly the strategies the ACD implements.
QueueStrategy = Strategy


class OverflowAction(StrEnum):
    """Where a call goes when it waited too long or the queue is full."""

    QUEUE = "queue"  # target: another queue's name
    SERVICE = "service"  # target: a service id (its flow runs)
    VOICEMAIL = "voicemail"  # the caller leaves a message that becomes a case
    CALLBACK = "callback"  # we call back when an agent is free
    AGENT = "agent"  # target: an extension, e.g. a supervisor's (MISSION M10)


class RequiredSkill(BaseModel):
    model_config = ConfigDict(extra="forbid")

    skill_id: Id
    min_level: int = Field(1, ge=1, le=10, description="The least proficiency that will do")


class QueueCreate(Input):
    tenant_id: Id | None = None
    service_id: Id
    name: Slug
    strategy: QueueStrategy = QueueStrategy.LONGEST_IDLE
    priority: int = Field(0, ge=0, le=100)
    max_wait_seconds: int | None = Field(None, ge=1, le=86400)
    max_size: int | None = Field(None, ge=1, le=100_000)
    wrap_up_seconds: int = Field(10, ge=0, le=3600)
    ring_timeout_seconds: int = Field(
        20, ge=5, le=300, description="An agent who does not answer in time is skipped"
    )
    service_level_seconds: int = Field(20, ge=1, le=3600)
    overflow_action: OverflowAction | None = None
    overflow_target: str | None = Field(None, max_length=100)
    offer_callback: bool = True
    announce_position: bool = True
    music: str | None = Field(None, max_length=255, pattern=r"^[A-Za-z0-9_./-]+\.wav$")
    member_ids: list[Id] = Field(default_factory=list, description="Users who answer this queue")
    skills: list[RequiredSkill] = Field(default_factory=list)

    @model_validator(mode="after")
    def _overflow_complete(self) -> "QueueCreate":
        check_overflow(self.overflow_action, self.overflow_target)
        return self


class QueueUpdate(Input):
    service_id: Id | None = None
    strategy: QueueStrategy | None = None
    priority: int | None = Field(None, ge=0, le=100)
    max_wait_seconds: int | None = Field(None, ge=1, le=86400)
    max_size: int | None = Field(None, ge=1, le=100_000)
    wrap_up_seconds: int | None = Field(None, ge=0, le=3600)
    ring_timeout_seconds: int | None = Field(None, ge=5, le=300)
    service_level_seconds: int | None = Field(None, ge=1, le=3600)
    overflow_action: OverflowAction | None = None
    overflow_target: str | None = Field(None, max_length=100)
    offer_callback: bool | None = None
    announce_position: bool | None = None
    music: str | None = Field(None, max_length=255, pattern=r"^[A-Za-z0-9_./-]+\.wav$")
    member_ids: list[Id] | None = None
    skills: list[RequiredSkill] | None = None


_NEEDS_TARGET = {"queue", "service", "agent"}


def check_overflow(action: "OverflowAction | None", target: str | None) -> None:
    if action is not None and action.value in _NEEDS_TARGET and not target:
        raise ValueError(f"overflow_action {action.value} needs an overflow_target")
    if action is None and target:
        raise ValueError("overflow_target needs an overflow_action")


class QueueOut(Output):
    id: str
    tenant_id: str
    service_id: str
    name: str
    strategy: QueueStrategy
    priority: int
    max_wait_seconds: int | None
    max_size: int | None
    wrap_up_seconds: int
    ring_timeout_seconds: int
    service_level_seconds: int
    overflow_action: OverflowAction | None
    overflow_target: str | None
    offer_callback: bool
    announce_position: bool
    music: str | None
    member_ids: list[str] = Field(default_factory=list)
    skills: list[RequiredSkill] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


# --- API keys ------------------------------------------------------------------


class ApiKeyCreate(Input):
    tenant_id: Id | None = None
    name: Name
    role: Role
    expires_at: datetime | None = None


class ApiKeyOut(Output):
    id: str
    tenant_id: str | None
    name: str
    role: Role
    prefix: str
    created_by: str | None
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The secret; shown once, never stored in the clear")


# --- trunks --------------------------------------------------------------------


class SipTransportName(StrEnum):
    UDP = "udp"
    TCP = "tcp"
    TLS = "tls"


def _address_or_network(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"not an IP address or network: {value!r}") from None


AddressOrNetwork = Annotated[str, AfterValidator(_address_or_network)]
Host = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:\[\]-]{1,255}$")]


class TrunkCreate(Input):
    tenant_id: Id | None = Field(
        None, description="Omitted by a platform operator for a shared trunk"
    )
    name: Slug
    host: Host
    port: int | None = Field(
        5060,
        ge=1,
        le=65535,
        description="null: find the carrier's servers from the DNS SRV records of `host` "
        "(RFC 3263), trying the next one when a server does not answer or answers 503",
    )
    transport: SipTransportName = SipTransportName.UDP
    inbound_addresses: list[AddressOrNetwork] = Field(
        default_factory=list, description="Requests from these are this trunk's, not challenged"
    )
    username: str | None = Field(None, max_length=100)
    auth_realm: str | None = Field(None, max_length=255)
    password: Password | None = Field(None, description="For outbound authentication; kept as HA1")
    max_channels: int | None = Field(None, ge=1, le=100_000)
    keepalive: bool = True
    enabled: bool = True

    @model_validator(mode="after")
    def _auth_complete(self) -> "TrunkCreate":
        if self.password is not None and (self.username is None or self.auth_realm is None):
            raise ValueError("password needs username and auth_realm")
        return self


class TrunkUpdate(Input):
    host: Host | None = None
    port: int | None = Field(None, ge=1, le=65535)
    transport: SipTransportName | None = None
    inbound_addresses: list[AddressOrNetwork] | None = None
    username: str | None = Field(None, max_length=100)
    auth_realm: str | None = Field(None, max_length=255)
    password: Password | None = None
    max_channels: int | None = Field(None, ge=1, le=100_000)
    keepalive: bool | None = None
    enabled: bool | None = None


class TrunkOut(Output):
    id: str
    tenant_id: str | None
    name: str
    host: str
    port: int | None
    transport: SipTransportName
    inbound_addresses: list[str]
    username: str | None
    auth_realm: str | None
    has_password: bool = False
    max_channels: int | None
    keepalive: bool
    enabled: bool
    created_at: datetime
    updated_at: datetime


# --- IVR flows -----------------------------------------------------------------

FlowNote = Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)]


class FlowPublish(Input):
    yaml: str = Field(
        min_length=1, max_length=1_000_000, description="The flow file's text (docs/flows.md)"
    )
    note: FlowNote = Field("", description="Why this version: shown in the version list")


class FlowVersionOut(Output):
    id: str
    tenant_id: str
    service_id: str
    version: int = Field(description="1 for the service's first flow, then 2, 3, ...")
    sha256: str = Field(description="Of the text, to compare with a file at hand")
    published_at: datetime
    published_by: str
    note: str
    current: bool = Field(False, description="Whether new calls run this version")


class FlowVersionDetail(FlowVersionOut):
    yaml: str


class CurrentFlowOut(FlowVersionDetail):
    current_since: datetime = Field(description="When this version was put in service")
    made_current_by: str


# --- call records ----------------------------------------------------------------


class IvrVisitOut(BaseModel):
    step: str
    type: str
    at: datetime
    elapsed: float = Field(description="Seconds since the call entered the flow")
    keys: list[str] = Field(description='Keys pressed per try; "(timeout)" for silence')
    outcome: str
    notes: list[str] = Field(default_factory=list)


class CallRecordOut(Output):
    id: str
    tenant_id: str
    call_id: str
    site: str
    direction: str
    caller: str
    called: str
    service_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    flow_version: int | None = Field(description="The service's flow version the call ran")
    ivr_path: list[IvrVisitOut]
    digits: list[str] = Field(description="Every key the caller pressed in the IVR, in order")
    outcome: str | None
    queue: str | None
    queued_at: datetime | None
    wait_seconds: float | None = Field(description="From entering the queue to an agent")
    agent_id: str | None
    agent_extension: str | None
    connected_at: datetime | None = Field(description="When the agent was put through")
    talk_seconds: float | None
    hangup_by: str | None = Field(description="caller, agent or system")
    recording: str | None = Field(description="The recording's file, under the data dir")
    legs: list[dict[str, Any]] = Field(
        default_factory=list, description="Each leg: kind, target, times and status"
    )
    transfers: list[dict[str, Any]] = Field(default_factory=list)
    routing: dict[str, Any] | None = Field(
        None, description="The routing decision and the live figures it used"
    )
    wrap_up_code: str | None = Field(None, description="The agent's disposition code")
    wrap_up_notes: str | None = None
    wrap_up_at: datetime | None = None


class WrapUpIn(BaseModel):
    """The agent's wrap-up of a call: what came of it, in a code reports can count."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        examples=["resolved", "information", "callback", "complaint", "wrong_number", "other"],
    )
    notes: str = Field("", max_length=4000)


# --- customers ---------------------------------------------------------------------


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["phone", "email", "chat", "external"]
    value: str = Field(min_length=1, max_length=255)


IMPORTANCE_SET_BY_HAND = (
    "0 ordinary .. 5 most important (VIP), set by hand: a floor the tenant's importance "
    "rules may raise but not lower; null (or omitted) leaves the level to the rules"
)


class CustomerCreate(Input):
    tenant_id: Id | None = None
    name: str = Field("", max_length=200)
    external_id: str | None = Field(None, max_length=100, description="The enterprise's own id")
    importance: int | None = Field(None, ge=0, le=5, description=IMPORTANCE_SET_BY_HAND)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=50)]] = Field(
        default_factory=list, max_length=50
    )
    notes: str = Field("", max_length=10_000)
    attributes: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict, description="Free fields from the enterprise's systems"
    )
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)


class CustomerUpdate(Input):
    name: str | None = Field(None, max_length=200)
    external_id: str | None = Field(None, max_length=100)
    importance: int | None = Field(None, ge=0, le=5, description=IMPORTANCE_SET_BY_HAND)
    tags: list[Annotated[str, StringConstraints(min_length=1, max_length=50)]] | None = Field(
        None, max_length=50
    )
    notes: str | None = Field(None, max_length=10_000)
    attributes: dict[str, str | int | float | bool | None] | None = None
    identities: list[IdentityIn] | None = Field(None, max_length=50)


class CustomerOut(Output):
    id: str
    tenant_id: str
    name: str
    external_id: str | None
    importance: int = Field(
        description="The effective level: the higher of the hand-set one and the rules'"
    )
    importance_manual: int | None = Field(description="The level set by hand, if any")
    importance_rule: str = Field(
        description='What gave the level: an importance rule\'s id, "manual", or ""'
    )
    tags: list[str]
    notes: str
    attributes: dict[str, Any]
    identities: list[IdentityIn] = Field(default_factory=list)
    merged_into: str | None
    created_at: datetime
    updated_at: datetime


# --- importance rules --------------------------------------------------------------

Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Level = Annotated[int, Field(ge=1, le=5, description="1 .. 5 (VIP)")]
Spend = Annotated[
    Decimal,
    Field(
        ge=0,
        max_digits=14,
        decimal_places=2,
        description="Yearly spend at least this: the sum of `data.amount` of the customer's "
        "`purchase` interactions of the last 365 days",
    ),
    # A number in JSON, as amounts are pushed; exact in the store.
    PlainSerializer(float, return_type=float, when_used="json"),
]


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


AnyTags = Annotated[
    list[Tag],
    Field(max_length=50, description="The customer has at least one of these tags"),
    AfterValidator(_unique),
]


class ImportanceRuleCreate(Input):
    """Customers meeting every criterion named get `level` (none named: every customer)."""

    tenant_id: Id | None = None
    name: Name
    level: Level
    min_yearly_spend: Spend | None = None
    any_tags: AnyTags = Field(default_factory=list)
    enabled: bool = True


class ImportanceRuleUpdate(Input):
    name: Name | None = None
    level: Level | None = None
    min_yearly_spend: Spend | None = None
    any_tags: AnyTags | None = None
    enabled: bool | None = None


class ImportanceRuleOut(Output):
    id: str
    tenant_id: str
    name: str
    level: int
    min_yearly_spend: Spend | None
    any_tags: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime
