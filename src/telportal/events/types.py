"""Event types. Every event names its tenant first (None for platform-wide events).

Events are immutable facts about something that already happened and was
committed; they are published only after the transaction that made them.
The `subject` is the routing key a NATS bus will use between sites:
`<family>.<tenant or "platform">.<detail>`.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

ChangeAction = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, kw_only=True)
class Event:
    family: ClassVar[str] = "event"

    tenant_id: str | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def subject(self) -> str:
        return f"{self.family}.{self.tenant_id or 'platform'}"

    @property
    def recipient(self) -> str | None:
        """The one user an event is for; None: everyone of the tenant may see it."""
        return None

    @classmethod
    def from_fields(cls, values: Mapping[str, Any]) -> Self:
        """The event `cls(**values)` makes, for values naming every field.

        A frozen dataclass's __init__ sets each field with `object.__setattr__`: for the
        18 fields of `CallFinished`, made once a call, 5.5 us against 0.7 us for filling
        the instance's dict at once, as pickle and `copy` do (docs/benchmarks.md,
        session 13). Missing or unknown names raise TypeError, as __init__ would.
        """
        names = _FIELD_NAMES.get(cls)
        if names is None:
            names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
        if values.keys() != names:
            given = set(values)
            raise TypeError(
                f"{cls.__name__} fields missing: {sorted(names - given)},"
                f" unknown: {sorted(given - names)}"
            )
        event = object.__new__(cls)
        event.__dict__.update(values)
        return event


_FIELD_NAMES: dict[type[Event], frozenset[str]] = {}


@dataclass(frozen=True, kw_only=True)
class ConfigChanged(Event):
    """A configuration object changed; the scope's revision moved to `revision`.

    Sites compare revisions to know they apply the same configuration (MISSION M14);
    a site that sees a gap reloads the scope from the store.
    """

    family: ClassVar[str] = "config"

    revision: int
    entity: str
    entity_id: str
    action: ChangeAction

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.entity}"


@dataclass(frozen=True, kw_only=True)
class DataChanged(Event):
    """A customer, a case or other tenant data changed; desktops refresh what they show."""

    family: ClassVar[str] = "data"

    entity: str
    entity_id: str
    action: ChangeAction

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.entity}"


@dataclass(frozen=True, kw_only=True)
class PhoneRegistration(Event):
    """A phone's binding changed; `reachable` says whether the user can be called now.

    The ACD offers calls only to agents whose phone is reachable (issue 6), so it
    follows these rather than polling the location service.
    """

    family: ClassVar[str] = "phone"

    user_id: str
    extension: str
    contact: str
    change: str  # added, refreshed, removed, expired, up, down
    reachable: bool

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.extension}"


@dataclass(frozen=True, kw_only=True)
class CallFinished(Event):
    """A call ended and its record is stored; `record_id` is its id in `GET /calls/{id}`.

    Wallboards and reports follow these instead of polling the call records.
    """

    family: ClassVar[str] = "call"

    record_id: str
    call_id: str
    service_id: str | None
    caller: str
    called: str
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime
    end_reason: str
    outcome: str | None
    queue: str | None = None
    agent_id: str | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    hangup_by: str | None = None

    @property
    def subject(self) -> str:
        return f"{super().subject}.finished"


@dataclass(frozen=True, kw_only=True)
class AgentStatus(Event):
    """An agent's ACD state changed (ready, not ready with a reason, ringing, talking...).

    For desktops (the agent's own state) and wallboards (everyone's).
    """

    family: ClassVar[str] = "agent"

    agent_id: str
    extension: str | None
    state: str
    reason: str | None
    # While wrapping up: when it ends, for the desktop's countdown.
    wrap_up_until: datetime | None = None

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.agent_id}"


@dataclass(frozen=True, kw_only=True)
class QueueStatus(Event):
    """A queue's live figures, now and since the tenant's midnight, for wallboards.

    Sent when they change, at most about once a second per queue.
    """

    family: ClassVar[str] = "queue"

    queue_id: str
    queue: str
    waiting: int
    ringing: int
    talking: int
    longest_wait: float
    agents_free: int
    agents_staffed: int
    entered: int
    answered: int
    abandoned: int
    overflowed: int
    service_level: float | None
    service_level_seconds: float
    average_answer_wait: float | None
    average_handle_time: float | None

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.queue_id}"


@dataclass(frozen=True, kw_only=True)
class ScreenPop(Event):
    """Who is calling, for the one agent about to be rung, sent before the phone rings.

    Private to `agent_id`: it is never delivered to anyone else, supervisors included.
    """

    family: ClassVar[str] = "screenpop"

    agent_id: str
    call_id: str
    queue: str
    caller: str
    called: str
    service_id: str | None
    customer: dict[str, object] | None
    importance: int
    ivr_path: list[str]
    ivr_variables: dict[str, object]
    recent_calls: list[dict[str, object]]
    waited_seconds: float
    decided_at: datetime

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.agent_id}"

    @property
    def recipient(self) -> str | None:
        return self.agent_id


@dataclass(frozen=True, kw_only=True)
class CallState(Event):
    """A connected call changed: talking, held, transferring, transferred, monitored,
    recording paused or resumed, DTMF sent, ended. For desktops and supervisors."""

    family: ClassVar[str] = "callstate"

    call_id: str
    state: str
    agent_id: str | None
    agent_extension: str | None
    caller: str
    queue: str | None
    detail: str | None = None

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.state}"


@dataclass(frozen=True, kw_only=True)
class CaseAlert(Event):
    """A case's SLA target is in warning or breached: for its assignee, their
    supervisor and the wallboard ("information finds people")."""

    family: ClassVar[str] = "case"

    case_id: str
    case_number: int
    assignee: str
    target: str  # first_response or resolution
    level: str  # warning or breach
    due_at: datetime | None
    late_seconds: float

    @property
    def subject(self) -> str:
        return f"{super().subject}.{self.level}"


@dataclass(frozen=True, kw_only=True)
class CaseEscalated(Event):
    """An escalation step came due: `notify` (a role or a user) must act on the case."""

    family: ClassVar[str] = "case"

    case_id: str
    case_number: int
    chain_id: str
    trigger: str
    level: int
    notify: str
    assignee: str

    @property
    def subject(self) -> str:
        return f"{super().subject}.escalated"
