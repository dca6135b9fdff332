"""Agents' live state and the queues' live figures (MISSION M8, M16).

An agent changes their own state (sign in, ready, not ready with a reason, sign
out, end wrap-up); supervisors and above may do it for any agent of their tenant
(a supervisor sends an absent agent not ready). `me` stands for the caller's own
user id. Every change is also sent as an `agent` event on `/events`, and queue
figures as `queue` events, for desktops and wallboards.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from telportal.acd import AgentSnapshot, AgentView, QueueSnapshot
from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS
from telportal.center.acd_service import AcdService, AgentInfo
from telportal.errors import Forbidden, Invalid, NotFound
from telportal.tenancy.roles import Role, Scope

AgentId = Annotated[str, Path(max_length=36, description="A user id, or `me`")]


class NotReady(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_ -]+$", examples=["lunch", "training"]
    )


class AgentOut(BaseModel):
    agent_id: str
    username: str
    display_name: str
    extension: str | None
    queues: list[str]
    state: str
    reason: str | None
    reachable: bool
    available: bool = Field(description="Would be offered a contact now")
    calls_today: int
    in_state_seconds: float | None = None
    wrap_up_until: datetime | None = Field(None, description="While wrapping up: when it ends")
    answered: int = 0
    missed: int = 0
    handled: int = 0
    talk_seconds: float = 0.0
    average_handle_seconds: float | None = None


class QueueStatusOut(BaseModel):
    queue_id: str
    name: str
    waiting: int
    ringing: int
    talking: int
    longest_wait_seconds: float
    agents_free: int
    agents_staffed: int
    entered: int
    answered: int
    answered_in_time: int
    abandoned: int
    overflowed: int
    callbacks: int
    service_level_seconds: float
    service_level: float | None = Field(description="Share answered in time, 0-1; null: none yet")
    average_answer_wait_seconds: float | None
    longest_answer_wait_seconds: float


def _acd(platform: Any) -> AcdService:
    if platform.acd is None:
        raise NotFound("ACD on this site")
    acd: AcdService = platform.acd
    return acd


def _tenant(scope: Scope) -> str:
    if scope.tenant_id is None:
        raise Invalid("tenant", "agents belong to a tenant: use a tenant user's token")
    return scope.tenant_id


def _target(scope: Scope, acd: AcdService, agent_id: str) -> AgentInfo:
    tenant_id = _tenant(scope)
    user_id = scope.actor_id if agent_id == "me" else agent_id
    if user_id is None:
        raise Invalid("agent_id", "`me` needs a user's token")
    if user_id != scope.actor_id and not scope.role.at_least(Role.SUPERVISOR):
        raise Forbidden("agents change only their own state")
    info = acd.agent_info(tenant_id, user_id)
    if info is None:
        raise NotFound("agent")
    return info


def _agent_out(acd: AcdService, info: AgentInfo) -> AgentOut:
    view: AgentView | None = None
    snapshot: AgentSnapshot | None = None
    for v in acd.distributor.agents(info.tenant_id):
        if v.agent_id == info.user_id:
            view = v
            snapshot = acd.distributor.agent_snapshot(info.tenant_id, info.user_id)
    names = sorted(q.name for q in acd.queues(info.tenant_id) if q.queue_id in info.queues)
    out = AgentOut(
        agent_id=info.user_id,
        username=info.username,
        display_name=info.display_name,
        extension=info.extension,
        queues=names,
        state=view.state.value if view else "signed_out",
        reason=view.reason if view else None,
        reachable=view.reachable if view else False,
        available=view.available if view else False,
        calls_today=view.calls_today if view else 0,
        wrap_up_until=acd.wrap_up_until(info.tenant_id, info.user_id),
    )
    if snapshot is not None:
        out.in_state_seconds = round(snapshot.in_state_for, 3)
        out.answered, out.missed, out.handled = snapshot.answered, snapshot.missed, snapshot.handled
        out.talk_seconds = round(snapshot.talk_time, 3)
        out.average_handle_seconds = snapshot.average_handle_time
    return out


def _queue_out(acd: AcdService, tenant_id: str, queue_id: str, name: str) -> QueueStatusOut:
    s: QueueSnapshot = acd.queue_snapshot(tenant_id, queue_id)
    return QueueStatusOut(
        queue_id=queue_id,
        name=name,
        waiting=s.waiting,
        ringing=s.ringing,
        talking=s.talking,
        longest_wait_seconds=round(s.longest_wait, 3),
        agents_free=s.agents_free,
        agents_staffed=s.agents_staffed,
        entered=s.entered,
        answered=s.answered,
        answered_in_time=s.answered_in_time,
        abandoned=s.abandoned,
        overflowed=s.overflowed,
        callbacks=s.callbacks,
        service_level_seconds=s.service_level_seconds,
        service_level=s.service_level,
        average_answer_wait_seconds=s.average_answer_wait,
        longest_answer_wait_seconds=round(s.longest_answer_wait, 3),
    )


def agent_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["agents"], responses=ERRORS)

    @router.get("/agents", response_model=list[AgentOut], summary="Agents and their state")
    async def list_agents(platform: PlatformDep, scope: ScopeDep) -> Any:
        """Supervisors see every agent of their tenant; an agent sees themself."""
        acd = _acd(platform)
        tenant_id = _tenant(scope)
        if scope.role.at_least(Role.SUPERVISOR):
            infos = acd.agents(tenant_id)
        else:
            mine = acd.agent_info(tenant_id, scope.actor_id or "")
            infos = [mine] if mine is not None else []
        return [_agent_out(acd, info) for info in infos]

    @router.get("/agents/{agent_id}", response_model=AgentOut, summary="One agent's state")
    async def get_agent(agent_id: AgentId, platform: PlatformDep, scope: ScopeDep) -> Any:
        acd = _acd(platform)
        return _agent_out(acd, _target(scope, acd, agent_id))

    def action(name: str, summary: str) -> None:
        @router.post(f"/agents/{{agent_id}}/{name}", response_model=AgentOut, summary=summary)
        async def act(agent_id: AgentId, platform: PlatformDep, scope: ScopeDep) -> Any:
            acd = _acd(platform)
            info = _target(scope, acd, agent_id)
            if name == "sign-in":
                acd.sign_in(info.tenant_id, info.user_id)
            elif name == "sign-out":
                acd.sign_out(info.tenant_id, info.user_id)
            elif name == "ready":
                acd.ready(info.tenant_id, info.user_id)
            else:
                acd.end_wrap_up(info.tenant_id, info.user_id)
            return _agent_out(acd, info)

    action("sign-in", "Sign in (not ready until `ready`)")
    action("ready", "Ready for contacts")
    action("end-wrap-up", "End wrap-up early")
    action("sign-out", "Sign out")

    @router.post(
        "/agents/{agent_id}/not-ready", response_model=AgentOut, summary="Not ready, with a reason"
    )
    async def not_ready(
        agent_id: AgentId, body: NotReady, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        acd = _acd(platform)
        info = _target(scope, acd, agent_id)
        acd.not_ready(info.tenant_id, info.user_id, body.reason)
        return _agent_out(acd, info)

    @router.post(
        "/agents/{agent_id}/answer",
        response_model=AgentOut,
        summary="Answer the ringing call from the desktop",
        responses={409: {"description": "nothing rings, or the endpoint cannot be answered so"}},
    )
    async def answer(agent_id: AgentId, platform: PlatformDep, scope: ScopeDep) -> Any:
        """The agent's phone is called again and asked to answer by itself (auto-answer
        headers that desk phones honour). A call ringing on a mobile is answered there."""
        acd = _acd(platform)
        info = _target(scope, acd, agent_id)
        if info.user_id != scope.actor_id:
            raise Forbidden("agents answer only their own calls")
        acd.ringing.answer(info.tenant_id, info.user_id)
        return _agent_out(acd, info)

    @router.get(
        "/queues-status", response_model=list[QueueStatusOut], summary="Every queue's live figures"
    )
    async def queues_status(platform: PlatformDep, scope: ScopeDep) -> Any:
        """Now (waiting, longest wait, agents) and today (answered, abandoned, service level)."""
        acd = _acd(platform)
        tenant_id = _tenant(scope)
        if not scope.role.at_least(Role.AGENT):
            raise Forbidden("queue figures are for the tenant's staff")
        return [
            _queue_out(acd, tenant_id, q.queue_id, q.name)
            for q in sorted(acd.queues(tenant_id), key=lambda q: q.name)
        ]

    return router
