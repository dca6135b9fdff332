"""A flow that passed the checker, ready to run: the spec plus everything precompiled."""

from collections.abc import Mapping
from dataclasses import dataclass

from telportal.ivr.calendar import Calendar
from telportal.ivr.expr import Expr, Template, Type
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
