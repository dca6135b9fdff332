"""The flow checker: every problem in a flow file, with its line and column.

`check_flow` never stops at the first problem. It runs, in order:

1. YAML reading with positions (`yamlsource`): syntax, duplicate keys, aliases;
2. structure (`spec`): the top-level fields, then each step and each calendar on its own,
   so that one broken step does not hide the others. Unknown step types and fields,
   missing fields, bad names, durations, prompts and calendars are found here;
3. meaning: expressions and templates are parsed and type-checked against the flow's
   variables (`variables`); hours steps must name a known calendar; URLs must be http(s);
4. the step graph (`graph`): missing steps, unreachable steps, loops with no way out.

`load_flow` runs the same checks and returns a runnable `Flow`, or raises `FlowInvalid`.
"""

import difflib
import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from telportal.ivr.calendar import Calendar, CalendarSpec
from telportal.ivr.expr import (
    BOOL,
    NUMBER,
    STRING,
    Expr,
    ExprSyntaxError,
    Template,
    Type,
    TypeChecker,
    parse_expr,
    parse_template,
)
from telportal.ivr.expr.types import fits
from telportal.ivr.flow import Flow
from telportal.ivr.graph import StepNode, graph_issues
from telportal.ivr.problems import FlowInvalid, Problem
from telportal.ivr.spec import (
    KEYS_PATTERN,
    NAME_PATTERN,
    NUMBER_PATTERN,
    STEP_TYPES,
    TERMINAL_TYPES,
    VAR_PATTERN,
    BranchStep,
    CallbackStep,
    CaseStep,
    FlowHeader,
    FlowSpec,
    GatherStep,
    HoursStep,
    HttpStep,
    MenuStep,
    PlayStep,
    PromptItem,
    QueueStep,
    SayStep,
    SetStep,
    Step,
    Targets,
    TransferStep,
    VoicemailStep,
    initial_value,
)
from telportal.ivr.variables import flow_variables
from telportal.ivr.yamlsource import Path, SourceMap, load_yaml

_STEP: TypeAdapter[Step] = TypeAdapter(Step)
_TARGET_FIELDS = (
    "next",
    "on_timeout",
    "on_invalid",
    "on_error",
    "open",
    "closed",
    "holiday",
    "else",
    "accepted",
    "declined",
)
_PATTERN_HINTS = {
    NAME_PATTERN: "a name starts with a letter and holds letters, digits, '_' and '-'",
    VAR_PATTERN: "a variable name starts with a letter and holds letters, digits and '_'",
    KEYS_PATTERN: "menu keys are 1 to 4 of 0-9, * and #",
    NUMBER_PATTERN: "a service number is 2 to 20 digits",
}
_SAY_TYPES: dict[str, tuple[Type, ...]] = {
    "number": (NUMBER, STRING),
    "amount": (NUMBER, STRING),
    "digits": (STRING, NUMBER),
    "date": (STRING,),
}


def _all_field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    names: set[str] = set()
    if model in seen:
        return names
    seen.add(model)
    for name, info in model.model_fields.items():
        names.add(info.alias or name)
        for sub in _models_in(info.annotation):
            names |= _all_field_names(sub, seen)
    return names


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]


_FIELD_NAMES = sorted(_all_field_names(FlowSpec, set()))


def check_flow(
    text: str, filename: str = "<flow>", *, calendars: Collection[str] = ()
) -> list[Problem]:
    """Every problem in the flow `text`, sorted by position; empty when the flow is clean.

    `calendars` names the calendars the runner will supply (hours steps may use them
    without defining them in the file).
    """
    return _Checker(text, filename, frozenset(calendars)).run()[0]


def load_flow(text: str, filename: str = "<flow>", *, calendars: Collection[str] = ()) -> Flow:
    """The runnable flow; raises FlowInvalid with every problem if there are any."""
    problems, flow = _Checker(text, filename, frozenset(calendars)).run()
    if problems or flow is None:
        raise FlowInvalid(problems)
    return flow


def load_flow_file(path: str | FilePath, *, calendars: Collection[str] = ()) -> Flow:
    file = FilePath(path)
    return load_flow(file.read_text(encoding="utf-8"), str(path), calendars=calendars)


def load_calendars(text: str, filename: str, default_timezone: str = "UTC") -> dict[str, Calendar]:
    """Calendars supplied to flows by name: a YAML mapping of names to calendar specs."""
    data, source, problems = load_yaml(text, filename)
    found: dict[str, Calendar] = {}
    if isinstance(data, dict):
        for name, raw in data.items():
            try:
                spec = CalendarSpec.model_validate(raw)
            except ValidationError as exc:
                problems += _pydantic_problems(exc, data, source, (name,), f"calendar '{name}': ")
                continue
            found[name] = Calendar.build(name, spec, default_timezone)
    elif data is not None:
        problems.append(source.problem((), "a calendars file maps names to calendars"))
    if problems or data is None:
        raise FlowInvalid(problems)
    return found


def _yaml_path(data: Any, path: Path) -> Path:
    """`path` as written in the YAML: a single prompt item may be written without a list."""
    out: list[str | int] = []
    node = data
    for part in path:
        if part == "[key]":
            continue
        if isinstance(part, int) and not isinstance(node, list):
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _pydantic_problems(
    exc: ValidationError,
    data: Any,
    source: SourceMap,
    base: Path,
    context: str,
    tag: object = None,
) -> list[Problem]:
    """Pydantic's errors as problems at the YAML nodes they are about.

    `tag` is the step type of a discriminated union, which pydantic puts first in `loc`.
    """
    problems = []
    seen: set[tuple[Path, str]] = set()
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if tag is not None and loc and loc[0] == tag:
            loc = loc[1:]
        message = context + _message(error, loc)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            loc = (*loc, "type")
        path = _yaml_path(data, base + loc)
        if kind in ("missing", "union_tag_not_found"):
            problem = source.problem(path[:-1], message, at_key=True)
        else:
            # Rules about a whole step or calendar (loc is empty) point at its name.
            at_key = kind == "extra_forbidden" or not loc or loc[-1] == "[key]"
            problem = source.problem(path, message, at_key=at_key)
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append(problem)
    return problems


def _message(error: ErrorDetails, loc: tuple[str | int, ...]) -> str:  # noqa: PLR0911 - a table
    kind = error["type"]
    names = [part for part in loc if isinstance(part, str) and part != "[key]"]
    field = names[-1] if names else ""
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(field, _FIELD_NAMES, n=1, cutoff=0.7)
        return f"unknown field '{field}'" + (f" (did you mean '{close[0]}'?)" if close else "")
    if kind == "too_short" and loc == ("steps",):
        return "a flow needs at least one step"
    if kind == "missing":
        if field == "prompt":
            return "missing field 'prompt': this step needs something to play"
        return f"missing field '{field}'"
    if kind == "union_tag_invalid":
        return f"unknown step type '{ctx.get('tag')}' (known: {', '.join(STEP_TYPES)})"
    if kind == "union_tag_not_found":
        return f"a step needs a 'type' (one of: {', '.join(STEP_TYPES)})"
    if kind == "string_pattern_mismatch":
        hint = _PATTERN_HINTS.get(str(ctx.get("pattern")), f"it must match {ctx.get('pattern')}")
        return f"bad {'name' if loc and loc[-1] == '[key]' else field} {error['input']!r}: {hint}"
    text = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    text = text[0].lower() + text[1:] if text else text
    return f"{field}: {text}" if field and kind not in ("value_error", "assertion_error") else text


@dataclass(frozen=True, slots=True)
class _Site:
    """An expression or template inside a step."""

    path: Path  # relative to the step
    source: str
    kind: Literal["expr", "template", "url"]
    expected: tuple[Type, ...] = ()  # empty: any type


def _prompt_sites(field: str, items: list[PromptItem] | None) -> list[_Site]:
    return [
        _Site((field, i, "speech"), item.speech, "template")
        for i, item in enumerate(items or [])
        if item.speech is not None
    ]


def _sites(step: Step) -> list[_Site]:  # noqa: PLR0911 - one short case per step type
    if isinstance(step, PlayStep):
        return _prompt_sites("prompt", step.prompt)
    if isinstance(step, MenuStep | GatherStep):
        sites = [*_prompt_sites("prompt", step.prompt), *_prompt_sites("invalid", step.invalid)]
        sites += _prompt_sites("no_input", step.no_input)
        if isinstance(step, GatherStep) and step.validate_ and step.validate_.condition:
            sites.append(
                _Site(("validate", "condition"), step.validate_.condition, "expr", (BOOL,))
            )
        return sites
    if isinstance(step, SayStep):
        return [_Site(("value",), step.value, "expr", _SAY_TYPES[step.as_])]
    if isinstance(step, SetStep):
        return [_Site(("vars", var), source, "expr") for var, source in step.vars.items()]
    if isinstance(step, BranchStep):
        return [
            _Site(("cases", i, "when"), c.when, "expr", (BOOL,)) for i, c in enumerate(step.cases)
        ]
    if isinstance(step, HttpStep):
        sites = [_Site(("url",), step.url, "url")]
        sites += [_Site(("headers", k), v, "template") for k, v in step.headers.items()]
        return sites + [_Site(("body", k), v, "expr") for k, v in (step.body or {}).items()]
    if isinstance(step, QueueStep):
        return [_Site(("priority",), step.priority, "expr", (NUMBER,))]
    if isinstance(step, TransferStep):
        kind, target = step.target
        return [_Site((kind,), target, "template")]
    if isinstance(step, VoicemailStep | CaseStep):
        sites = [_Site(("subject",), step.subject, "template")]
        sites += [_Site(("fields", k), v, "expr") for k, v in step.fields.items()]
        if isinstance(step, VoicemailStep):
            sites += _prompt_sites("prompt", step.prompt)
        return sites
    if isinstance(step, CallbackStep):
        return [
            *_prompt_sites("prompt", step.prompt),
            _Site(("number",), step.number, "expr", (STRING,)),
        ]
    return []


def _raw_targets(raw: Any) -> Targets:
    """Step names in a step that failed validation, so the graph stays as written."""
    found: Targets = []
    if not isinstance(raw, dict):
        return found
    for field in _TARGET_FIELDS:
        if isinstance(raw.get(field), str):
            found.append(((field,), raw[field]))
    options = raw.get("options")
    if isinstance(options, dict):
        found += [(("options", k), v) for k, v in options.items() if isinstance(v, str)]
    cases = raw.get("cases")
    if isinstance(cases, list):
        for i, case in enumerate(cases):
            if isinstance(case, dict) and isinstance(case.get("goto"), str):
                found.append((("cases", i, "goto"), case["goto"]))
    return found


class _Checker:
    def __init__(self, text: str, filename: str, external: frozenset[str]) -> None:
        self.text = text
        self.filename = filename
        self.external = external
        self.data: Any = None
        self.source = SourceMap(filename)
        self.problems: list[Problem] = []
        self.exprs: dict[str, Expr] = {}
        self.templates: dict[str, Template] = {}

    def fail(self, path: Path, message: str, *, at_key: bool = False, offset: int = 0) -> None:
        where = _yaml_path(self.data, path)
        self.problems.append(self.source.problem(where, message, at_key=at_key, offset=offset))

    def run(self) -> tuple[list[Problem], Flow | None]:
        self.data, self.source, self.problems = load_yaml(self.text, self.filename)
        if self.data is None:
            return sorted(self.problems), None
        if not isinstance(self.data, dict):
            self.fail((), "a flow is a mapping with the keys flow, tenant and steps")
            return sorted(self.problems), None
        header = self._validate(FlowHeader, self.data, (), "")
        found_steps = self.data.get("steps")
        raw_steps: dict[str, Any] = found_steps if isinstance(found_steps, dict) else {}
        raw_calendars = self.data.get("calendars")
        steps = {name: self._step(name, raw) for name, raw in raw_steps.items()}
        calendars: dict[str, CalendarSpec | None] = {}
        if isinstance(raw_calendars, dict):
            for name, raw in raw_calendars.items():
                context = f"calendar '{name}': "
                calendars[name] = self._validate(CalendarSpec, raw, ("calendars", name), context)
        valid = {name: step for name, step in steps.items() if step is not None}
        variables = self._variables(valid)
        for name, step in valid.items():
            self._meaning(name, step, variables, calendars)
        self._graph(raw_steps, steps)
        if self.problems or header is None:
            return sorted(set(self.problems)), None
        return [], self._flow(valid, calendars, variables)

    def _validate(self, model: type[Any], raw: Any, base: Path, context: str) -> Any:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            self.problems += _pydantic_problems(exc, self.data, self.source, base, context)
            return None

    def _step(self, name: str, raw: Any) -> Step | None:
        context = f"step '{name}': "
        if not isinstance(raw, dict):
            self.fail(("steps", name), f"{context}a step is a mapping with a type and its fields")
            return None
        try:
            return _STEP.validate_python(raw)
        except ValidationError as exc:
            errors = exc.errors()
            base: Path = ("steps", name)
            tag = raw.get("type")
            self.problems += _pydantic_problems(exc, self.data, self.source, base, context, tag)
            # Unknown fields alone should not hide the step's other problems: check it again
            # without them, so its expressions and graph are still examined.
            extras = {
                str(e["loc"][-1])
                for e in errors
                if e["type"] == "extra_forbidden" and tuple(e["loc"][:-1]) == (tag,)
            }
            if extras and len(extras) == len(errors):
                try:
                    return _STEP.validate_python({k: v for k, v in raw.items() if k not in extras})
                except ValidationError:
                    return None
            return None

    def _parse(self, source: str) -> Expr | None:
        if source in self.exprs:
            return self.exprs[source]
        try:
            expr = parse_expr(source)
        except ExprSyntaxError:
            return None
        self.exprs[source] = expr
        return expr

    def _variables(self, steps: Mapping[str, Step]) -> dict[str, Type]:
        initial: dict[str, Any] = {}
        raw_vars = self.data.get("vars")
        if isinstance(raw_vars, dict):
            for name, value in raw_vars.items():
                try:
                    initial[name] = initial_value(value)
                except ValueError:
                    continue
        types, conflicts = flow_variables(initial, steps, self._parse)
        for conflict in conflicts:
            line = self.source.value(_yaml_path(self.data, conflict.earlier_path)).line
            self.fail(
                conflict.path,
                f"{conflict.name} is a {conflict.found} here but a {conflict.earlier}"
                f" at line {line}",
            )
        return types

    def _meaning(
        self,
        name: str,
        step: Step,
        variables: Mapping[str, Type],
        calendars: Mapping[str, CalendarSpec | None],
    ) -> None:
        base: Path = ("steps", name)
        context = f"step '{name}': "
        for site in _sites(step):
            self._site(base + site.path, site, variables, context)
        known = {*calendars, *self.external}
        if isinstance(step, HoursStep) and step.calendar not in known:
            hint = f" (known: {', '.join(sorted(known))})" if known else ""
            self.fail(
                (*base, "calendar"),
                f"{context}unknown calendar '{step.calendar}': define it under 'calendars'"
                f" or supply it to the flow{hint}",
            )

    def _site(self, path: Path, site: _Site, variables: Mapping[str, Type], context: str) -> None:
        if site.kind == "expr":
            try:
                expr = parse_expr(site.source)
            except ExprSyntaxError as exc:
                self.fail(path, f"{context}syntax error: {exc.message}", offset=exc.offset)
                return
            self.exprs[site.source] = expr
            self._types(path, expr, 0, site.expected, variables, context)
            return
        try:
            template = parse_template(site.source)
        except ExprSyntaxError as exc:
            self.fail(path, f"{context}syntax error: {exc.message}", offset=exc.offset)
            return
        self.templates[site.source] = template
        for hole in template.holes:
            self._types(path, hole.expr, hole.offset, (), variables, context)
        if site.kind == "url" and not template.literal_prefix.startswith(("http://", "https://")):
            self.fail(path, f"{context}the url must start with http:// or https://")

    def _types(
        self,
        path: Path,
        expr: Expr,
        offset: int,
        expected: tuple[Type, ...],
        variables: Mapping[str, Type],
        context: str,
    ) -> None:
        checker = TypeChecker(variables)
        found = checker.check(expr)
        for issue in checker.issues:
            self.fail(path, context + issue.message, offset=offset + issue.offset)
        if expected and not checker.issues and not any(fits(found, t) for t in expected):
            wanted = " or a ".join(str(t) for t in expected)
            self.fail(
                path,
                f"{context}expected a {wanted} here, but this is a {found}",
                offset=offset + expr.offset,
            )

    def _graph(self, raw_steps: Mapping[str, Any], steps: Mapping[str, Step | None]) -> None:
        if not raw_steps:
            return
        nodes: dict[str, StepNode] = {}
        for name, step in steps.items():
            if step is None:
                nodes[name] = StepNode(name, _raw_targets(raw_steps[name]), False, known=False)
            else:
                ends = step.type in TERMINAL_TYPES or step.may_end_call
                nodes[name] = StepNode(name, step.targets(), ends)
        raw_start = self.data.get("start")
        start = raw_start if isinstance(raw_start, str) else next(iter(raw_steps))
        for issue in graph_issues(nodes, start, ("start",)):
            self.fail(issue.path, issue.message, at_key=issue.at_key)

    def _flow(
        self,
        steps: Mapping[str, Step],
        calendars: Mapping[str, CalendarSpec | None],
        variables: Mapping[str, Type],
    ) -> Flow:
        spec = FlowSpec.model_validate(self.data)
        built = {
            name: Calendar.build(name, cal, spec.timezone)
            for name, cal in calendars.items()
            if cal is not None
        }
        needed = frozenset(
            step.calendar
            for step in steps.values()
            if isinstance(step, HoursStep) and step.calendar not in built
        )
        digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return Flow(
            spec=spec,
            filename=self.filename,
            digest=digest,
            calendars=built,
            external_calendars=needed,
            exprs=dict(self.exprs),
            templates=dict(self.templates),
            variables=dict(variables),
        )
