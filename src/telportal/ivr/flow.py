"""A flow that passed the checker, ready to run: the spec plus everything precompiled."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from telportal.ivr.calendar import Calendar, zone
from telportal.ivr.expr import Expr, Template, Type, Value
from telportal.ivr.spec import FlowSpec, Step


@dataclass(frozen=True, slots=True)
class Flow:
    spec: FlowSpec
    filename: str
    digest: str  # of the file's text: which exact revision a call ran
    calendars: Mapping[str, Calendar]  # defined in the file
    external_calendars: frozenset[str]  # named by hours steps, supplied by the runner
    exprs: Mapping[str, Expr]  # every expression's source text -> its tree
    templates: Mapping[str, Template]  # every template's text -> its parts
    variables: Mapping[str, Type]
    # What every run of the flow starts from, made once here rather than per call
    # (a run is made for every call the flow answers): each declared `vars.` variable,
    # None unless the spec gives it a value, and the flow's time zone.
    initial_vars: Mapping[str, Value] = field(init=False, repr=False, compare=False)
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        initial: dict[str, Value] = {
            name.removeprefix("vars."): None for name in self.variables if name.startswith("vars.")
        }
        initial.update(self.spec.vars)
        object.__setattr__(self, "initial_vars", initial)
        object.__setattr__(self, "zone", zone(self.spec.timezone))

    @property
    def name(self) -> str:
        return self.spec.flow

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def tenant(self) -> str:
        return self.spec.tenant

    @property
    def start(self) -> str:
        return self.spec.start_step

    def step(self, name: str) -> Step:
        return self.spec.steps[name]
