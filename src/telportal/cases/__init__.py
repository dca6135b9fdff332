"""Cases (MISSION M9-M12, M15): lifecycle, business time, SLAs, escalation, dispatch, customers.

A pure core (decision 0009): data in, data out, no IO, no clock of its own; every time
is an aware datetime the caller passes, every call names its tenant first. The store
and API adapter keeps the objects, persists what the functions return, and calls:

    when                                 call                              then store
    -----------------------------------  --------------------------------  ---------------------
    a calendar loads or changes          BusinessHours(tenant, calendar)   -
    SLA policies load or change          check_policies                    -
    a request becomes a case             open_case                         case, history entry
    ... and is routed                    importance, dispatch,             the decision;
                                         transition(Assign(...))           case, entry
    any later event (assign, start,      transition(case, command,         case, entry, new
      respond, note, edit, wait, reply,    follow_ups=FollowUpPolicy)      follow-ups (upsert);
      resolve, feedback, close, reopen)                                    end pending ones if
                                                                           `end_follow_ups`
    after open_case and each transition  policy_for, timer_specs           replace the case's
                                                                           unfired SLA timers
    SLA timers come due; at startup      due_alerts(timers due, now,       each alert's key as
      (all overdue timers, per tenant)     fired keys)                     fired, with the alert
    showing a case                       deadlines, status                 -
    after each change, on an SLA alert,  due_escalations(case, chains,     each step's key as
      at the plan's next_at, at startup    hours, now, done, sla=...)      done; a wake-up at
                                                                           the plan's next_at
    a step with reassign                 transition(Assign(target))        as any transition
    an identity is typed or received     identity(kind, raw)               index Identity.key
    two customers are one person         merge_customers                   the survivor; repoint
                                                                           cases to it
    a customer's facts or the tenant's   yearly_spend, importance          the level and the
      importance rules change                                              rule that gave it

Everything the adapter must not lose across a restart is data it stores (timer specs,
fired keys, escalation keys, follow-ups); everything else is recomputed from the case.
"""

from telportal.cases.business_time import (
    SEARCH_LIMIT,
    BusinessHours,
    Segment,
    add_business_time,
    business_time_between,
)
from telportal.cases.customers import (
    CHINA,
    PURCHASE,
    SPEND_WINDOW,
    CustomerFacts,
    CustomerRecord,
    Identity,
    IdentityKind,
    Importance,
    ImportanceRule,
    PhonePlan,
    TimelineEntry,
    find_by_identity,
    identity,
    importance,
    merge_customers,
    merge_timelines,
    normalize_chat,
    normalize_email,
    normalize_enterprise,
    normalize_phone,
    purchase_amount,
    yearly_spend,
)
from telportal.cases.dispatch import (
    DEFAULT_RULE,
    DispatchDecision,
    DispatchRule,
    DispatchTable,
    dispatch,
    fold,
)
from telportal.cases.errors import IllegalTransition
from telportal.cases.escalation import (
    Escalation,
    EscalationChain,
    EscalationPlan,
    EscalationStep,
    EscalationTrigger,
    due_escalations,
    escalation_key,
    trigger_starts,
)
from telportal.cases.follow_ups import FollowUp, FollowUpEnd, FollowUpPolicy, FollowUpRule
from telportal.cases.lifecycle import (
    EDITABLE_FIELDS,
    OPEN_STATES,
    TRANSITIONS,
    Assign,
    Case,
    CaseEvent,
    CaseState,
    Close,
    Command,
    CustomerReplied,
    Edit,
    HistoryEntry,
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
from telportal.cases.sla import (
    SlaAlert,
    SlaDeadlines,
    SlaLevel,
    SlaPolicy,
    SlaState,
    SlaStatus,
    SlaTarget,
    TargetDeadline,
    TargetStatus,
    TimerSpec,
    business_time_used,
    check_policies,
    deadlines,
    due_alerts,
    match_policy,
    next_fire_at,
    policy_for,
    status,
    timer_key,
    timer_specs,
)

__all__ = [
    "CHINA",
    "DEFAULT_RULE",
    "EDITABLE_FIELDS",
    "OPEN_STATES",
    "PURCHASE",
    "SEARCH_LIMIT",
    "SPEND_WINDOW",
    "TRANSITIONS",
    "Assign",
    "BusinessHours",
    "Case",
    "CaseEvent",
    "CaseState",
    "Close",
    "Command",
    "CustomerFacts",
    "CustomerRecord",
    "CustomerReplied",
    "DispatchDecision",
    "DispatchRule",
    "DispatchTable",
    "Edit",
    "Escalation",
    "EscalationChain",
    "EscalationPlan",
    "EscalationStep",
    "EscalationTrigger",
    "FollowUp",
    "FollowUpEnd",
    "FollowUpPolicy",
    "FollowUpRule",
    "HistoryEntry",
    "Identity",
    "IdentityKind",
    "IllegalTransition",
    "Importance",
    "ImportanceRule",
    "Note",
    "Pause",
    "PauseReason",
    "PhonePlan",
    "RecordFeedback",
    "Reopen",
    "Resolve",
    "Respond",
    "Segment",
    "SlaAlert",
    "SlaDeadlines",
    "SlaLevel",
    "SlaPolicy",
    "SlaState",
    "SlaStatus",
    "SlaTarget",
    "Start",
    "TargetDeadline",
    "TargetStatus",
    "TimelineEntry",
    "TimerSpec",
    "Transition",
    "WaitForCustomer",
    "add_business_time",
    "business_time_between",
    "business_time_used",
    "check_policies",
    "deadlines",
    "dispatch",
    "due_alerts",
    "due_escalations",
    "escalation_key",
    "find_by_identity",
    "fold",
    "identity",
    "importance",
    "match_policy",
    "merge_customers",
    "merge_timelines",
    "next_fire_at",
    "normalize_chat",
    "normalize_email",
    "normalize_enterprise",
    "normalize_phone",
    "open_case",
    "policy_for",
    "purchase_amount",
    "status",
    "timer_key",
    "timer_specs",
    "transition",
    "trigger_starts",
    "yearly_spend",
]
