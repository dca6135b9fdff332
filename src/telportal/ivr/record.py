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

    @property
    def digits(self) -> tuple[str, ...]:
        """Every input in order, across the whole path."""
        return tuple(entry for visit in self.path for entry in visit.inputs)
