"""Call control for connected calls (MISSION M17): hang up, hold, DTMF, recording,
transfer, and a supervisor's listen / whisper / barge.

An agent controls the calls they are on; supervisors and above any call of their
tenant, and only they may monitor. A step the call's state does not allow is 409.
Every change is also sent as a `callstate` event on `/events`.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, model_validator

from telportal.api.deps import PlatformDep, ScopeDep
from telportal.api.paths import API_PREFIX
from telportal.api.resource_routes import ERRORS
from telportal.errors import Conflict, Forbidden, Invalid, NotFound
from telportal.media import MixRole
from telportal.media.errors import MediaError
from telportal.signaling.live_calls import CallControlError, LiveCall, LiveCalls
from telportal.tenancy.roles import Role, Scope

CallId = Annotated[str, Path(max_length=255, description="The call's SIP Call-ID")]


class Dtmf(BaseModel):
    model_config = ConfigDict(extra="forbid")

    digits: str = Field(pattern=r"^[0-9*#A-D]{1,32}$")


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str = Field(pattern=r"^[0-9]{2,32}$", description="An extension of the tenant")


class BlindTransfer(BaseModel):
    """Exactly one of an extension (`to`) or an outside `number` (through the trunk)."""

    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(None, pattern=r"^[0-9]{2,32}$", description="An extension")
    number: str | None = Field(None, pattern=r"^\+?[0-9]{3,32}$", description="An outside number")
    queue: str | None = Field(None, min_length=1, max_length=100, description="A queue's name")

    @model_validator(mode="after")
    def _one(self) -> "BlindTransfer":
        if sum(v is not None for v in (self.to, self.number, self.queue)) != 1:
            raise ValueError("give exactly one of to (an extension), number or queue")
        return self


class MonitorRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["listen", "whisper", "barge"]


class LiveCallOut(BaseModel):
    call_id: str
    caller: str
    queue: str | None
    agent_id: str | None
    agent_extension: str
    held: bool
    caller_held: bool = Field(
        description="The caller's phone holds the call; the agent hears music"
    )
    recording: bool
    recording_paused: bool
    monitors: list[dict[str, str]]
    consulting: str | None = Field(None, description="The extension being consulted")
    transfers: list[dict[str, str]]


def _out(call: LiveCall) -> LiveCallOut:
    return LiveCallOut(
        call_id=call.call_id,
        caller=call.caller,
        queue=call.queue,
        agent_id=call.agent_id,
        agent_extension=call.agent.extension,
        held=call.held,
        caller_held=call.caller_held,
        recording=call.recording is not None,
        recording_paused=call.recording_paused,
        monitors=[
            {"user_id": m.user_id, "extension": m.extension, "mode": m.mode.value}
            for m in call.monitors.values()
        ],
        consulting=call.consult.extension if call.consult else None,
        transfers=list(call.transfers),
    )


def _calls(platform: Any) -> LiveCalls:
    if platform.sip is None:
        raise NotFound("SIP on this site")
    calls: LiveCalls = platform.sip.live_calls
    return calls


def _visible(scope: Scope, call: LiveCall) -> bool:
    return scope.role.at_least(Role.SUPERVISOR) or call.agent_id == scope.actor_id


def _call(platform: Any, scope: Scope, call_id: str) -> LiveCall:
    if scope.tenant_id is None:
        raise Invalid("tenant", "calls belong to a tenant: use a tenant user's token")
    call = _calls(platform).get(scope.tenant_id, call_id)
    if call is None or not _visible(scope, call):
        raise NotFound("live call")
    return call


async def _do(action: Any) -> None:
    try:
        await action
    except (CallControlError, MediaError) as exc:
        # The call changed under the request (it ended, a leg went away).
        raise Conflict(str(exc)) from None


def live_call_router() -> APIRouter:
    router = APIRouter(prefix=f"{API_PREFIX}/live-calls", tags=["call control"], responses=ERRORS)

    @router.get("", response_model=list[LiveCallOut], summary="Calls connected to agents now")
    async def list_calls(platform: PlatformDep, scope: ScopeDep) -> Any:
        if scope.tenant_id is None:
            return []
        calls = _calls(platform).of_tenant(scope.tenant_id)
        return [_out(c) for c in calls if _visible(scope, c)]

    @router.get("/{call_id}", response_model=LiveCallOut, summary="One connected call")
    async def get_call(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        return _out(_call(platform, scope, call_id))

    @router.post("/{call_id}/hangup", status_code=204, summary="Hang up")
    async def hangup(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> None:
        call = _call(platform, scope, call_id)
        by = "agent" if call.agent_id == scope.actor_id else "system"
        await _do(_calls(platform).hangup(call, by))

    @router.post("/{call_id}/hold", response_model=LiveCallOut, summary="Hold (caller hears music)")
    async def hold(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).hold(call))
        return _out(call)

    @router.post("/{call_id}/unhold", response_model=LiveCallOut, summary="Take off hold")
    async def unhold(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).unhold(call))
        return _out(call)

    @router.post("/{call_id}/dtmf", response_model=LiveCallOut, summary="Send DTMF to the caller")
    async def dtmf(call_id: CallId, body: Dtmf, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).send_dtmf(call, body.digits))
        return _out(call)

    @router.post(
        "/{call_id}/recording/pause", response_model=LiveCallOut, summary="Pause the recording"
    )
    async def pause(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).pause_recording(call))
        return _out(call)

    @router.post(
        "/{call_id}/recording/resume", response_model=LiveCallOut, summary="Resume the recording"
    )
    async def resume(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).resume_recording(call))
        return _out(call)

    @router.post(
        "/{call_id}/monitor", response_model=LiveCallOut, summary="Listen, whisper or barge"
    )
    async def monitor(
        call_id: CallId, body: MonitorRequest, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        """The supervisor's own phone rings; once answered they join in `mode`. Asked
        again with another mode, their role changes at once."""
        if not scope.role.at_least(Role.SUPERVISOR):
            raise Forbidden("only supervisors monitor calls")
        call = _call(platform, scope, call_id)
        user = None
        if scope.actor_id is not None:
            for entry in _extensions(platform, call.tenant_id):
                if entry.user_id == scope.actor_id:
                    user = entry
        if user is None:
            raise Invalid("supervisor", "monitoring needs a supervisor with a phone extension")
        await _do(_calls(platform).monitor(call, user.user_id, user.extension, MixRole(body.mode)))
        return _out(call)

    _add_transfer_routes(router)
    return router


def _add_transfer_routes(router: APIRouter) -> None:
    """Blind and attended transfer, and conferences."""

    @router.post("/{call_id}/transfer", response_model=LiveCallOut, summary="Blind transfer")
    async def transfer(
        call_id: CallId, body: BlindTransfer, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        """Rings the extension (`to`) or the outside `number` through the tenant's trunk;
        when it answers it replaces the agent (409 if it does not, or no trunk). With
        `queue` the agent leaves at once and the caller waits in that queue."""
        call = _call(platform, scope, call_id)
        if body.to is not None:
            await _extension(platform, call, body.to)
            await _do(_calls(platform).transfer(call, body.to))
        elif body.queue is not None:
            if platform.acd is None or platform.acd.queue(call.tenant_id, body.queue) is None:
                raise NotFound("queue")
            await _do(_calls(platform).transfer_to_queue(call, body.queue))
        else:
            assert body.number is not None
            await _do(_calls(platform).transfer(call, body.number, outside=True))
        return _out(call)

    @router.post(
        "/{call_id}/consult", response_model=LiveCallOut, summary="Attended transfer: consult"
    )
    async def consult(
        call_id: CallId, body: Transfer, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        """The caller holds (music) while the extension rings and then talks to the agent."""
        call = _call(platform, scope, call_id)
        await _extension(platform, call, body.to)
        await _do(_calls(platform).consult(call, body.to))
        return _out(call)

    @router.post(
        "/{call_id}/complete-transfer",
        response_model=LiveCallOut,
        summary="Attended transfer: complete",
    )
    async def complete(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).complete_transfer(call))
        return _out(call)

    @router.post(
        "/{call_id}/cancel-consult", response_model=LiveCallOut, summary="Attended transfer: cancel"
    )
    async def cancel(call_id: CallId, platform: PlatformDep, scope: ScopeDep) -> Any:
        call = _call(platform, scope, call_id)
        await _do(_calls(platform).cancel_consult(call))
        return _out(call)

    @router.post("/{call_id}/conference", response_model=LiveCallOut, summary="Add a third party")
    async def conference(
        call_id: CallId, body: Transfer, platform: PlatformDep, scope: ScopeDep
    ) -> Any:
        call = _call(platform, scope, call_id)
        await _extension(platform, call, body.to)
        await _do(_calls(platform).conference(call, body.to))
        return _out(call)


async def _extension(platform: Any, call: LiveCall, extension: str) -> None:
    if not any(u.extension == extension for u in _extensions(platform, call.tenant_id)):
        raise NotFound("extension")


def _extensions(platform: Any, tenant_id: str) -> list[Any]:
    return list(platform.sip.directory.users(tenant_id))
