"""The life of a case, from creation to closure, as a table; every change leaves a history entry.

A case goes through these states (MISSION M10, the closed loop):

    new                  created, nobody owns it yet
    assigned             an owner (and a department) is named; work has not begun
    in_progress          the owner is working on it
    waiting_on_customer  the owner asked the customer something; the SLA clocks stop
    resolved             the owner says it is solved; a follow-up (回访) may be due
    feedback_received    the customer's satisfaction (1-5) and comment are recorded
    closed               done; only reopen is possible
    reopened             the customer says it is not solved; the owner is kept

The rules, as the table `_GRID` below reads (row: the state; column: the event; cell:
the next state; `=` keeps the state and records the event; `.` refuses it):

- Only `assign` gets a case out of `new`: every later step needs an owner, so work,
  replies and resolutions always have someone to answer for them. Assigning again
  hands the case over (from in_progress back to assigned, so the new owner starts).
- `respond` (the owner answered the customer), `wait_for_customer` and `resolve` each
  count as the first response when there has been none.
- `customer_replied` only ends a wait; a customer writing at any other time is a
  `note` (or, after resolution, the adapter's choice to `reopen`).
- `record_feedback` needs a resolved case; `close` needs a resolved case (with or
  without feedback): a case is never closed without being resolved first.
- `reopen` from resolved, feedback_received or closed clears the resolution and the
  feedback, counts the time spent resolved as a pause of the SLA clocks (see `sla`)
  and cancels the pending follow-up; a later resolution creates a new one.
- Nothing but `reopen` is accepted on a closed case, not even a note.

Every accepted event returns a `Transition`: the new case (a new frozen object with
`version` one higher), one `HistoryEntry` (who, when, from, to, the event, details),
the follow-ups to store and whether pending ones end. Time never runs backwards on a
case: an event dated before the case's last change is refused, because the SLA pauses
are built from these times.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from telportal.cases.errors import IllegalTransition
from telportal.cases.follow_ups import FollowUp, FollowUpEnd, FollowUpPolicy, follow_up_id
from telportal.errors import Invalid, NotFound


class CaseState(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"
    FEEDBACK_RECEIVED = "feedback_received"
    CLOSED = "closed"
    REOPENED = "reopened"


class CaseEvent(StrEnum):
    CREATE = "create"  # only in history: the entry that starts every case
    ASSIGN = "assign"
    START = "start"
    RESPOND = "respond"
    NOTE = "note"
    EDIT = "edit"
    WAIT_FOR_CUSTOMER = "wait_for_customer"
    CUSTOMER_REPLIED = "customer_replied"
    RESOLVE = "resolve"
    RECORD_FEEDBACK = "record_feedback"
    CLOSE = "close"
    REOPEN = "reopen"


OPEN_STATES = frozenset(
    {
        CaseState.NEW,
        CaseState.ASSIGNED,
        CaseState.IN_PROGRESS,
        CaseState.WAITING_ON_CUSTOMER,
        CaseState.REOPENED,
    }
)
"""States in which the case is still to be solved: SLA clocks and escalations apply."""

_ABBREVIATIONS = {
    "new": CaseState.NEW,
    "asg": CaseState.ASSIGNED,
    "prg": CaseState.IN_PROGRESS,
    "wait": CaseState.WAITING_ON_CUSTOMER,
    "res": CaseState.RESOLVED,
    "fb": CaseState.FEEDBACK_RECEIVED,
    "clo": CaseState.CLOSED,
    "reo": CaseState.REOPENED,
}
_COLUMNS = (
    CaseEvent.ASSIGN,
    CaseEvent.START,
    CaseEvent.RESPOND,
    CaseEvent.NOTE,
    CaseEvent.EDIT,
    CaseEvent.WAIT_FOR_CUSTOMER,
    CaseEvent.CUSTOMER_REPLIED,
    CaseEvent.RESOLVE,
    CaseEvent.RECORD_FEEDBACK,
    CaseEvent.CLOSE,
    CaseEvent.REOPEN,
)
# The transition table (the rules are in the module docstring). Row: the state; column:
# the event; cell: the next state, `=` to stay, `.` to refuse. Parsed once at import.
# fmt: off
_GRID = """
        assign  start  respond  note  edit  wait  replied  resolve  feedback  close  reopen
new     asg     .      .        =     =     .     .        .        .         .      .
asg     =       prg    prg      =     =     wait  .        res      .         .      .
prg     asg     .      =        =     =     wait  .        res      .         .      .
wait    =       .      =        =     =     .     prg      res      .         .      .
res     .       .      .        =     .     .     .        .        fb        clo    reo
fb      .       .      .        =     .     .     .        .        .         clo    reo
clo     .       .      .        .     .     .     .        .        .         .      reo
reo     asg     prg    prg      =     =     .     .        res      .         .      .
"""
# fmt: on


def _parse_grid(grid: str) -> dict[tuple[CaseState, CaseEvent], CaseState]:
    rows = [line.split() for line in grid.strip().splitlines()]
    table: dict[tuple[CaseState, CaseEvent], CaseState] = {}
    for row in rows[1:]:
        state = _ABBREVIATIONS[row[0]]
        for event, cell in zip(_COLUMNS, row[1:], strict=True):
            if cell == "=":
                table[state, event] = state
            elif cell != ".":
                table[state, event] = _ABBREVIATIONS[cell]
    return table


TRANSITIONS: Mapping[tuple[CaseState, CaseEvent], CaseState] = _parse_grid(_GRID)
"""(state, event) -> next state; a pair that is missing is an illegal transition."""

EDITABLE_FIELDS = frozenset(
    {"service", "category", "urgency", "subject", "description", "region", "department"}
)


# ---- the case ------------------------------------------------------------------------


class PauseReason(StrEnum):
    WAITING_ON_CUSTOMER = "waiting_on_customer"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Pause:
    """A span during which the SLA clocks stood still; `end` is None while it lasts."""

    start: datetime
    end: datetime | None
    reason: PauseReason


@dataclass(frozen=True, slots=True)
class Case:
    tenant_id: str
    case_id: str
    state: CaseState
    created_at: datetime
    updated_at: datetime
    """The last event of any kind: the "untouched" escalations count from here."""
    service: str = ""
    category: str = ""
    urgency: str = ""
    customer_id: str = ""
    subject: str = ""
    description: str = ""
    region: str = ""
    channel: str = ""
    department: str = ""
    assignee: str = ""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    resolution: str = ""
    satisfaction: int | None = None
    feedback: str = ""
    closed_at: datetime | None = None
    reopen_count: int = 0
    pauses: tuple[Pause, ...] = ()
    version: int = 1
    """One more on every event; the adapter can use it for optimistic concurrency."""

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


Details = Mapping[str, str | int]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    tenant_id: str
    case_id: str
    version: int
    """The case's version after the event: (case_id, version) is unique."""
    at: datetime
    actor: str
    event: CaseEvent
    from_state: CaseState | None
    """None for the creation entry."""
    to_state: CaseState
    details: Details


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event did. The adapter stores all of it in one transaction."""

    case: Case
    entry: HistoryEntry
    follow_ups: tuple[FollowUp, ...] = ()
    """New follow-ups to store (upsert by id)."""
    end_follow_ups: FollowUpEnd | None = None
    """When set, the case's pending follow-ups end this way."""


# ---- the events (commands) -------------------------------------------------------------
# Each command checks its own data and says what it changes in the case (besides the
# state, version and time, which `transition` sets) and what its history entry records.

Effect = tuple[Case, dict[str, str | int]]


def _present(**values: str) -> dict[str, str | int]:
    return {k: v for k, v in values.items() if v}


@dataclass(frozen=True, slots=True)
class Assign:
    event: ClassVar[CaseEvent] = CaseEvent.ASSIGN
    assignee: str
    department: str | None = None
    """None keeps the case's department."""

    def apply(self, case: Case, at: datetime) -> Effect:
        if not self.assignee.strip():
            raise Invalid("assignee", "name who the case is assigned to")
        details: dict[str, str | int] = {"assignee": self.assignee}
        if case.assignee:
            details["previous_assignee"] = case.assignee
        department = case.department if self.department is None else self.department
        if department != case.department:
            details["department"] = department
        return dataclasses.replace(case, assignee=self.assignee, department=department), details


@dataclass(frozen=True, slots=True)
class Start:
    event: ClassVar[CaseEvent] = CaseEvent.START

    def apply(self, case: Case, at: datetime) -> Effect:
        return case, {}


@dataclass(frozen=True, slots=True)
class Respond:
    event: ClassVar[CaseEvent] = CaseEvent.RESPOND
    channel: str = ""
    text: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        return case, _present(channel=self.channel, text=self.text)


@dataclass(frozen=True, slots=True)
class Note:
    event: ClassVar[CaseEvent] = CaseEvent.NOTE
    text: str
    # The call the note is about (its record's id), when written from a call.
    call_record_id: str | None = None

    def apply(self, case: Case, at: datetime) -> Effect:
        if not self.text.strip():
            raise Invalid("text", "a note needs some text")
        details: dict[str, str | int] = {"text": self.text}
        if self.call_record_id is not None:
            details["call_record_id"] = self.call_record_id
        return case, details


@dataclass(frozen=True, slots=True)
class Edit:
    event: ClassVar[CaseEvent] = CaseEvent.EDIT
    changes: Mapping[str, str]
    """Field -> new value, fields from EDITABLE_FIELDS."""

    def apply(self, case: Case, at: datetime) -> Effect:
        unknown = sorted(set(self.changes) - EDITABLE_FIELDS)
        if unknown:
            raise Invalid("changes", f"cannot edit {', '.join(unknown)}")
        details: dict[str, str | int] = {}
        for name, value in sorted(self.changes.items()):
            old = getattr(case, name)
            if old != value:
                details[name] = value
                details[f"previous_{name}"] = old
        new = self.changes.get
        edited = dataclasses.replace(
            case,
            service=new("service", case.service),
            category=new("category", case.category),
            urgency=new("urgency", case.urgency),
            subject=new("subject", case.subject),
            description=new("description", case.description),
            region=new("region", case.region),
            department=new("department", case.department),
        )
        return edited, details


@dataclass(frozen=True, slots=True)
class WaitForCustomer:
    event: ClassVar[CaseEvent] = CaseEvent.WAIT_FOR_CUSTOMER
    reason: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        pause = Pause(at, None, PauseReason.WAITING_ON_CUSTOMER)
        return dataclasses.replace(case, pauses=(*case.pauses, pause)), _present(reason=self.reason)


@dataclass(frozen=True, slots=True)
class CustomerReplied:
    event: ClassVar[CaseEvent] = CaseEvent.CUSTOMER_REPLIED
    channel: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        return case, _present(channel=self.channel)


@dataclass(frozen=True, slots=True)
class Resolve:
    event: ClassVar[CaseEvent] = CaseEvent.RESOLVE
    resolution: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        resolved = dataclasses.replace(case, resolved_at=at, resolution=self.resolution)
        return resolved, _present(resolution=self.resolution)


@dataclass(frozen=True, slots=True)
class RecordFeedback:
    event: ClassVar[CaseEvent] = CaseEvent.RECORD_FEEDBACK
    score: int
    """Satisfaction, 1 (very unhappy) to 5 (very happy)."""
    outcome: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        if isinstance(self.score, bool) or self.score not in SCORE_RANGE:
            raise Invalid("score", f"satisfaction is 1 to 5, not {self.score!r}")
        details: dict[str, str | int] = {"score": self.score, **_present(outcome=self.outcome)}
        return dataclasses.replace(case, satisfaction=self.score, feedback=self.outcome), details


@dataclass(frozen=True, slots=True)
class Close:
    event: ClassVar[CaseEvent] = CaseEvent.CLOSE
    reason: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        return dataclasses.replace(case, closed_at=at), _present(reason=self.reason)


@dataclass(frozen=True, slots=True)
class Reopen:
    event: ClassVar[CaseEvent] = CaseEvent.REOPEN
    reason: str = ""

    def apply(self, case: Case, at: datetime) -> Effect:
        # The time spent resolved does not count against the case: the resolution clock
        # resumes where it stopped (see sla).
        pauses = case.pauses
        if case.resolved_at is not None:
            pauses = (*pauses, Pause(case.resolved_at, at, PauseReason.RESOLVED))
        reopened = dataclasses.replace(
            case,
            pauses=pauses,
            resolved_at=None,
            resolution="",
            satisfaction=None,
            feedback="",
            closed_at=None,
            reopen_count=case.reopen_count + 1,
        )
        return reopened, _present(reason=self.reason)


Command = (
    Assign
    | Start
    | Respond
    | Note
    | Edit
    | WaitForCustomer
    | CustomerReplied
    | Resolve
    | RecordFeedback
    | Close
    | Reopen
)

SCORE_RANGE = range(1, 6)
_FIRST_RESPONSES = frozenset({CaseEvent.RESPOND, CaseEvent.WAIT_FOR_CUSTOMER, CaseEvent.RESOLVE})


# ---- the two entry points ----------------------------------------------------------------


def open_case(
    tenant_id: str,
    case_id: str,
    *,
    actor: str,
    at: datetime,
    service: str = "",
    category: str = "",
    urgency: str = "",
    customer_id: str = "",
    subject: str = "",
    description: str = "",
    region: str = "",
    channel: str = "",
    department: str = "",
) -> Transition:
    """A new case in state `new`, with its creation entry."""
    _check_time(at)
    _check_actor(actor)
    if not tenant_id or not case_id:
        raise Invalid("case_id", "a case needs a tenant and an id")
    case = Case(
        tenant_id,
        case_id,
        CaseState.NEW,
        created_at=at,
        updated_at=at,
        service=service,
        category=category,
        urgency=urgency,
        customer_id=customer_id,
        subject=subject,
        description=description,
        region=region,
        channel=channel,
        department=department,
    )
    details: dict[str, str | int] = {
        k: v
        for k, v in (
            ("service", service),
            ("category", category),
            ("urgency", urgency),
            ("customer_id", customer_id),
            ("channel", channel),
        )
        if v
    }
    entry = HistoryEntry(
        tenant_id, case_id, 1, at, actor, CaseEvent.CREATE, None, CaseState.NEW, details
    )
    return Transition(case, entry)


def transition(
    tenant_id: str,
    case: Case,
    command: Command,
    *,
    actor: str,
    at: datetime,
    follow_ups: FollowUpPolicy | None = None,
) -> Transition:
    """Apply one event to a case; `IllegalTransition` when the table refuses it.

    `follow_ups` is the tenant's follow-up policy; without it a resolution creates none.
    """
    if case.tenant_id != tenant_id:
        raise NotFound("case")  # another tenant's case looks absent (decision 0001)
    if follow_ups is not None and follow_ups.tenant_id != tenant_id:
        raise Invalid("follow_ups", "the follow-up policy belongs to another tenant")
    _check_time(at)
    _check_actor(actor)
    event = command.event
    target = TRANSITIONS.get((case.state, event))
    if target is None:
        raise IllegalTransition(case.case_id, case.state, event)
    if at < case.updated_at:
        raise Invalid(
            "at",
            f"{at.isoformat()} is before the last change of case {case.case_id}"
            f" ({case.updated_at.isoformat()})",
        )

    changed, details = command.apply(case, at)
    pauses = changed.pauses
    if case.state is CaseState.WAITING_ON_CUSTOMER and target is not case.state:
        pauses = _end_last_pause(pauses, at)  # a reply or a resolution ends the wait
    first_response_at = changed.first_response_at
    if first_response_at is None and event in _FIRST_RESPONSES:
        first_response_at = at
    new_case = dataclasses.replace(
        changed,
        state=target,
        updated_at=at,
        version=case.version + 1,
        pauses=pauses,
        first_response_at=first_response_at,
    )
    entry = HistoryEntry(
        tenant_id, case.case_id, new_case.version, at, actor, event, case.state, target, details
    )
    created: tuple[FollowUp, ...] = ()
    ending: FollowUpEnd | None = None
    if event is CaseEvent.RESOLVE and follow_ups is not None:
        created = _follow_up(new_case, follow_ups, at)
    elif event is CaseEvent.RECORD_FEEDBACK:
        ending = FollowUpEnd.COMPLETED
    elif event in (CaseEvent.REOPEN, CaseEvent.CLOSE):
        ending = FollowUpEnd.CANCELLED
    return Transition(new_case, entry, created, ending)


def _end_last_pause(pauses: tuple[Pause, ...], at: datetime) -> tuple[Pause, ...]:
    if not pauses or pauses[-1].end is not None:
        return pauses  # defensive: a case built by hand without its pause
    return (*pauses[:-1], dataclasses.replace(pauses[-1], end=at))


def _follow_up(case: Case, policy: FollowUpPolicy, at: datetime) -> tuple[FollowUp, ...]:
    rule = policy.rule_for(case.category, case.urgency)
    if rule is None or not case.customer_id:
        return ()  # no rule asks for one, or nobody to call
    return (
        FollowUp(
            case.tenant_id,
            follow_up_id(case.case_id, case.reopen_count),
            case.case_id,
            case.customer_id,
            rule.rule_id,
            rule.channel,
            resolved_at=at,
            due_at=policy.hours.add(at, rule.after),
            created_at=at,
        ),
    )


def _check_time(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise Invalid("at", "times must be timezone-aware")


def _check_actor(actor: str) -> None:
    if not actor.strip():
        raise Invalid("actor", "say who did it (a user id, or 'system')")
