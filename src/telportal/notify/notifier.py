"""Case alarms to stored emails: the store and bus adapter around the notify core.

`CaseNotifier` follows `CaseAlert` and `CaseEscalated` on the bus. For each it reads the
case, its customer, the tenant's people, departments and case settings, lets the pure
core choose the people and write the messages, and stores them in the outbox in one
transaction; then it wakes the sender. Everything it reads is the event's tenant's:
people of another tenant can never be chosen.

**Nothing lost between the alarm and its email.** The case desk marks an alarm fired
and publishes its event after that commit; the bus is in memory, so a stop in between
would lose the email. So at start `catch_up` looks at the alarms fired and escalation
steps taken in the last `catch_up_minutes` and stores the emails of any that have no
outbox row; the outbox's unique key makes doing it twice harmless.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from telportal.cases import lifecycle as lc
from telportal.cases.sla import SlaPolicy, deadlines, policy_for
from telportal.clock import Clock
from telportal.config import EmailSettings
from telportal.crm.cases import CaseRules, to_core
from telportal.errors import DomainError
from telportal.events import CaseAlert, CaseEscalated, EventBus, Subscription
from telportal.notify.messages import (
    Alarm,
    CaseFacts,
    EscalationAlarm,
    SlaAlarm,
    case_link,
    compose_all,
)
from telportal.notify.outbox import SCOPE, store
from telportal.notify.recipients import Person, alert_addressees, escalation_addressees
from telportal.notify.sender import OutboxSender
from telportal.store.database import Database
from telportal.store.schema import (
    Case,
    CaseEscalation,
    CaseSettings,
    CaseTimer,
    Customer,
    Department,
    EmailOutbox,
    Tenant,
    User,
)
from telportal.tasks import stop_task
from telportal.tenancy.roles import Role

log = logging.getLogger(__name__)

CaseEvent = CaseAlert | CaseEscalated


@dataclass(frozen=True, slots=True)
class _Tenancy:
    """What the core needs to know about the case's tenant, read in one go."""

    people: list[Person]
    parents: dict[str, str | None]
    department_ids: dict[str, str]
    zone: ZoneInfo
    language: str
    policy: SlaPolicy | None
    rules: CaseRules | None


def _kind_of(key: str, tenant_id: str, case_id: str) -> str:
    return key.removeprefix(f"{tenant_id}/{case_id}/")


class CaseNotifier:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        bus: EventBus,
        settings: EmailSettings,
        *,
        desktop_url: str,
        on_stored: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.bus = bus
        self.settings = settings
        self.desktop_url = desktop_url
        self.on_stored = on_stored
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    # --- one alarm ------------------------------------------------------------------------

    async def notify(self, event: CaseEvent) -> int:
        """Store the emails of one alarm; how many were new (0 when told before)."""
        tenant_id = event.tenant_id
        if tenant_id is None:
            return 0
        async with self.db.write(SCOPE) as uow:
            session = uow.session
            case = await session.get(Case, event.case_id)
            if case is None or case.tenant_id != tenant_id:
                log.warning("%s: case %s is not in the tenant", event.subject, event.case_id)
                return 0
            named = {event.assignee, event.notify if isinstance(event, CaseEscalated) else ""}
            t = await self._tenancy(session, case, named - {""})
            department_id = t.department_ids.get(case.department)
            alarm: Alarm
            if isinstance(event, CaseAlert):
                percent = None
                if event.level == "warning" and t.policy is not None:
                    percent = round(t.policy.warning_share * 100)
                alarm = SlaAlarm(event.target, event.level, percent, event.late_seconds)
                addressees = alert_addressees(t.people, event.assignee, department_id, t.parents)
                deadline = event.due_at
            else:
                alarm = EscalationAlarm(
                    await self._step_kind(session, event),
                    event.chain_id,
                    event.trigger,
                    event.level,
                    event.notify,
                )
                addressees = escalation_addressees(
                    t.people, event.notify, event.assignee, department_id, t.parents
                )
                deadline = self._next_deadline(tenant_id, case, t)
            customer = await session.get(Customer, case.customer_id) if case.customer_id else None
            facts = CaseFacts(
                tenant_id, case.id, case.number, case.subject,
                customer.name if customer is not None else "", case.assignee, deadline,
                case_link(self.desktop_url, case.id),
            )  # fmt: skip
            notices, skipped = compose_all(
                facts, alarm, addressees, sender=self.settings.from_address,
                tenant_language=t.language, zone=t.zone, now=uow.clock.now(),
            )  # fmt: skip
            for s in skipped:
                log.warning(
                    "tenant %s case %s (%s): user %s is not emailed: %s",
                    tenant_id, case.number, alarm.kind, s.person.username, s.why,
                )  # fmt: skip
            if not addressees:
                log.warning(
                    "tenant %s case %s (%s): nobody to tell", tenant_id, case.number, alarm.kind
                )
            stored = await store(session, notices, uow.clock.now())
        if stored:
            self.on_stored()
        return stored

    async def _tenancy(self, session: AsyncSession, case: Case, named: set[str]) -> _Tenancy:
        """The tenant's facts; of its people, only those an alarm can reach (the ones
        named, supervisors and administrators), not every agent of a large tenant."""
        tenant_id = case.tenant_id
        users = (
            await session.execute(
                select(User).where(
                    User.tenant_id == tenant_id,
                    or_(
                        User.role.in_((Role.SUPERVISOR.value, Role.TENANT_ADMIN.value)),
                        User.username.in_(named),
                        User.id.in_(named),
                    ),
                )
            )
        ).scalars()
        people = [
            Person(u.id, u.username, u.display_name, u.email, u.role, u.department_id, u.enabled)
            for u in users
        ]
        departments = (
            await session.execute(
                select(Department.id, Department.name, Department.parent_id).where(
                    Department.tenant_id == tenant_id
                )
            )
        ).all()
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
        settings = await session.get(CaseSettings, tenant_id)
        zone_name = self.settings.timezone
        if settings is not None and settings.calendar.get("timezone"):
            zone_name = str(settings.calendar["timezone"])
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo(self.settings.timezone)
        rules = policy = None
        try:
            rules = CaseRules(tenant_id, settings)
            policy = policy_for(tenant_id, rules.policies, to_core(case))
        except (DomainError, ValueError, KeyError) as exc:
            # The settings were checked when saved; an email is still worth sending.
            log.warning("case settings of tenant %s unreadable: %s", tenant_id, exc)
        return _Tenancy(
            people,
            {d.id: d.parent_id for d in departments},
            {d.name: d.id for d in departments},
            zone,
            self.settings.tenant_languages.get(slug or "", self.settings.language),
            policy,
            rules,
        )

    @staticmethod
    def _next_deadline(tenant_id: str, case: Case, t: _Tenancy) -> datetime | None:
        """For an escalation: the nearest SLA deadline still running, if any."""
        if t.policy is None or t.rules is None:
            return None
        core: lc.Case = to_core(case)
        running = [
            d.due_at
            for d in deadlines(tenant_id, core, t.policy, t.rules.hours).targets()
            if d.done_at is None and d.due_at is not None
        ]
        return min(running, default=None)

    @staticmethod
    async def _step_kind(session: AsyncSession, event: CaseEscalated) -> str:
        """The step's own key (it names the episode), found by the step's record."""
        rows = (
            (
                await session.execute(
                    select(CaseEscalation)
                    .where(
                        CaseEscalation.case_id == event.case_id,
                        CaseEscalation.chain_id == event.chain_id,
                        CaseEscalation.level == event.level,
                    )
                    .order_by(CaseEscalation.at.desc())
                )
            )
            .scalars()
            .all()
        )
        row = next((r for r in rows if r.at == event.at), rows[0] if rows else None)
        if row is not None:
            return _kind_of(row.key, row.tenant_id, row.case_id)
        stamp = event.at.strftime("%Y%m%dT%H%M%S.%fZ")
        return f"escalation/{event.chain_id}/{stamp}/{event.level}"

    # --- catching up after a stop ---------------------------------------------------------

    async def catch_up(self) -> int:
        """Store the emails of recent alarms that have none; how many were stored."""
        if self.settings.catch_up_minutes == 0:
            return 0
        since = self.clock.now() - timedelta(minutes=self.settings.catch_up_minutes)
        events: list[tuple[str, str, CaseEvent]] = []
        async with self.db.read() as session:
            timers = await session.execute(
                select(CaseTimer, Case.number, Case.assignee)
                .join(Case, Case.id == CaseTimer.case_id)
                .where(CaseTimer.fired_at.is_not(None), CaseTimer.fired_at >= since)
                .order_by(CaseTimer.fired_at)
            )
            for timer, number, assignee in timers.all():
                fired_at = timer.fired_at or since
                events.append((
                    timer.case_id,
                    _kind_of(timer.key, timer.tenant_id, timer.case_id),
                    CaseAlert(
                        tenant_id=timer.tenant_id, at=fired_at, case_id=timer.case_id,
                        case_number=number, assignee=assignee, target=timer.target,
                        level=timer.level, due_at=timer.due_at,
                        late_seconds=(fired_at - timer.fire_at).total_seconds(),
                    ),
                ))  # fmt: skip
            steps = await session.execute(
                select(CaseEscalation, Case.number, Case.assignee)
                .join(Case, Case.id == CaseEscalation.case_id)
                .where(CaseEscalation.at >= since)
                .order_by(CaseEscalation.at)
            )
            for step, number, assignee in steps.all():
                events.append((
                    step.case_id,
                    _kind_of(step.key, step.tenant_id, step.case_id),
                    CaseEscalated(
                        tenant_id=step.tenant_id, at=step.at, case_id=step.case_id,
                        case_number=number, chain_id=step.chain_id, trigger=step.trigger,
                        level=step.level, notify=step.notify, assignee=assignee,
                    ),
                ))  # fmt: skip
            case_ids = {case_id for case_id, _, _ in events}
            told = {
                (case_id, kind)
                for case_id, kind in await session.execute(
                    select(EmailOutbox.case_id, EmailOutbox.kind).where(
                        EmailOutbox.case_id.in_(case_ids)
                    )
                )
            }
        stored = 0
        for case_id, kind, event in events:
            if (case_id, kind) not in told:
                stored += await self.notify(event)
        if stored:
            log.warning("stored %d alarm emails missed while the site was down", stored)
        return stored

    # --- following the bus ----------------------------------------------------------------

    async def start(self) -> None:
        self._sub = self.bus.subscribe("case")
        self._task = asyncio.create_task(self._run(self._sub), name="case alarm emails")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
            self._task = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    async def _run(self, sub: Subscription) -> None:
        async for event in sub:
            if not isinstance(event, CaseAlert | CaseEscalated):
                continue
            try:
                await self.notify(event)
            except Exception:  # one bad alarm must not stop the others' emails
                log.exception("emails for %s on case %s", event.subject, event.case_id)


class EmailNotifications:
    """The notifier and the sender, started and stopped together by the platform."""

    def __init__(self, notifier: CaseNotifier, sender: OutboxSender) -> None:
        self.notifier = notifier
        self.sender = sender

    async def start(self) -> None:
        await self.notifier.start()  # before the case desk starts: its first alarms count
        await self.notifier.catch_up()
        await self.sender.start()  # unsent rows of the last run go out on its first pass

    async def stop(self) -> None:
        await self.notifier.stop()
        await self.sender.stop()
