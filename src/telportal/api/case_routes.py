"""Cases over REST (MISSION M10-M12): open, search, events of the lifecycle, history,
and the tenant's case settings (SLA policies, business calendar, follow-up rules).

Agents open and work cases; settings take a tenant admin. Another tenant's case is
404 on every route. Every change is a `data` event; SLA alerts are `case` events.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, or_, select

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.pages import Page
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS, Limit, Offset
from telportal.api.writes import run_write
from telportal.cases import lifecycle as lc
from telportal.cases.sla import check_policies
from telportal.crm.cases import (
    CaseDesk,
    CaseRules,
    chain,
    dispatch_table,
    follow_up_rule,
    policy,
)
from telportal.errors import DomainError, Forbidden, Invalid
from telportal.ivr.calendar import CalendarSpec
from telportal.store.schema import (
    CallDetailRecord,
    Case,
    CaseEscalation,
    CaseFollowUp,
    CaseHistory,
    CaseSettings,
    CaseTimer,
)
from telportal.store.unit_of_work import UnitOfWork
from telportal.tenancy.roles import Role, Scope

Text = Annotated[str | None, Query(max_length=200)]


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=300)
    description: str = Field("", max_length=20_000)
    category: str = Field("", max_length=100)
    urgency: Literal["low", "normal", "high", "urgent"] = "normal"
    channel: str = Field("", max_length=32)
    service_id: str | None = Field(None, max_length=36)
    customer_id: str | None = Field(None, max_length=36)
    call_id: str | None = Field(
        None, max_length=255, description="The SIP Call-ID of the call the case comes from"
    )
    assignee: str | None = Field(None, max_length=100)


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    number: int
    state: str
    subject: str
    description: str
    category: str
    urgency: str
    channel: str
    service_id: str | None
    customer_id: str | None
    call_record_id: str | None
    department: str
    assignee: str
    first_response_at: datetime | None
    resolved_at: datetime | None
    resolution: str
    satisfaction: int | None
    feedback: str
    closed_at: datetime | None
    reopen_count: int
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    sla: list[dict[str, Any]] = Field(default_factory=list, description="Pending SLA timers")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str | None = Field(None, max_length=100)
    department: str | None = Field(None, max_length=100)
    text: str = Field("", max_length=20_000)
    reason: str = Field("", max_length=500)
    channel: str = Field("", max_length=32)
    resolution: str = Field("", max_length=20_000)
    score: int | None = Field(None, ge=1, le=5)
    outcome: str = Field("", max_length=2000)
    call_id: str | None = Field(
        None, max_length=255, description="note: the call it is about (its Call-ID or record id)"
    )


class BulkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_ids: list[str] = Field(min_length=1, max_length=500)
    event: Literal[
        "assign", "start", "respond", "note", "wait", "customer-replied", "resolve",
        "feedback", "close", "reopen",
    ]  # fmt: skip
    body: EventIn = Field(default_factory=EventIn)


class BulkResult(BaseModel):
    case_id: str
    ok: bool
    state: str | None = None
    error: str | None = None


class HistoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    at: datetime
    actor: str
    event: str
    from_state: str | None
    to_state: str
    details: dict[str, Any]


class EscalationOut(BaseModel):
    case_id: str
    case_number: int
    subject: str
    state: str
    assignee: str
    chain_id: str
    trigger: str
    level: int
    notify: str
    at: datetime


class FollowUpOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    case_id: str
    customer_id: str
    rule_id: str
    channel: str
    due_at: datetime
    state: str


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sla_policies: list[dict[str, Any]] = Field(
        default_factory=list,
        description="{id, service?, category?, urgency?, first_response_minutes, "
        "resolution_minutes, warning_share}",
    )
    calendar: dict[str, Any] = Field(
        default_factory=dict, description="Business hours (the flows' calendar format)"
    )
    follow_ups: list[dict[str, Any]] = Field(
        default_factory=list, description="{id, after_minutes, categories?, urgencies?}"
    )
    escalations: list[dict[str, Any]] = Field(
        default_factory=list,
        description="{id, trigger: unassigned|untouched|first_response_breached|"
        "resolution_breached, steps: [{after_minutes, notify, reassign?}], services?, "
        "categories?, urgencies?}",
    )
    dispatch: dict[str, Any] = Field(
        default_factory=dict,
        description="{rules: [{id, department, assignees, services?, categories?, regions?, "
        "keywords?, min_importance?}], default_department, default_assignees}",
    )


EVENTS = (
    "assign", "start", "respond", "note", "wait", "customer-replied", "resolve",
    "feedback", "close", "reopen",
)  # fmt: skip


def command(name: str, body: EventIn) -> lc.Command:
    if name == "assign":
        if not body.assignee:
            raise Invalid("assignee", "name who the case is assigned to")
        return lc.Assign(body.assignee, body.department)
    if name == "feedback":
        if body.score is None:
            raise Invalid("score", "feedback needs a satisfaction score, 1 to 5")
        return lc.RecordFeedback(body.score, body.outcome)
    simple: dict[str, lc.Command] = {
        "start": lc.Start(),
        "respond": lc.Respond(body.channel, body.text),
        "note": lc.Note(body.text),
        "wait": lc.WaitForCustomer(body.reason),
        "customer-replied": lc.CustomerReplied(body.channel),
        "resolve": lc.Resolve(body.resolution),
        "close": lc.Close(body.reason),
        "reopen": lc.Reopen(body.reason),
    }
    return simple[name]


async def _call_record_id(platform: Any, scope: Scope, call_ref: str) -> str:
    """The tenant's call record with this record id or Call-ID; Invalid when none."""
    async with platform.db.read() as session:
        found = await session.scalar(
            select(CallDetailRecord.id)
            .where(
                CallDetailRecord.tenant_id == _tenant(scope),
                or_(CallDetailRecord.id == call_ref, CallDetailRecord.call_id == call_ref),
            )
            .order_by(CallDetailRecord.started_at.desc())
            .limit(1)
        )
    if found is None:
        raise Invalid("call_id", "no call of this tenant has that id")
    return str(found)


def _tenant(scope: Scope) -> str:
    if scope.tenant_id is None:
        raise Invalid("tenant", "cases belong to a tenant: use a tenant user's token")
    if not scope.role.at_least(Role.AGENT):
        raise Forbidden("cases are for the tenant's staff")
    return scope.tenant_id


async def _out(session: Any, row: Case) -> CaseOut:
    timers = await session.execute(
        select(CaseTimer)
        .where(CaseTimer.case_id == row.id, CaseTimer.fired_at.is_(None))
        .order_by(CaseTimer.fire_at)
    )
    return _answer(row, timers.scalars())


def _answer(row: Case, pending: Iterable[CaseTimer]) -> CaseOut:
    """A case and its pending timers (soonest first) as the API shows them."""
    out = CaseOut.model_validate(row)
    out.sla = [
        {
            "target": t.target,
            "level": t.level,
            "fire_at": t.fire_at.astimezone(UTC),  # as read back: UTC on both databases
            "due_at": t.due_at.astimezone(UTC) if t.due_at else None,
        }
        for t in sorted(pending, key=lambda t: t.fire_at)
    ]
    return out


def case_router(desk: CaseDesk) -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["cases"], responses=ERRORS)

    @router.post("/cases", status_code=201, response_model=CaseOut, summary="Open a case")
    async def open_case(
        body: CaseCreate, request: Request, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        """With `call_id`, the case links that call's record and its caller's customer.
        Retries with the same `Idempotency-Key` get the first answer back."""
        tenant_id = _tenant(scope)

        async def open_one(uow: UnitOfWork) -> CaseOut:
            opened = await desk.open_in(uow, tenant_id, **body.model_dump())
            return _answer(opened.row, opened.timers)

        # One transaction: the answer is made from the rows as written, and sent
        # only once they are committed.
        return await run_write(request, platform, scope, open_one, 201)

    @router.get("/cases", response_model=Page[CaseOut], summary="Search cases")
    async def search(
        platform: PlatformDep,
        scope: ScopeDep,
        state: Text = None,
        assignee: Text = None,
        customer_id: Text = None,
        q: Annotated[
            str | None, Query(max_length=200, description="In subject/description")
        ] = None,
        breached: Annotated[bool | None, Query(description="With a breached SLA target")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> Any:
        tenant_id = _tenant(scope)
        if assignee == "me":  # the signed-in user's own cases (assignees are usernames)
            if scope.actor_kind != "user":
                raise Invalid("assignee", "`me` needs a user's token")
            assignee = scope.actor_name.rsplit("@", 1)[0]
        query = select(Case).where(Case.tenant_id == tenant_id)
        for column, value in ((Case.state, state), (Case.assignee, assignee),
                              (Case.customer_id, customer_id)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        if q:
            like = f"%{q}%"
            query = query.where(or_(Case.subject.ilike(like), Case.description.ilike(like)))
        if breached is not None:
            fired = select(CaseTimer.case_id).where(
                CaseTimer.level == "breach", CaseTimer.fired_at.is_not(None)
            )
            query = query.where(Case.id.in_(fired) if breached else Case.id.not_in(fired))
        async with platform.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await session.execute(
                    query.order_by(Case.number.desc()).limit(limit).offset(offset)
                )
            ).scalars()
            items = [await _out(session, row) for row in rows]
        return Page[CaseOut](items=items, total=int(total or 0), limit=limit, offset=offset)

    @router.get("/cases/{case_id}", response_model=CaseOut, summary="One case")
    async def get_case(case_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        async with platform.db.read() as session:
            return await _out(session, await desk.get(session, _tenant(scope), case_id))

    @router.get(
        "/cases/{case_id}/history", response_model=list[HistoryOut], summary="A case's events"
    )
    async def history(case_id: str, platform: PlatformDep, scope: ScopeDep) -> Any:
        async with platform.db.read() as session:
            row = await desk.get(session, _tenant(scope), case_id)
            entries = await session.execute(
                select(CaseHistory)
                .where(CaseHistory.case_id == row.id)
                .order_by(CaseHistory.version)
            )
            return [HistoryOut.model_validate(e) for e in entries.scalars()]

    @router.post("/cases/bulk", response_model=list[BulkResult], summary="One event, many cases")
    async def bulk(body: BulkIn, scope: ScopeDep) -> Any:
        """Each case on its own: one refused (another tenant's, an illegal step) does not
        stop the others; the answer says what happened to each."""
        tenant_id = _tenant(scope)
        if body.body.call_id is not None:
            raise Invalid("call_id", "a call is named on one case's note, not in bulk")
        results = []
        for case_id in dict.fromkeys(body.case_ids):
            try:
                row = await desk.apply(scope, tenant_id, case_id, command(body.event, body.body))
                results.append(BulkResult(case_id=case_id, ok=True, state=row.state))
            except DomainError as exc:
                results.append(BulkResult(case_id=case_id, ok=False, error=exc.message))
        return results

    @router.get("/follow-ups", response_model=list[FollowUpOut], summary="Follow-up calls")
    async def follow_ups(
        platform: PlatformDep,
        scope: ScopeDep,
        state: Annotated[str, Query(pattern="^(pending|completed|cancelled)$")] = "pending",
        limit: Limit = 50,
    ) -> Any:
        """Calls to make after a resolution (回访), soonest due first."""
        tenant_id = _tenant(scope)
        async with platform.db.read() as session:
            rows = await session.execute(
                select(CaseFollowUp)
                .where(CaseFollowUp.tenant_id == tenant_id, CaseFollowUp.state == state)
                .order_by(CaseFollowUp.due_at)
                .limit(limit)
            )
            return [FollowUpOut.model_validate(r) for r in rows.scalars()]

    for name in EVENTS:
        _event_route(router, desk, name)

    _supervision_routes(router)
    return router


def _supervision_routes(router: APIRouter) -> None:
    """The tenant admin's case settings and the supervisors' escalation inbox."""

    @router.get("/case-escalations", response_model=list[EscalationOut], summary="Escalation inbox")
    async def escalations(platform: PlatformDep, scope: ScopeDep, limit: Limit = 50) -> Any:
        """The steps that came due, newest first: the supervisor's inbox."""
        tenant_id = _tenant(scope)
        if not scope.role.at_least(Role.SUPERVISOR):
            raise Forbidden("the escalation inbox is for supervisors")
        async with platform.db.read() as session:
            rows = await session.execute(
                select(CaseEscalation, Case)
                .join(Case, Case.id == CaseEscalation.case_id)
                .where(CaseEscalation.tenant_id == tenant_id)
                .order_by(CaseEscalation.at.desc())
                .limit(limit)
            )
            return [
                EscalationOut(
                    case_id=c.id, case_number=c.number, subject=c.subject, state=c.state,
                    assignee=c.assignee, chain_id=e.chain_id, trigger=e.trigger,
                    level=e.level, notify=e.notify, at=e.at,
                )
                for e, c in rows.all()
            ]  # fmt: skip

    @router.put("/case-settings", summary="SLA policies, business calendar, follow-up rules")
    async def put_settings(body: SettingsIn, platform: PlatformDep, scope: ScopeDep) -> Any:
        tenant_id = _tenant(scope)
        if not scope.role.at_least(Role.TENANT_ADMIN):
            raise Forbidden("case settings take a tenant admin")
        try:
            if body.calendar:
                CalendarSpec.model_validate(body.calendar)
            check_policies(tenant_id, [policy(tenant_id, p) for p in body.sla_policies])
            for rule in body.follow_ups:
                follow_up_rule(tenant_id, rule)
            dispatch_table(tenant_id, body.dispatch)
            for raw in body.escalations:
                chain(tenant_id, raw)
        except (KeyError, TypeError, ValueError) as exc:
            raise Invalid("settings", f"not valid: {exc}") from None
        async with platform.db.write(scope) as uow:
            row = await uow.session.get(CaseSettings, tenant_id)
            if row is None:
                row = CaseSettings(tenant_id=tenant_id)
                uow.session.add(row)
            row.sla_policies, row.calendar = body.sla_policies, body.calendar
            row.follow_ups, row.updated_at = body.follow_ups, uow.clock.now()
            row.dispatch = body.dispatch
            row.escalations = body.escalations
            await uow.config_changed(tenant_id, "case_settings", tenant_id, "updated", {})
            CaseRules(tenant_id, row)  # one last check, as cases will read them
        return body.model_dump()


def _event_route(router: APIRouter, desk: CaseDesk, name: str) -> None:
    @router.post(
        f"/cases/{{case_id}}/{name}", response_model=CaseOut, summary=f"Case event: {name}"
    )
    async def event(
        case_id: str, platform: PlatformDep, scope: ScopeDep, body: EventIn | None = None
    ) -> Any:
        body = body or EventIn()
        cmd = command(name, body)
        if body.call_id is not None:
            if not isinstance(cmd, lc.Note):
                raise Invalid("call_id", "only a note names a call")
            cmd = lc.Note(cmd.text, await _call_record_id(platform, scope, body.call_id))
        row = await desk.apply(scope, _tenant(scope), case_id, cmd)
        async with platform.db.read() as session:
            return await _out(session, await desk.get(session, row.tenant_id, row.id))
