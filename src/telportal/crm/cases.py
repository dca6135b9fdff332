"""Cases in the store: the adapter around the pure `telportal.cases` rules.

`CaseDesk` opens cases (from the API, linking the call and the customer), applies
their events, keeps every history entry, and keeps each case's SLA timers in the
store so they survive restarts. `fire_due` emits the alerts whose time has come
(`CaseAlert` events) and marks each key fired in the same transaction, so after a
restart the overdue ones come out once each, late rather than never; `run` calls
it every few seconds on a site with the center role.
"""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Required, TypedDict, Unpack, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.orm import class_mapper, make_transient_to_detached

from telportal.cases import lifecycle as lc
from telportal.cases.business_time import BusinessHours
from telportal.cases.dispatch import DispatchRule, DispatchTable, dispatch
from telportal.cases.escalation import (
    EscalationChain,
    EscalationStep,
    EscalationTrigger,
    due_escalations,
)
from telportal.cases.follow_ups import FollowUpPolicy, FollowUpRule
from telportal.cases.sla import (
    SlaLevel,
    SlaPolicy,
    SlaTarget,
    TimerSpec,
    deadlines,
    due_alerts,
    policy_for,
)
from telportal.cases.sla import timer_specs as sla_timer_specs
from telportal.clock import Clock
from telportal.crm import store as customers
from telportal.crm.identities import IdentityKind
from telportal.errors import Conflict, Invalid, NotFound
from telportal.events import CaseAlert, CaseEscalated, EventBus
from telportal.ivr.calendar import Calendar, CalendarSpec
from telportal.store.database import Database
from telportal.store.ids import new_id
from telportal.store.schema import (
    CallDetailRecord,
    Case,
    CaseEscalation,
    CaseFollowUp,
    CaseHistory,
    CaseSettings,
    CaseTimer,
    Customer,
    Tenant,
)
from telportal.store.unit_of_work import UnitOfWork
from telportal.tasks import stop_task
from telportal.tenancy.roles import Scope

log = logging.getLogger(__name__)

FIRE_INTERVAL = 2.0
# Tenants' case rules are kept this long; a change made in this process (the API's
# PUT /case-settings) clears them at once, one made by another process within this.
RULES_CACHE_SECONDS = 5.0
RULES_CACHE_TENANTS = 1000
# Built once: a case creation runs it, and building the statement cost more than
# SQLite answering it (the unique (tenant_id, number) index has the answer).
LAST_NUMBER = select(func.coalesce(func.max(Case.number), 0)).where(
    Case.tenant_id == bindparam("tenant_id")
)
ALWAYS_OPEN = CalendarSpec.model_validate({"timezone": "UTC", "weekly": {"mon-sun": "24h"}})


class CaseRules:
    """A tenant's SLA policies, business calendar and follow-up rules, ready to use."""

    def __init__(self, tenant_id: str, settings: CaseSettings | None) -> None:
        spec = ALWAYS_OPEN
        policies: list[SlaPolicy] = []
        rules: list[FollowUpRule] = []
        if settings is not None:
            if settings.calendar:
                spec = CalendarSpec.model_validate(settings.calendar)
            policies = [policy(tenant_id, p) for p in settings.sla_policies]
            rules = [follow_up_rule(tenant_id, r) for r in settings.follow_ups]
        self.hours = BusinessHours(tenant_id, Calendar.build("cases", spec))
        self.policies = policies
        self.follow_ups = FollowUpPolicy(tenant_id, rules, self.hours) if rules else None
        self.dispatch = dispatch_table(tenant_id, settings.dispatch if settings else {})
        self.chains = [chain(tenant_id, c) for c in (settings.escalations if settings else [])]


def chain(tenant_id: str, raw: dict[str, Any]) -> EscalationChain:
    return EscalationChain(
        tenant_id,
        str(raw["id"]),
        EscalationTrigger(raw["trigger"]),
        tuple(
            EscalationStep(
                timedelta(minutes=float(step["after_minutes"])),
                str(step["notify"]),
                bool(step.get("reassign", False)),
            )
            for step in raw["steps"]
        ),
        services=frozenset(raw.get("services", ())),
        categories=frozenset(raw.get("categories", ())),
        urgencies=frozenset(raw.get("urgencies", ())),
    )


def dispatch_table(tenant_id: str, raw: dict[str, Any]) -> DispatchTable | None:
    """The tenant's routing of new cases; None when it has none (cases stay unassigned)."""
    if not raw:
        return None
    rules = [
        DispatchRule(
            tenant_id,
            str(r["id"]),
            str(r.get("department", "")),
            assignees=tuple(r.get("assignees", ())),
            services=frozenset(r.get("services", ())),
            categories=frozenset(r.get("categories", ())),
            regions=frozenset(r.get("regions", ())),
            keywords=tuple(r.get("keywords", ())),
            min_importance=r.get("min_importance"),
        )
        for r in raw.get("rules", ())
    ]
    return DispatchTable(
        tenant_id,
        rules,
        str(raw.get("default_department", "")),
        tuple(raw.get("default_assignees", ())),
    )


def policy(tenant_id: str, raw: dict[str, Any]) -> SlaPolicy:
    def minutes(name: str) -> timedelta | None:
        value = raw.get(name)
        return None if value is None else timedelta(minutes=float(value))

    first, resolution = minutes("first_response_minutes"), minutes("resolution_minutes")
    if first is None and resolution is None:
        raise ValueError(f"policy {raw['id']}: give first_response_minutes or resolution_minutes")
    return SlaPolicy(
        tenant_id,
        str(raw["id"]),
        first,
        resolution,
        service=raw.get("service"),
        category=raw.get("category"),
        urgency=raw.get("urgency"),
        warning_share=float(raw.get("warning_share", 0.8)),
    )


def follow_up_rule(tenant_id: str, raw: dict[str, Any]) -> FollowUpRule:
    return FollowUpRule(
        tenant_id,
        str(raw["id"]),
        timedelta(minutes=float(raw["after_minutes"])),
        categories=frozenset(raw.get("categories", ())),
        urgencies=frozenset(raw.get("urgencies", ())),
    )


def to_core(row: Case) -> lc.Case:
    return lc.Case(
        row.tenant_id,
        row.id,
        lc.CaseState(row.state),
        created_at=row.created_at,
        updated_at=row.updated_at,
        service=row.service_id or "",
        category=row.category,
        urgency=row.urgency,
        customer_id=row.customer_id or "",
        subject=row.subject,
        description=row.description,
        region=row.region,
        channel=row.channel,
        department=row.department,
        assignee=row.assignee,
        first_response_at=row.first_response_at,
        resolved_at=row.resolved_at,
        resolution=row.resolution,
        satisfaction=row.satisfaction,
        feedback=row.feedback,
        closed_at=row.closed_at,
        reopen_count=row.reopen_count,
        pauses=tuple(
            lc.Pause(
                datetime.fromisoformat(p["start"]),
                datetime.fromisoformat(p["end"]) if p.get("end") else None,
                lc.PauseReason(p["reason"]),
            )
            for p in row.pauses
        ),
        version=row.version,
    )


def _columns(case: lc.Case) -> dict[str, Any]:
    """The columns of a case's row that its core state decides."""
    return {
        "state": case.state.value,
        "updated_at": case.updated_at,
        "category": case.category,
        "urgency": case.urgency,
        "subject": case.subject,
        "description": case.description,
        "region": case.region,
        "channel": case.channel,
        "department": case.department,
        "assignee": case.assignee,
        "first_response_at": case.first_response_at,
        "resolved_at": case.resolved_at,
        "resolution": case.resolution,
        "satisfaction": case.satisfaction,
        "feedback": case.feedback,
        "closed_at": case.closed_at,
        "reopen_count": case.reopen_count,
        "version": case.version,
        "pauses": [
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat() if p.end else None,
                "reason": p.reason.value,
            }
            for p in case.pauses
        ],
    }


def _store(row: Case, case: lc.Case) -> None:
    for key, value in _columns(case).items():
        setattr(row, key, value)


def _unsaved(values: dict[str, Any]) -> Case:
    """A `Case` holding `values`, made without the ORM's constructor and attribute
    events (a new case's row is written by `_insert_new`, not by a flush)."""
    row: Case = class_mapper(Case).class_manager.new_instance()
    vars(row).update(values)
    return row


async def _insert_new(uow: UnitOfWork, row: Case) -> None:
    """Insert a new case with one statement, past the ORM, and mark the row as loaded
    from the database. The ORM's insert of one object cost more CPU than the rest of a
    case creation's SQL together; every column is set (by `open_in` and `_save`), so
    the row reads back whole after the transaction. It joins the session only if the
    transaction changes it further (`open_in`)."""
    table = cast(Table, Case.__table__)  # declarative models have tables
    state = vars(row)
    await uow.insert(table, [{c.key: state[c.key] for c in table.columns}])
    make_transient_to_detached(row)


class NewCase(TypedDict, total=False):
    """What a new case may be opened with (`CaseDesk.open_in`'s keywords)."""

    subject: Required[str]
    description: str
    category: str
    urgency: str
    channel: str
    service_id: str | None
    customer_id: str | None
    call_id: str | None
    assignee: str | None
    department: str


@dataclass(frozen=True)
class OpenedCase:
    """A case just opened and its pending SLA timers, as written."""

    row: Case
    timers: list[CaseTimer]


class CaseDesk:
    def __init__(self, db: Database, clock: Clock, bus: EventBus) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self._task: asyncio.Task[None] | None = None
        self._rules: dict[str, tuple[float, CaseRules]] = {}
        self._rules_generation = 0
        db.on_commit(self._committed)

    # --- opening and events ------------------------------------------------------------

    async def open(self, scope: Scope, tenant_id: str, **fields: Unpack[NewCase]) -> Case:
        """A new case, in a transaction of its own (see `open_in`)."""
        async with self.db.write(scope) as uow:
            return (await self.open_in(uow, tenant_id, **fields)).row

    async def open_in(
        self,
        uow: UnitOfWork,
        tenant_id: str,
        *,
        subject: str,
        description: str = "",
        category: str = "",
        urgency: str = "normal",
        channel: str = "",
        service_id: str | None = None,
        customer_id: str | None = None,
        call_id: str | None = None,
        assignee: str | None = None,
        department: str = "",
    ) -> "OpenedCase":
        """A new case in the caller's transaction; `call_id` links the call's record and,
        when no customer is given, the customer the caller's number belongs to.

        Returns the row and its pending SLA timers as written, so an answer needs no
        second read."""
        actor = uow.scope.actor_name
        now = uow.clock.now()
        call_record_id = None
        if call_id is not None:
            record = (
                await uow.session.execute(
                    select(CallDetailRecord).where(
                        CallDetailRecord.tenant_id == tenant_id,
                        CallDetailRecord.call_id == call_id,
                    )
                )
            ).scalar_one_or_none()
            if record is None:
                raise Invalid("call_id", f"no call {call_id!r} in this tenant")
            call_record_id = record.id
            service_id = service_id or record.service_id
            channel = channel or "voice"
            if customer_id is None:
                found = await customers.find(
                    uow.session, tenant_id, IdentityKind.PHONE, record.caller
                )
                customer_id = found.id if found else None
        if customer_id is not None:
            await customers.own(uow.session, tenant_id, customer_id)
        if not uow.on_sqlite:
            # Numbers run per tenant: the tenant's row is locked while one is taken.
            # SQLite writes are one at a time anyway (the database's write lock).
            await uow.session.execute(
                select(Tenant.id).where(Tenant.id == tenant_id).with_for_update()
            )
        if uow.has_orm_changes():  # another case opened in this transaction counts
            await uow.session.flush()
        last = await uow.value(LAST_NUMBER, {"tenant_id": tenant_id})
        rules = await self.rules(uow, tenant_id)
        row = _unsaved(
            dict(
                id=new_id(), tenant_id=tenant_id, number=int(last or 0) + 1,
                service_id=service_id, customer_id=customer_id, call_record_id=call_record_id,
                watchers=[], created_by=actor, created_at=now,
            )
        )  # fmt: skip
        opened = lc.open_case(
            tenant_id, row.id, actor=actor, at=now, service=service_id or "",
            category=category, urgency=urgency, customer_id=customer_id or "",
            subject=subject, description=description, channel=channel,
            department=department,
        )  # fmt: skip
        timers = await self._save(uow, row, opened, rules, new=True)
        if assignee or rules.dispatch is not None:  # changed again in this transaction
            uow.session.add(row)
        if assignee:
            timers = await self._apply(uow, row, lc.Assign(assignee), actor, rules)
        else:
            timers = await self._dispatch(uow, row, actor, rules) or timers
        return OpenedCase(row, timers)

    async def _dispatch(
        self, uow: UnitOfWork, row: Case, actor: str, rules: CaseRules
    ) -> list[CaseTimer] | None:
        """Route a new case by the tenant's rules to the least loaded assignee; the
        pending timers when that changed the case."""
        if rules.dispatch is None:
            return None
        importance = 0
        if row.customer_id:
            customer = await uow.session.get(Customer, row.customer_id)
            importance = customer.importance if customer else 0
        load: dict[str, int] = {
            assignee: count
            for assignee, count in (
                await uow.session.execute(
                    select(Case.assignee, func.count())
                    .where(
                        Case.tenant_id == row.tenant_id,
                        Case.assignee != "",
                        Case.state.not_in(("resolved", "feedback_received", "closed")),
                    )
                    .group_by(Case.assignee)
                )
            ).all()
        }
        decision = dispatch(
            row.tenant_id, to_core(row), rules.dispatch, importance=importance, open_cases=load
        )
        if decision.assignee:
            return await self._apply(
                uow, row, lc.Assign(decision.assignee, decision.department or None), actor, rules
            )
        if decision.department:
            return await self._apply(
                uow, row, lc.Edit({"department": decision.department}), actor, rules
            )
        return None

    async def apply(self, scope: Scope, tenant_id: str, case_id: str, command: lc.Command) -> Case:
        async with self.db.write(scope) as uow:
            row = await self.get(uow.session, tenant_id, case_id)
            await self._apply(uow, row, command, scope.actor_name)
            return row

    async def _apply(
        self,
        uow: UnitOfWork,
        row: Case,
        command: lc.Command,
        actor: str,
        rules: CaseRules | None = None,
    ) -> list[CaseTimer]:
        """Carry out one event; the case's pending SLA timers after it."""
        rules = rules or await self.rules(uow, row.tenant_id)
        now = max(uow.clock.now(), row.updated_at)
        done = lc.transition(
            row.tenant_id, to_core(row), command, actor=actor, at=now, follow_ups=rules.follow_ups
        )
        return await self._save(uow, row, done, rules)

    async def _save(
        self,
        uow: UnitOfWork,
        row: Case,
        done: lc.Transition,
        rules: CaseRules,
        *,
        new: bool = False,
    ) -> list[CaseTimer]:
        """Store a transition: the case, its history entry, follow-ups and timers. A
        `new` case has no timers yet, so none are looked for. The pending timers."""
        escalate_at = await self._next_escalation(uow, row, done.case, rules, new=new)
        if new:  # first, so that its timers and follow-ups can refer to it
            vars(row).update(_columns(done.case), escalate_at=escalate_at)
            await _insert_new(uow, row)
        else:
            _store(row, done.case)
            row.escalate_at = escalate_at
        e = done.entry
        entry: dict[str, Any] = dict(
            tenant_id=row.tenant_id, case_id=row.id, version=e.version, at=e.at,
            actor=e.actor, event=e.event.value,
            from_state=e.from_state.value if e.from_state else None,
            to_state=e.to_state.value, details=dict(e.details),
        )  # fmt: skip
        if new:
            uow.add_row(CaseHistory, **entry)  # the first entry: nobody else can write one
        else:
            # Flushed below: (case_id, version) is unique, so of two writers applying an
            # event to the same version of a case, the later one fails there.
            uow.session.add(CaseHistory(**entry))
        for follow in done.follow_ups:  # upsert by id: the core's ids are stable
            if await uow.session.get(CaseFollowUp, follow.follow_up_id) is None:
                uow.session.add(
                    CaseFollowUp(
                        id=follow.follow_up_id, tenant_id=row.tenant_id, case_id=row.id,
                        customer_id=follow.customer_id, rule_id=follow.rule_id,
                        channel=follow.channel, due_at=follow.due_at, state="pending",
                        created_at=follow.created_at,
                    )
                )  # fmt: skip
        if done.end_follow_ups is not None:
            await uow.session.execute(
                update(CaseFollowUp)
                .where(CaseFollowUp.case_id == row.id, CaseFollowUp.state == "pending")
                .values(state=done.end_follow_ups.value)
            )
        specs = sla_timer_specs(
            row.tenant_id, done.case, policy_for(row.tenant_id, rules.policies, done.case),
            rules.hours,
        )  # fmt: skip
        timers = await self._replace_timers(uow, row, specs, new=new)
        if not new:  # a new case has no other writer; it is written with the commit
            try:
                await uow.session.flush()
            except Exception as exc:  # two writers on one case: the later one retries
                raise Conflict(f"case {row.id} changed meanwhile; reload it") from exc
        uow.data_changed(
            row.tenant_id, "case", row.id, "created" if e.version == 1 else "updated",
            {"event": e.event.value, "state": e.to_state.value},
        )  # fmt: skip
        return timers

    async def _replace_timers(
        self, uow: UnitOfWork, row: Case, specs: Sequence[TimerSpec], *, new: bool
    ) -> list[CaseTimer]:
        """The case's pending timers become `specs`, less the keys that fired already."""
        fired: set[str] = set()
        if not new:
            fired = set(
                (
                    await uow.session.execute(
                        select(CaseTimer.key).where(
                            CaseTimer.case_id == row.id, CaseTimer.fired_at.is_not(None)
                        )
                    )
                ).scalars()
            )
            await uow.session.execute(
                delete(CaseTimer).where(CaseTimer.case_id == row.id, CaseTimer.fired_at.is_(None))
            )
        timers = [
            CaseTimer(
                key=spec.key, tenant_id=row.tenant_id, case_id=row.id,
                target=spec.target.value, level=spec.level.value, fire_at=spec.fire_at,
                due_at=spec.due_at, fired_at=None,
            )
            for spec in specs
            if spec.key not in fired  # fired once: never again
        ]  # fmt: skip
        if timers:
            uow.session.add_all(timers)
        return timers

    async def rules(self, uow: UnitOfWork, tenant_id: str) -> CaseRules:
        """The tenant's rules, kept `RULES_CACHE_SECONDS` (each case would read them)."""
        hit = self._rules.get(tenant_id)
        if hit is not None and self.clock.monotonic() - hit[0] < RULES_CACHE_SECONDS:
            return hit[1]
        generation = self._rules_generation
        rules = CaseRules(tenant_id, await uow.session.get(CaseSettings, tenant_id))
        if generation == self._rules_generation:  # no change committed meanwhile
            if len(self._rules) >= RULES_CACHE_TENANTS:
                self._rules.clear()
            self._rules[tenant_id] = (self.clock.monotonic(), rules)
        return rules

    def _committed(self, uow: UnitOfWork) -> None:
        """Settings changed in this process take effect at once (decision 0011)."""
        if "case_settings" in uow.audited or "tenant" in uow.audited:
            self._rules.clear()
            self._rules_generation += 1

    @staticmethod
    async def get(session: Any, tenant_id: str, case_id: str) -> Case:
        row = await session.get(Case, case_id)
        if row is None or row.tenant_id != tenant_id:
            raise NotFound("case")
        return row  # type: ignore[no-any-return]

    # --- escalation ------------------------------------------------------------------------

    async def _plan(
        self,
        uow: UnitOfWork,
        row: Case,
        case: lc.Case,
        rules: CaseRules,
        now: datetime,
        *,
        new: bool = False,
    ) -> Any:
        done: set[str] = set()  # a new case has taken no step yet
        if not new:
            done = set(
                (
                    await uow.session.execute(
                        select(CaseEscalation.key).where(CaseEscalation.case_id == row.id)
                    )
                ).scalars()
            )
        found = policy_for(row.tenant_id, rules.policies, case)
        sla = deadlines(row.tenant_id, case, found, rules.hours) if found else None
        return due_escalations(row.tenant_id, case, rules.chains, rules.hours, now, done, sla=sla)

    async def _next_escalation(
        self, uow: UnitOfWork, row: Case, case: lc.Case, rules: CaseRules, *, new: bool = False
    ) -> datetime | None:
        if not rules.chains:
            return None
        plan = await self._plan(uow, row, case, rules, uow.clock.now(), new=new)
        return uow.clock.now() if plan.due else plan.next_at

    async def escalate_due(self) -> int:
        """Carry out the escalation steps that came due; each step once. How many."""
        now = self.clock.now()
        async with self.db.read() as session:
            due_ids = (
                (
                    await session.execute(
                        select(Case.id).where(
                            Case.escalate_at.is_not(None), Case.escalate_at <= now
                        )
                    )
                )
                .scalars()
                .all()
            )
        stepped = 0
        for case_id in due_ids:
            async with self.db.write(Scope.system("escalation")) as uow:
                row = await uow.session.get(Case, case_id)
                if row is None:
                    continue
                rules = await self.rules(uow, row.tenant_id)
                plan = await self._plan(uow, row, to_core(row), rules, uow.clock.now())
                for step in plan.due:
                    uow.session.add(
                        CaseEscalation(
                            key=step.key, tenant_id=row.tenant_id, case_id=row.id,
                            chain_id=step.chain_id, trigger=step.trigger.value,
                            level=step.level, notify=step.notify, at=uow.clock.now(),
                        )
                    )  # fmt: skip
                    uow.emit(
                        CaseEscalated(
                            tenant_id=row.tenant_id, at=uow.clock.now(), case_id=row.id,
                            case_number=row.number, chain_id=step.chain_id,
                            trigger=step.trigger.value, level=step.level, notify=step.notify,
                            assignee=row.assignee,
                        )
                    )  # fmt: skip
                    stepped += 1
                    if step.reassign and step.notify != row.assignee:
                        await uow.session.flush()
                        await self._apply(uow, row, lc.Assign(step.notify), "escalation")
                await uow.session.flush()
                row.escalate_at = await self._next_escalation(uow, row, to_core(row), rules)
        return stepped

    # --- the durable SLA timers ------------------------------------------------------------

    async def fire_due(self) -> int:
        """Emit every alert whose time has come, each key once; how many fired."""
        fired = 0
        async with self.db.read() as session:  # most rounds find nothing: no write lock
            due = await session.scalar(
                select(func.count())
                .select_from(CaseTimer)
                .where(CaseTimer.fired_at.is_(None), CaseTimer.fire_at <= self.clock.now())
            )
        if not due:
            return 0
        async with self.db.write(Scope.system("cases")) as uow:
            now = uow.clock.now()
            rows = (
                (
                    await uow.session.execute(
                        select(CaseTimer)
                        .where(CaseTimer.fired_at.is_(None), CaseTimer.fire_at <= now)
                        .order_by(CaseTimer.fire_at)
                        .limit(1000)
                    )
                )
                .scalars()
                .all()
            )
            by_tenant: dict[str, list[CaseTimer]] = {}
            for row in rows:
                by_tenant.setdefault(row.tenant_id, []).append(row)
            for tenant_id, timers in by_tenant.items():
                specs = [
                    TimerSpec(
                        t.tenant_id, t.case_id, SlaTarget(t.target), SlaLevel(t.level),
                        t.fire_at, t.due_at, t.key,
                    )
                    for t in timers
                ]  # fmt: skip
                keyed = {t.key: t for t in timers}
                for alert in due_alerts(tenant_id, specs, now, set()):
                    keyed[alert.key].fired_at = now
                    case = await uow.session.get(Case, alert.case_id)
                    if case is not None and alert.level is SlaLevel.BREACH:
                        case.escalate_at = now  # breach chains are judged now
                    uow.emit(
                        CaseAlert(
                            tenant_id=tenant_id, at=now, case_id=alert.case_id,
                            case_number=case.number if case else 0,
                            assignee=case.assignee if case else "",
                            target=alert.target.value, level=alert.level.value,
                            due_at=alert.due_at, late_seconds=alert.late_by.total_seconds(),
                        )
                    )  # fmt: skip
                    fired += 1
        return fired

    async def start(self) -> None:
        await self.fire_due()  # what came due while the site was down, at once
        await self.escalate_due()
        self._task = asyncio.create_task(self._run(), name="case timers")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(FIRE_INTERVAL)
            try:
                await self.fire_due()
                await self.escalate_due()
            except Exception:
                log.exception("case timers")
