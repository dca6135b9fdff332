"""Event types. Every event names its tenant first (None for platform-wide events).

Events are immutable facts about something that already happened and was
committed; they are published only after the transaction that made them.
The `subject` is the routing key a NATS bus will use between sites:
`<family>.<tenant or "platform">.<detail>`.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Literal

ChangeAction = Literal["created", "updated", "deleted"]


@dataclass(frozen=True, kw_only=True)
class Event:
    family: ClassVar[str] = "event"

    tenant_id: str | None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def subject(self) -> str:
        return f"{self.family}.{self.tenant_id or 'platform'}"


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
