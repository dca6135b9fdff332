"""The case lifecycle: every transition of the table, every refusal, history and follow-ups."""

import itertools
from datetime import datetime, timedelta

import pytest

from telportal.cases import (
    TRANSITIONS,
    Assign,
    BusinessHours,
    Case,
    CaseEvent,
    CaseState,
    Close,
    Command,
    CustomerReplied,
    Edit,
    FollowUpEnd,
    FollowUpPolicy,
    FollowUpRule,
    HistoryEntry,
    IllegalTransition,
    Note,
    Pause,
    PauseReason,
    RecordFeedback,
    Reopen,
    Resolve,
    Respond,
    Start,
    Transition,
    WaitForCustomer,
    open_case,
    transition,
)
from telportal.errors import Conflict, Invalid, NotFound
from tests.unit.cases.support import OFFICE, OTHER, T, hours, minutes, office, sh

START = sh("2026-03-02", "10:00")  # a Monday in Shanghai

SAMPLE: dict[CaseEvent, Command] = {
    CaseEvent.ASSIGN: Assign("agent-2", department="billing"),
    CaseEvent.START: Start(),
    CaseEvent.RESPOND: Respond(channel="phone"),
    CaseEvent.NOTE: Note("called, no answer"),
    CaseEvent.EDIT: Edit({"urgency": "high"}),
    CaseEvent.WAIT_FOR_CUSTOMER: WaitForCustomer("needs the invoice number"),
    CaseEvent.CUSTOMER_REPLIED: CustomerReplied(channel="email"),
    CaseEvent.RESOLVE: Resolve("refund issued"),
    CaseEvent.RECORD_FEEDBACK: RecordFeedback(4, "happy with the refund"),
    CaseEvent.CLOSE: Close(),
    CaseEvent.REOPEN: Reopen("still charged twice"),
}

# The shortest way to each state from a new case.
PATHS: dict[CaseState, list[Command]] = {
    CaseState.NEW: [],
    CaseState.ASSIGNED: [Assign("agent-1")],
    CaseState.IN_PROGRESS: [Assign("agent-1"), Start()],
    CaseState.WAITING_ON_CUSTOMER: [Assign("agent-1"), Start(), WaitForCustomer()],
    CaseState.RESOLVED: [Assign("agent-1"), Start(), Resolve("done")],
    CaseState.FEEDBACK_RECEIVED: [Assign("agent-1"), Resolve("done"), RecordFeedback(5)],
    CaseState.CLOSED: [Assign("agent-1"), Resolve("done"), Close()],
    CaseState.REOPENED: [Assign("agent-1"), Resolve("done"), Reopen()],
}


def new_case(**fields: str) -> Case:
    return open_case(T, "c-1", actor="agent-9", at=START, **fields).case


STEP = timedelta(minutes=10)


def drive(case: Case, commands: list[Command], step: timedelta = STEP) -> Case:
    at = case.updated_at
    for command in commands:
        at += step
        case = transition(T, case, command, actor="agent-1", at=at).case
    return case


def case_in(state: CaseState) -> Case:
    case = drive(new_case(customer_id="cust-1", category="billing"), PATHS[state])
    assert case.state is state
    return case


# ---- the table ---------------------------------------------------------------------------


def test_the_table_as_written() -> None:
    allowed = {
        state: sorted(e.value for (s, e) in TRANSITIONS if s is state) for state in CaseState
    }
    assert allowed[CaseState.NEW] == ["assign", "edit", "note"]
    assert allowed[CaseState.CLOSED] == ["reopen"]
    assert allowed[CaseState.RESOLVED] == ["close", "note", "record_feedback", "reopen"]
    assert allowed[CaseState.WAITING_ON_CUSTOMER] == [
        "assign",
        "customer_replied",
        "edit",
        "note",
        "resolve",
        "respond",
    ]
    assert TRANSITIONS[CaseState.IN_PROGRESS, CaseEvent.ASSIGN] is CaseState.ASSIGNED
    assert TRANSITIONS[CaseState.REOPENED, CaseEvent.RESPOND] is CaseState.IN_PROGRESS
    assert len(TRANSITIONS) == 36


LEGAL = sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value))


@pytest.mark.parametrize(("state", "event"), LEGAL)
def test_every_legal_transition(state: CaseState, event: CaseEvent) -> None:
    case = case_in(state)
    at = case.updated_at + minutes(5)
    done = transition(T, case, SAMPLE[event], actor="agent-7", at=at)
    target = TRANSITIONS[state, event]
    assert done.case.state is target
    assert done.case.version == case.version + 1
    assert done.case.updated_at == at
    assert (done.entry.from_state, done.entry.to_state, done.entry.event) == (state, target, event)
    assert (done.entry.actor, done.entry.at, done.entry.version) == (
        "agent-7",
        at,
        case.version + 1,
    )
    assert done.case.case_id == case.case_id and done.case.tenant_id == T


ILLEGAL = [
    (s, e)
    for s, e in itertools.product(CaseState, CaseEvent)
    if e is not CaseEvent.CREATE and (s, e) not in TRANSITIONS
]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_illegal_transition_is_refused_by_name(state: CaseState, event: CaseEvent) -> None:
    case = case_in(state)
    with pytest.raises(IllegalTransition) as caught:
        transition(T, case, SAMPLE[event], actor="agent-7", at=case.updated_at + minutes(5))
    error = caught.value
    assert isinstance(error, Conflict)
    assert error.code == "illegal_transition"
    assert (error.case_id, error.state, error.event) == ("c-1", state, event)
    assert "case c-1" in error.message
    assert state.value.replace("_", " ") in error.message
    assert event.value.replace("_", " ") in error.message


def test_illegal_transition_message() -> None:
    with pytest.raises(IllegalTransition, match=r"^case c-1 is closed: cannot record feedback$"):
        transition(
            T, case_in(CaseState.CLOSED), RecordFeedback(5), actor="a", at=sh("2026-04-01", "10:00")
        )
    assert len(ILLEGAL) == 8 * 11 - 36


# ---- history ------------------------------------------------------------------------------


def test_the_closed_loop_and_its_history() -> None:
    created = open_case(
        T,
        "c-1",
        actor="ivr",
        at=START,
        service="hotline",
        category="billing",
        urgency="high",
        customer_id="cust-1",
        channel="phone",
        subject="Charged twice",
    )
    entries: list[HistoryEntry] = [created.entry]
    case = created.case
    assert case.state is CaseState.NEW
    assert created.entry == HistoryEntry(
        T,
        "c-1",
        1,
        START,
        "ivr",
        CaseEvent.CREATE,
        None,
        CaseState.NEW,
        {
            "service": "hotline",
            "category": "billing",
            "urgency": "high",
            "customer_id": "cust-1",
            "channel": "phone",
        },
    )
    steps: list[tuple[Command, str, int]] = [
        (Assign("agent-1", department="billing"), "dispatcher", 5),
        (Start(), "agent-1", 10),
        (WaitForCustomer("invoice number?"), "agent-1", 20),
        (CustomerReplied("email"), "customer", 60),
        (Resolve("refund issued"), "agent-1", 90),
        (RecordFeedback(5, "very happy"), "agent-3", 300),
        (Close("confirmed"), "supervisor-1", 310),
    ]
    for command, actor, minute in steps:
        done = transition(T, case, command, actor=actor, at=START + minutes(minute))
        case = done.case
        entries.append(done.entry)
    assert case.state is CaseState.CLOSED
    assert [(e.event.value, e.from_state, e.to_state.value, e.actor) for e in entries] == [
        ("create", None, "new", "ivr"),
        ("assign", "new", "assigned", "dispatcher"),
        ("start", "assigned", "in_progress", "agent-1"),
        ("wait_for_customer", "in_progress", "waiting_on_customer", "agent-1"),
        ("customer_replied", "waiting_on_customer", "in_progress", "customer"),
        ("resolve", "in_progress", "resolved", "agent-1"),
        ("record_feedback", "resolved", "feedback_received", "agent-3"),
        ("close", "feedback_received", "closed", "supervisor-1"),
    ]
    assert [e.version for e in entries] == list(range(1, 9))
    assert [e.at for e in entries] == [START] + [START + minutes(m) for _, _, m in steps]
    assert entries[1].details == {"assignee": "agent-1", "department": "billing"}
    assert entries[3].details == {"reason": "invoice number?"}
    assert entries[5].details == {"resolution": "refund issued"}
    assert entries[6].details == {"score": 5, "outcome": "very happy"}
    assert entries[7].details == {"reason": "confirmed"}
    assert (case.assignee, case.department, case.satisfaction, case.feedback) == (
        "agent-1",
        "billing",
        5,
        "very happy",
    )
    # the first response was the question to the customer, not the start of work
    assert case.first_response_at == START + minutes(20)
    assert case.resolved_at == START + minutes(90)
    assert case.closed_at == START + minutes(310)
    assert case.pauses == (
        Pause(START + minutes(20), START + minutes(60), PauseReason.WAITING_ON_CUSTOMER),
    )


def test_reassigning_hands_the_case_over_and_records_both_names() -> None:
    case = case_in(CaseState.IN_PROGRESS)
    done = transition(T, case, Assign("agent-2"), actor="sup", at=case.updated_at)
    assert done.case.state is CaseState.ASSIGNED
    assert done.case.assignee == "agent-2"
    assert done.entry.details == {"assignee": "agent-2", "previous_assignee": "agent-1"}
    # while waiting on the customer, a new owner keeps waiting, and the pause goes on
    waiting = case_in(CaseState.WAITING_ON_CUSTOMER)
    moved = transition(T, waiting, Assign("agent-2"), actor="sup", at=waiting.updated_at)
    assert moved.case.state is CaseState.WAITING_ON_CUSTOMER
    assert moved.case.pauses[-1].end is None


@pytest.mark.parametrize(
    ("commands", "first_response"),
    [
        ([Assign("a"), Start()], None),
        ([Assign("a"), Start(), Note("looked at the account")], None),
        ([Assign("a"), Respond()], 20),
        ([Assign("a"), Start(), WaitForCustomer()], 30),
        ([Assign("a"), Resolve()], 20),
        ([Assign("a"), Respond(), WaitForCustomer(), CustomerReplied(), Resolve()], 20),
    ],
)
def test_first_response(commands: list[Command], first_response: int | None) -> None:
    case = drive(new_case(), commands)
    expected = None if first_response is None else START + minutes(first_response)
    assert case.first_response_at == expected


def test_reopen_clears_the_resolution_and_pauses_the_resolved_time() -> None:
    case = drive(new_case(), [Assign("a"), Start(), Resolve("fixed"), RecordFeedback(2, "no")])
    resolved_at = case.resolved_at
    assert resolved_at is not None
    done = transition(T, case, Reopen("still broken"), actor="cust", at=resolved_at + hours(3))
    reopened = done.case
    assert reopened.state is CaseState.REOPENED
    assert (reopened.resolved_at, reopened.resolution, reopened.satisfaction) == (None, "", None)
    assert reopened.reopen_count == 1
    assert reopened.assignee == "a"  # the owner is kept
    assert reopened.pauses == (Pause(resolved_at, resolved_at + hours(3), PauseReason.RESOLVED),)
    assert done.end_follow_ups is FollowUpEnd.CANCELLED
    assert done.entry.details == {"reason": "still broken"}
    again = drive(reopened, [Respond(), Resolve("fixed for real"), Close()])
    assert again.state is CaseState.CLOSED
    assert again.reopen_count == 1


def test_edit_records_old_and_new_values() -> None:
    case = new_case(category="billing", urgency="normal")
    done = transition(
        T, case, Edit({"urgency": "high", "category": "billing"}), actor="sup", at=START
    )
    assert done.case.urgency == "high"
    assert done.entry.details == {"urgency": "high", "previous_urgency": "normal"}
    with pytest.raises(Invalid, match="cannot edit assignee, state"):
        transition(T, case, Edit({"state": "closed", "assignee": "x"}), actor="sup", at=START)


@pytest.mark.parametrize("score", [0, 6, -1, True])
def test_feedback_score_is_one_to_five(score: int) -> None:
    case = case_in(CaseState.RESOLVED)
    with pytest.raises(Invalid, match="satisfaction is 1 to 5"):
        transition(T, case, RecordFeedback(score), actor="a", at=case.updated_at)


def test_bad_calls_are_refused() -> None:
    case = case_in(CaseState.ASSIGNED)
    with pytest.raises(NotFound):
        transition(OTHER, case, Start(), actor="a", at=case.updated_at)
    with pytest.raises(Invalid, match="before the last change of case c-1"):
        transition(T, case, Start(), actor="a", at=case.updated_at - minutes(1))
    with pytest.raises(Invalid, match="timezone-aware"):
        transition(T, case, Start(), actor="a", at=datetime(2026, 3, 2, 12))
    with pytest.raises(Invalid, match="say who did it"):
        transition(T, case, Start(), actor=" ", at=case.updated_at)
    with pytest.raises(Invalid, match="assignee"):
        transition(T, case, Assign(" "), actor="a", at=case.updated_at)
    with pytest.raises(Invalid, match="a note needs some text"):
        transition(T, case, Note(""), actor="a", at=case.updated_at)


def test_the_old_case_object_is_unchanged() -> None:
    case = case_in(CaseState.ASSIGNED)
    transition(T, case, Start(), actor="a", at=case.updated_at)
    assert case.state is CaseState.ASSIGNED
    assert case.version == 2


# ---- follow-ups ----------------------------------------------------------------------------


def policy(*rules: FollowUpRule) -> FollowUpPolicy:
    return FollowUpPolicy(T, rules, office())


RULES = policy(
    FollowUpRule(T, "vip-complaints", hours(2), categories=frozenset({"complaint"})),
    FollowUpRule(T, "urgent", hours(4), urgencies=frozenset({"high", "critical"})),
)


def resolve(case: Case, at: datetime, rules: FollowUpPolicy | None = RULES) -> Transition:
    case = drive(case, [Assign("a"), Start()], step=timedelta(0))
    return transition(T, case, Resolve("done"), actor="a", at=at, follow_ups=rules)


def test_a_follow_up_is_created_on_resolution_by_rule_in_business_time() -> None:
    case = new_case(category="complaint", urgency="normal", customer_id="cust-1")
    done = resolve(case, sh("2026-03-13", "17:00"))  # a Friday, an hour before closing
    (follow_up,) = done.follow_ups
    assert follow_up.follow_up_id == "c-1/follow-up/0"
    assert (follow_up.tenant_id, follow_up.case_id, follow_up.customer_id) == (T, "c-1", "cust-1")
    assert (follow_up.rule_id, follow_up.channel) == ("vip-complaints", "call")
    assert follow_up.resolved_at == sh("2026-03-13", "17:00")
    assert follow_up.due_at == sh("2026-03-16", "10:00")  # 2 business hours: Monday 10:00
    assert done.end_follow_ups is None


def test_the_first_matching_follow_up_rule_wins() -> None:
    case = new_case(category="complaint", urgency="high", customer_id="cust-1")
    (follow_up,) = resolve(case, sh("2026-03-02", "10:00")).follow_ups
    assert follow_up.rule_id == "vip-complaints"
    urgent = new_case(category="billing", urgency="high", customer_id="cust-1")
    (follow_up,) = resolve(urgent, sh("2026-03-02", "10:00")).follow_ups
    assert (follow_up.rule_id, follow_up.due_at) == ("urgent", sh("2026-03-02", "15:00"))


@pytest.mark.parametrize(
    ("fields", "rules"),
    [
        ({"category": "billing", "urgency": "normal", "customer_id": "cust-1"}, RULES),
        ({"category": "complaint", "urgency": "normal", "customer_id": ""}, RULES),
        ({"category": "complaint", "urgency": "normal", "customer_id": "cust-1"}, None),
    ],
)
def test_no_follow_up_without_a_rule_a_customer_or_a_policy(
    fields: dict[str, str], rules: FollowUpPolicy | None
) -> None:
    assert resolve(new_case(**fields), sh("2026-03-02", "10:00"), rules).follow_ups == ()


def test_feedback_completes_and_close_or_reopen_cancel_follow_ups() -> None:
    case = new_case(category="complaint", customer_id="cust-1")
    resolved = resolve(case, sh("2026-03-02", "10:00")).case
    at = sh("2026-03-02", "14:00")
    feedback = transition(T, resolved, RecordFeedback(3), actor="a", at=at, follow_ups=RULES)
    assert feedback.end_follow_ups is FollowUpEnd.COMPLETED
    assert transition(T, resolved, Close(), actor="a", at=at).end_follow_ups is (
        FollowUpEnd.CANCELLED
    )
    reopened = transition(T, resolved, Reopen(), actor="a", at=at)
    assert reopened.end_follow_ups is FollowUpEnd.CANCELLED
    # a second resolution has a follow-up of its own
    again = transition(T, reopened.case, Resolve(), actor="a", at=at + hours(1), follow_ups=RULES)
    assert [f.follow_up_id for f in again.follow_ups] == ["c-1/follow-up/1"]


def test_follow_up_policies_are_per_tenant() -> None:
    with pytest.raises(Invalid):
        FollowUpPolicy(T, [FollowUpRule(OTHER, "r", hours(1))], office())
    with pytest.raises(Invalid):
        FollowUpRule(T, "r", -hours(1))
    case = case_in(CaseState.IN_PROGRESS)
    other = FollowUpPolicy(OTHER, [], BusinessHours(OTHER, OFFICE))
    with pytest.raises(Invalid, match="another tenant"):
        transition(T, case, Resolve(), actor="a", at=case.updated_at, follow_ups=other)
