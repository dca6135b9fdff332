"""SLA policies: deadlines in business time, their state now, and durable timers as data.

**Which policy applies.** A policy names any of service, category and urgency (an
unnamed field matches anything). Among the tenant's policies that match a case, the
most specific wins:

    1. more fields named beats fewer (service+category+urgency beats any two, ...);
    2. between equally specific policies, the one naming urgency beats the one that
       does not, then category beats service: urgency is what deadlines are about
       (MISSION M11), a category is narrower than a service.

Two policies naming the same fields with the same values are refused by
`check_policies`, so the choice is never left to list order.

**Targets.** A policy has a first-response target and a resolution target (either may
be absent), in business time on the tenant's calendar, and a warning share: at 0.8 the
warning comes when 80% of the target is used up. Both clocks start when the case is
created. The first response is the first `respond`, `wait_for_customer` or `resolve`
(see `lifecycle`); the resolution is `resolve`.

**Pauses.** The clocks stop while the case waits on the customer and resume when the
customer replies (or the case is resolved): the business time spent waiting is added to
every deadline still running. Time spent resolved before a reopen is a pause too, so a
reopened case has what was left of its resolution target, not a fresh one and not
nothing. While a pause lasts the deadlines it would move are unknown (`None`); the state
is judged on the business time used so far. We chose stopping over "count everything"
because an agent cannot make a customer answer, and over restarting the target after a
wait because that would let a case be parked to reset its clock.

**State.** A target is `breached` once its business time used reaches the target (so
from the due instant on; a response exactly at the due instant is late), `warning` once
it reaches the warning share, else `ok`. A met target stays `ok`; one met late stays
`breached`.

**Timers.** `timer_specs` gives what must fire when (warning, breach for each running
target) as data with an idempotency key per case, target and level. The adapter keeps
them durable: after every change of the case it replaces the case's unfired timers with
the new specs in the same transaction. `due_alerts` turns the timers due by `now` into
alerts in firing order, skipping keys already fired; after a restart the overdue ones
come out late but once each, warnings before breaches. A key never fires twice, even if
a pause later moves its deadline: the people were told once.
"""

from collections.abc import Collection, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from telportal.cases.business_time import BusinessHours
from telportal.cases.lifecycle import Case, Pause
from telportal.errors import Invalid, NotFound

_ZERO = timedelta(0)


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaLevel(StrEnum):
    WARNING = "warning"
    BREACH = "breach"


class SlaState(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


_TARGET_ORDER = {SlaTarget.FIRST_RESPONSE: 0, SlaTarget.RESOLUTION: 1}
_LEVEL_ORDER = {SlaLevel.WARNING: 0, SlaLevel.BREACH: 1}


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    tenant_id: str
    policy_id: str
    first_response: timedelta | None
    resolution: timedelta | None
    service: str | None = None
    category: str | None = None
    urgency: str | None = None
    warning_share: float = 0.8
    """The share of a target after which it is in warning; 1.0 means no warning."""

    def __post_init__(self) -> None:
        for name, limit in (
            ("first_response", self.first_response),
            ("resolution", self.resolution),
        ):
            if limit is not None and limit <= _ZERO:
                raise Invalid(name, f"policy {self.policy_id}: a target must be positive")
        if not 0.0 < self.warning_share <= 1.0:
            raise Invalid("warning_share", "a share between 0 (excluded) and 1")

    def matches(self, service: str, category: str, urgency: str) -> bool:
        return (
            (self.service is None or self.service == service)
            and (self.category is None or self.category == category)
            and (self.urgency is None or self.urgency == urgency)
        )

    @property
    def specificity(self) -> tuple[int, bool, bool, bool]:
        """Larger wins: fields named, then urgency, category, service (module docstring)."""
        named = (self.urgency is not None, self.category is not None, self.service is not None)
        return (sum(named), *named)

    def limit(self, target: SlaTarget) -> timedelta | None:
        return self.first_response if target is SlaTarget.FIRST_RESPONSE else self.resolution


def check_policies(tenant_id: str, policies: Iterable[SlaPolicy]) -> None:
    """Refuse another tenant's policy and two policies with the same criteria."""
    seen: dict[tuple[str | None, str | None, str | None], str] = {}
    for policy in policies:
        if policy.tenant_id != tenant_id:
            raise Invalid("policies", f"policy {policy.policy_id} belongs to another tenant")
        criteria = (policy.service, policy.category, policy.urgency)
        if criteria in seen:
            raise Invalid(
                "policies",
                f"policies {seen[criteria]} and {policy.policy_id} have the same"
                " service, category and urgency",
            )
        seen[criteria] = policy.policy_id


def match_policy(
    tenant_id: str,
    policies: Iterable[SlaPolicy],
    *,
    service: str,
    category: str,
    urgency: str,
) -> SlaPolicy | None:
    """The most specific of the tenant's policies matching these, or None."""
    best: SlaPolicy | None = None
    for policy in policies:
        if policy.tenant_id != tenant_id:
            raise Invalid("policies", f"policy {policy.policy_id} belongs to another tenant")
        if policy.matches(service, category, urgency) and (
            best is None or policy.specificity > best.specificity
        ):
            best = policy
    return best


def policy_for(tenant_id: str, policies: Iterable[SlaPolicy], case: Case) -> SlaPolicy | None:
    return match_policy(
        tenant_id, policies, service=case.service, category=case.category, urgency=case.urgency
    )


# ---- deadlines -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetDeadline:
    target: SlaTarget
    limit: timedelta
    warning_at: datetime | None
    """None while a pause holds the clock before the warning point."""
    due_at: datetime | None
    """None while a pause holds the clock before the due instant."""
    done_at: datetime | None
    """When the target was met (or met late); None while it runs."""


@dataclass(frozen=True, slots=True)
class SlaDeadlines:
    tenant_id: str
    case_id: str
    policy_id: str
    first_response: TargetDeadline | None
    resolution: TargetDeadline | None
    paused: bool

    def targets(self) -> tuple[TargetDeadline, ...]:
        return tuple(t for t in (self.first_response, self.resolution) if t is not None)


def deadlines(tenant_id: str, case: Case, policy: SlaPolicy, hours: BusinessHours) -> SlaDeadlines:
    """The case's deadlines under `policy`, pauses included."""
    _check_tenant(tenant_id, case, policy, hours)
    first, resolution = (
        _deadline(case, policy, hours, target)
        for target in (SlaTarget.FIRST_RESPONSE, SlaTarget.RESOLUTION)
    )
    paused = bool(case.pauses) and case.pauses[-1].end is None
    return SlaDeadlines(tenant_id, case.case_id, policy.policy_id, first, resolution, paused)


def _done_at(case: Case, target: SlaTarget) -> datetime | None:
    return case.first_response_at if target is SlaTarget.FIRST_RESPONSE else case.resolved_at


def _pauses_before(case: Case, done_at: datetime | None) -> list[Pause]:
    # After a target is met its clock no longer runs, so later pauses cannot move it.
    return [p for p in case.pauses if done_at is None or p.start < done_at]


def _deadline(
    case: Case, policy: SlaPolicy, hours: BusinessHours, target: SlaTarget
) -> TargetDeadline | None:
    limit = policy.limit(target)
    if limit is None:
        return None
    done_at = _done_at(case, target)
    pauses = _pauses_before(case, done_at)
    warning_at = (
        _reach(hours, case.created_at, pauses, limit * policy.warning_share)
        if policy.warning_share < 1.0
        else None
    )
    due_at = _reach(hours, case.created_at, pauses, limit)
    return TargetDeadline(target, limit, warning_at, due_at, done_at)


def _reach(
    hours: BusinessHours, start: datetime, pauses: Sequence[Pause], amount: timedelta
) -> datetime | None:
    """The instant at which `amount` of unpaused business time has passed since `start`.

    Walks the pauses in order: if the amount is used up before a pause starts, that is
    the answer; else the business time up to the pause is spent and counting resumes
    where the pause ends. A pause still lasting makes the answer unknown.
    """
    cursor, remaining = start, amount
    for pause in sorted(pauses, key=lambda p: p.start):
        if pause.end is not None and pause.end <= cursor:
            continue
        if pause.start > cursor:
            candidate = hours.add(cursor, remaining)
            if pause.start >= candidate:
                return candidate
            remaining -= hours.between(cursor, pause.start)
        if pause.end is None:
            return None
        cursor = pause.end
    return hours.add(cursor, remaining)


def business_time_used(case: Case, hours: BusinessHours, until: datetime) -> timedelta:
    """Unpaused business time from the case's creation to `until`."""
    if until <= case.created_at:
        return _ZERO
    used = hours.between(case.created_at, until)
    for pause in case.pauses:
        if pause.start >= until:
            continue
        end = until if pause.end is None else min(pause.end, until)
        used -= hours.between(max(pause.start, case.created_at), end)
    return used


# ---- state now -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TargetStatus:
    target: SlaTarget
    state: SlaState
    used: timedelta
    """Unpaused business time used, up to now or up to when the target was met."""
    limit: timedelta
    remaining: timedelta
    """limit - used; negative once breached."""
    warning_at: datetime | None
    due_at: datetime | None
    done: bool
    paused: bool


@dataclass(frozen=True, slots=True)
class SlaStatus:
    tenant_id: str
    case_id: str
    policy_id: str
    first_response: TargetStatus | None
    resolution: TargetStatus | None

    @property
    def worst(self) -> SlaState:
        order = (SlaState.OK, SlaState.WARNING, SlaState.BREACHED)
        states = [t.state for t in (self.first_response, self.resolution) if t is not None]
        return max(states, key=order.index, default=SlaState.OK)


def status(
    tenant_id: str, case: Case, policy: SlaPolicy, hours: BusinessHours, now: datetime
) -> SlaStatus:
    """Each target's state at `now`: ok, warning or breached, with what is left."""
    found = deadlines(tenant_id, case, policy, hours)
    first, resolution = (
        None if d is None else _target_status(case, policy, hours, d, now, found.paused)
        for d in (found.first_response, found.resolution)
    )
    return SlaStatus(tenant_id, case.case_id, policy.policy_id, first, resolution)


def _target_status(
    case: Case,
    policy: SlaPolicy,
    hours: BusinessHours,
    deadline: TargetDeadline,
    now: datetime,
    paused: bool,
) -> TargetStatus:
    done = deadline.done_at is not None and deadline.done_at <= now
    until = deadline.done_at if done and deadline.done_at is not None else now
    used = business_time_used(case, hours, until)
    if used >= deadline.limit:
        state = SlaState.BREACHED
    elif not done and used >= deadline.limit * policy.warning_share and policy.warning_share < 1:
        state = SlaState.WARNING
    else:
        state = SlaState.OK
    return TargetStatus(
        deadline.target,
        state,
        used,
        deadline.limit,
        deadline.limit - used,
        deadline.warning_at,
        deadline.due_at,
        done,
        paused and not done,
    )


# ---- durable timers ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimerSpec:
    """A moment the adapter must not miss, even across restarts: store it, fire it once."""

    tenant_id: str
    case_id: str
    target: SlaTarget
    level: SlaLevel
    fire_at: datetime
    due_at: datetime | None
    """The target's due instant (for the message); known whenever a breach timer exists."""
    key: str
    """`<tenant>/<case>/sla/<target>/<level>`: the idempotency key, one firing per key."""


@dataclass(frozen=True, slots=True)
class SlaAlert:
    tenant_id: str
    case_id: str
    target: SlaTarget
    level: SlaLevel
    fire_at: datetime
    due_at: datetime | None
    fired_at: datetime
    key: str

    @property
    def late_by(self) -> timedelta:
        """How long after its time it fired (long after a restart, zero on time)."""
        return self.fired_at - self.fire_at


def timer_key(tenant_id: str, case_id: str, target: SlaTarget, level: SlaLevel) -> str:
    return f"{tenant_id}/{case_id}/sla/{target.value}/{level.value}"


def timer_specs(
    tenant_id: str, case: Case, policy: SlaPolicy | None, hours: BusinessHours
) -> tuple[TimerSpec, ...]:
    """The timers the case needs now: warning and breach of each running target.

    Targets already met and instants held by a pause have none; the specs are the whole
    set for the case, to replace its unfired timers. Instants in the past are included:
    they fire at once (late rather than never).
    """
    if policy is None:
        return ()
    found = deadlines(tenant_id, case, policy, hours)
    specs: list[TimerSpec] = []
    for deadline in found.targets():
        if deadline.done_at is not None:
            continue
        for level, at in (
            (SlaLevel.WARNING, deadline.warning_at),
            (SlaLevel.BREACH, deadline.due_at),
        ):
            if at is not None:
                key = timer_key(tenant_id, case.case_id, deadline.target, level)
                specs.append(
                    TimerSpec(
                        tenant_id, case.case_id, deadline.target, level, at, deadline.due_at, key
                    )
                )
    return tuple(specs)


def due_alerts(
    tenant_id: str, timers: Iterable[TimerSpec], now: datetime, fired: Container[str]
) -> list[SlaAlert]:
    """The alerts to emit at `now`, in firing order, each key at most once.

    `timers` are the stored timers with `fire_at <= now` (more are ignored); `fired`
    holds the keys already emitted. Order: firing time, then warning before breach,
    then case and target, so a restart far past several deadlines replays them as they
    would have happened. The adapter records each emitted key in the same transaction
    that publishes the alert.
    """
    if now.tzinfo is None:
        raise Invalid("now", "times must be timezone-aware")
    now = now.astimezone(UTC)
    due = [t for t in timers if t.fire_at <= now and t.key not in fired]
    for timer in due:
        if timer.tenant_id != tenant_id:
            raise NotFound("timer")
    due.sort(key=lambda t: (t.fire_at, _LEVEL_ORDER[t.level], t.case_id, _TARGET_ORDER[t.target]))
    out: list[SlaAlert] = []
    emitted: set[str] = set()
    for t in due:
        if t.key in emitted:
            continue
        emitted.add(t.key)
        out.append(
            SlaAlert(tenant_id, t.case_id, t.target, t.level, t.fire_at, t.due_at, now, t.key)
        )
    return out


def next_fire_at(timers: Collection[TimerSpec], fired: Container[str]) -> datetime | None:
    """When the adapter should wake next for these timers (None: nothing pending)."""
    return min((t.fire_at for t in timers if t.key not in fired), default=None)


def _check_tenant(tenant_id: str, case: Case, policy: SlaPolicy, hours: BusinessHours) -> None:
    if case.tenant_id != tenant_id:
        raise NotFound("case")
    if policy.tenant_id != tenant_id or hours.tenant_id != tenant_id:
        raise Invalid("policy", "the policy or calendar belongs to another tenant")
