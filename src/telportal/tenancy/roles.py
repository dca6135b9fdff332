"""Who may do what: user roles, agent kinds (MISSION M8) and the principal of a request."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    TENANT_ADMIN = "tenant_admin"
    PLATFORM_OPERATOR = "platform_operator"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: "Role") -> bool:
        return self.rank >= other.rank


_RANK = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.TENANT_ADMIN: 2, Role.PLATFORM_OPERATOR: 3}


class AgentKind(StrEnum):
    """The kinds of agent position (台席) of MISSION M8; an agent may have several."""

    ORDINARY = "ordinary"
    EXPERT = "expert"
    SUPERVISOR = "supervisor"
    MONITOR = "monitor"
    EXTERNAL = "external"
    MOBILE = "mobile"
    MULTIMEDIA = "multimedia"
    FAX = "fax"


ActorKind = Literal["user", "api_key", "cli", "system"]


@dataclass(frozen=True)
class Scope:
    """The principal a request acts as, and so which tenant's data it may reach.

    `tenant_id` None means platform-wide: only platform operators (and the CLI on
    the server's own machine) have it. Every domain call takes the scope first.
    """

    tenant_id: str | None
    role: Role
    actor_kind: ActorKind
    actor_id: str | None
    actor_name: str

    @property
    def is_platform(self) -> bool:
        return self.tenant_id is None

    @property
    def principal_key(self) -> str:
        return f"{self.actor_kind}:{self.actor_id or self.actor_name}"

    @classmethod
    def system(cls, name: str = "system") -> "Scope":
        return cls(None, Role.PLATFORM_OPERATOR, "system", None, name)

    @classmethod
    def cli(cls, name: str = "cli") -> "Scope":
        return cls(None, Role.PLATFORM_OPERATOR, "cli", None, name)
