"""Follow-ups (回访): after a case is resolved, someone calls the customer back to confirm.

Which resolved cases need one is tenant data: an ordered list of `FollowUpRule`s, each
naming the categories and urgencies it covers (empty: any) and how long after the
resolution, in business time, the call is due. The first rule that matches wins, so a
tenant writes its exceptions first and its catch-all last; no rule matching means no
follow-up.

A follow-up is a data object the adapter stores and shows on a work list. Its id is
derived from the case and the resolution it follows (`<case>/follow-up/<n>`, n the
case's reopen count), so storing it twice after a retry is one upsert. The case
lifecycle says when pending follow-ups end: `record_feedback` completes them (the
feedback is what the call collected), `reopen` and `close` cancel them.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from telportal.cases.business_time import BusinessHours
from telportal.errors import Invalid


class FollowUpEnd(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class FollowUpRule:
    tenant_id: str
    rule_id: str
    after: timedelta
    """Business time after the resolution at which the follow-up call is due."""
    categories: frozenset[str] = frozenset()
    """Case categories this rule covers; empty covers every category."""
    urgencies: frozenset[str] = frozenset()
    """Case urgencies this rule covers; empty covers every urgency."""
    channel: str = "call"

    def __post_init__(self) -> None:
        if self.after < timedelta(0):
            raise Invalid("after", "a follow-up cannot be due before the resolution")

    def matches(self, category: str, urgency: str) -> bool:
        return (not self.categories or category in self.categories) and (
            not self.urgencies or urgency in self.urgencies
        )


@dataclass(frozen=True, slots=True)
class FollowUpPolicy:
    """A tenant's follow-up rules and the calendar their delays are counted on."""

    tenant_id: str
    rules: Sequence[FollowUpRule]
    hours: BusinessHours

    def __post_init__(self) -> None:
        strangers = [r.rule_id for r in self.rules if r.tenant_id != self.tenant_id]
        if strangers or self.hours.tenant_id != self.tenant_id:
            raise Invalid("rules", f"rules of another tenant in {self.tenant_id}'s policy")

    def rule_for(self, category: str, urgency: str) -> FollowUpRule | None:
        return next((r for r in self.rules if r.matches(category, urgency)), None)


@dataclass(frozen=True, slots=True)
class FollowUp:
    tenant_id: str
    follow_up_id: str
    """`<case id>/follow-up/<reopen count>`: stable, so storing it again is an upsert."""
    case_id: str
    customer_id: str
    rule_id: str
    channel: str
    resolved_at: datetime
    due_at: datetime
    created_at: datetime


def follow_up_id(case_id: str, resolution: int) -> str:
    return f"{case_id}/follow-up/{resolution}"
