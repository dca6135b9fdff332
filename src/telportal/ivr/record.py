"""What a call did in its flow: the flow revision, the path of steps, and how it ended.

The record feeds screen pop (why the caller called: the IVR path), reports and audits.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from telportal.ivr.expr import Value


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The call a flow runs for. The tenant must be the flow's own."""

    tenant: str
    caller: str
    called: str
    call_id: str = ""
    site: str = ""
    # Set when another site handed the call over (a `transfer` to a site): its name,
    # and the flow variables it carried. Only variables this flow declares are taken.
    from_site: str = ""
    carried: Mapping[str, Value] = field(default_factory=dict)

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant: str,
        caller: str,
        called: str,
        call_id: str = "",
        site: str = "",
        from_site: str = "",
        carried: Mapping[str, Value] | None = None,
    ) -> None:
        object.__setattr__(self, "tenant", tenant)
        object.__setattr__(self, "caller", caller)
        object.__setattr__(self, "called", called)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "site", site)
        object.__setattr__(self, "from_site", from_site)
        object.__setattr__(self, "carried", {} if carried is None else carried)


@dataclass(frozen=True, slots=True)
class Visit:
    """One step entered: when, what the caller typed there, and how it went on."""

    step: str
    type: str
    at: datetime
    elapsed: float  # seconds since the call entered the flow
    inputs: tuple[str, ...]  # keys per try, "(timeout)" for silence
    outcome: str
    notes: tuple[str, ...]  # expressions that failed, values that could not be said

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        step: str,
        type: str,
        at: datetime,
        elapsed: float,
        inputs: tuple[str, ...],
        outcome: str,
        notes: tuple[str, ...],
    ) -> None:
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "at", at)
        object.__setattr__(self, "elapsed", elapsed)
        object.__setattr__(self, "inputs", inputs)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "notes", notes)


@dataclass(frozen=True, slots=True)
class CallRecord:
    tenant: str
    call_id: str
    flow: str
    version: str
    digest: str
    caller: str
    called: str
    started_at: datetime
    path: tuple[Visit, ...]
    outcome: str  # "queue sales", "transfer agent 1001", "hangup completed", ...
    variables: Mapping[str, Value]

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        tenant: str,
        call_id: str,
        flow: str,
        version: str,
        digest: str,
        caller: str,
        called: str,
        started_at: datetime,
        path: tuple[Visit, ...],
        outcome: str,
        variables: Mapping[str, Value],
    ) -> None:
        object.__setattr__(self, "tenant", tenant)
        object.__setattr__(self, "call_id", call_id)
        object.__setattr__(self, "flow", flow)
        object.__setattr__(self, "version", version)
        object.__setattr__(self, "digest", digest)
        object.__setattr__(self, "caller", caller)
        object.__setattr__(self, "called", called)
        object.__setattr__(self, "started_at", started_at)
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "outcome", outcome)
        object.__setattr__(self, "variables", variables)

    @property
    def digits(self) -> tuple[str, ...]:
        """Every input in order, across the whole path."""
        return tuple(entry for visit in self.path for entry in visit.inputs)
