"""The variables a flow's expressions can read, and their static types.

Built-in variables describe the call and its surroundings (`caller`, `now.hour`,
`http.status`...). A flow's own variables live under `vars.` and are declared by use:

    vars: (at the top)      the type of the initial value
    gather.into             string (digits as typed)
    http.fields             the declared field type
    set.vars                the type of the expression

A variable must keep one type wherever it is declared; `null` fits any type. Every
`vars.` variable exists from the start of a call, as null unless given a value.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from telportal.ivr.expr import ANY, BOOL, NULL, NUMBER, STRING, Expr, Type, TypeChecker
from telportal.ivr.expr.types import type_from_name, unify
from telportal.ivr.spec import GatherStep, HttpStep, SetStep
from telportal.ivr.yamlsource import Path

BUILTINS: dict[str, Type] = {
    "caller": STRING,
    "called": STRING,
    "tenant": STRING,
    "site": STRING,
    "transfer.from_site": STRING,
    "call.id": STRING,
    "digits": STRING,
    "now.year": NUMBER,
    "now.month": NUMBER,
    "now.day": NUMBER,
    "now.hour": NUMBER,
    "now.minute": NUMBER,
    "now.weekday": NUMBER,
    "now.date": STRING,
    "now.time": STRING,
    "http.status": NUMBER,
    "http.ok": BOOL,
    "http.error": STRING,
}


@dataclass(frozen=True, slots=True)
class Conflict:
    """`name` is declared as `found` at `path` but as `earlier` at `earlier_path`."""

    path: Path
    name: str
    found: Type
    earlier: Type
    earlier_path: Path


def value_type(value: Decimal | str | bool | None) -> Type:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, str):
        return STRING
    return NUMBER


class _Declarations:
    def __init__(self) -> None:
        self.types: dict[str, tuple[Type, Path]] = {}
        self.conflicts: list[Conflict] = []

    def declare(self, name: str, found: Type, path: Path) -> None:
        key = f"vars.{name}"
        if key not in self.types:
            self.types[key] = (found, path)
            return
        earlier, earlier_path = self.types[key]
        joined = unify(earlier, found)
        if joined is None:
            self.conflicts.append(Conflict(path, key, found, earlier, earlier_path))
        else:
            self.types[key] = (joined, earlier_path)


def flow_variables(
    initial: Mapping[str, Decimal | str | bool | None],
    steps: Mapping[str, object],
    parse: Callable[[str], Expr | None],
) -> tuple[dict[str, Type], list[Conflict]]:
    """Every variable with its type, and the declarations that disagree."""
    fixed = _Declarations()
    for name, value in initial.items():
        fixed.declare(name, value_type(value), ("vars", name))
    for step_name, step in steps.items():
        if isinstance(step, GatherStep):
            fixed.declare(step.into, STRING, ("steps", step_name, "into"))
        elif isinstance(step, HttpStep):
            for var, spec in step.fields.items():
                fixed.declare(var, type_from_name(spec.type), ("steps", step_name, "fields", var))
    assignments = [
        (var, source, ("steps", step_name, "vars", var))
        for step_name, step in steps.items()
        if isinstance(step, SetStep)
        for var, source in step.vars.items()
    ]
    # A set may read a variable that a later set declares: infer twice, the second time
    # with the first round's answers, so the order of steps in the file does not matter.
    guess: dict[str, Type] = {f"vars.{var}": ANY for var, _, _ in assignments}
    for _ in range(2):
        env = {**BUILTINS, **guess, **{k: _final(t) for k, (t, _) in fixed.types.items()}}
        found: dict[str, Type] = {}
        for var, source, _ in assignments:
            expr = parse(source)
            typed = TypeChecker(env).check(expr) if expr is not None else ANY
            key = f"vars.{var}"
            found[key] = unify(found.get(key, NULL), typed) or ANY
        guess = found
    result = fixed
    for var, source, path in assignments:
        expr = parse(source)
        env = {**BUILTINS, **{k: _final(t) for k, t in guess.items()}}
        env.update({k: _final(t) for k, (t, _) in fixed.types.items()})
        result.declare(var, TypeChecker(env).check(expr) if expr is not None else ANY, path)
    types = {**BUILTINS, **{k: _final(t) for k, (t, _) in result.types.items()}}
    return types, result.conflicts


def _final(found: Type) -> Type:
    return ANY if found == NULL else found
