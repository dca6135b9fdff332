"""The flow interpreter: one `FlowRun` per call, a pure state machine.

It never touches media, sockets or timers. It returns actions (`actions`) and is fed
events (`events`); the only outside input is the injected clock, read for `now.*`,
calendars and the times on the call's path.

    state            event                               next
    ---------------  ----------------------------------  ---------------------------------
    new              start()                             run steps until one waits
    waiting media    MediaFinished(ref)                  the step's next
    waiting input    DigitsEntered(ref) / InputTimedOut  a choice, another try (Collect
                                                         again), or the last-try branch
    waiting http     HttpResponded(ref) / HttpFailed     next, or on_error
    waiting record   RecordingFinished(ref)              a voicemail case, then next
    not finished     CallEnded                           finished, no actions
    finished         anything                            no actions
    waiting          an answer with another ref or kind  unchanged, no actions (ignored)

Steps that do not wait (set, branch, hours, case) run at once, in the same call to
start() or handle(). Queue, transfer and hangup finish the run.

Robustness rules:
- every step entered counts; entering more than `max_steps` (the flow's, or a lower
  limit the runner sets) ends the run with Hangup("step_limit"), whatever loop the flow
  is in;
- an expression that fails at run time gives null (a condition: false) and a note on the
  path; the call goes on;
- menus and gathers count bad input and silence separately against `retries` and
  `no_input_retries`; after the last try they go to on_invalid / on_timeout, or end the
  call with Hangup("menu_failed") / Hangup("no_input") when those are not given;
- an HTTP answer that is not 2xx, not JSON, too large, or lacks a declared field goes to
  on_error, and no variable changes.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal
from urllib.parse import quote

from telportal.clock import Clock
from telportal.ivr.actions import (
    Action,
    Collect,
    CreateCase,
    FilePrompt,
    Hangup,
    HttpRequest,
    Play,
    PromptPart,
    Queue,
    Record,
    RequestCallback,
    Say,
    SilencePrompt,
    SpeechPrompt,
    TonePrompt,
    Transfer,
)
from telportal.ivr.calendar import Calendar
from telportal.ivr.digit_rules import digits_problem
from telportal.ivr.events import (
    CallEnded,
    DigitsEntered,
    Event,
    HttpFailed,
    HttpResponded,
    InputTimedOut,
    MediaFinished,
    RecordingFinished,
)
from telportal.ivr.expr import EvalError, Hole, Value, evaluate, to_text, truth
from telportal.ivr.expr.values import MAX_TEXT_CHARS
from telportal.ivr.flow import Flow
from telportal.ivr.http_json import BadResponse, json_value, response_fields
from telportal.ivr.record import CallInfo, CallRecord, Visit
from telportal.ivr.spec import (
    BranchStep,
    CallbackStep,
    CaseStep,
    GatherStep,
    HangupStep,
    HoursStep,
    HttpStep,
    MenuStep,
    PlayStep,
    PromptItem,
    QueueStep,
    SayStep,
    SetStep,
    Step,
    TransferStep,
    VoicemailStep,
)
from telportal.ivr.spoken import SayError, say
from telportal.ivr.variables import value_type

MAX_PRIORITY = 100
WaitKind = Literal["media", "input", "http", "record"]
_ANSWERS: dict[WaitKind, tuple[type, ...]] = {
    "media": (MediaFinished,),
    "input": (DigitsEntered, InputTimedOut),
    "http": (HttpResponded, HttpFailed),
    "record": (RecordingFinished,),
}


@dataclass(slots=True)
class _Wait:
    kind: WaitKind
    ref: int
    step: str

    # Written out, not generated: see decision 0021.
    def __init__(self, kind: WaitKind, ref: int, step: str) -> None:
        self.kind = kind
        self.ref = ref
        self.step = step


@dataclass(slots=True)
class _Visit:
    step: str
    type: str
    at_offset: float
    inputs: list[str] = field(default_factory=list)
    outcome: str = ""
    notes: list[str] = field(default_factory=list)

    # Written out, not generated: see decision 0021.
    def __init__(
        self,
        step: str,
        type: str,
        at_offset: float,
        inputs: list[str] | None = None,
        outcome: str = "",
        notes: list[str] | None = None,
    ) -> None:
        self.step = step
        self.type = type
        self.at_offset = at_offset
        self.inputs = [] if inputs is None else inputs
        self.outcome = outcome
        self.notes = [] if notes is None else notes


class FlowRun:
    """The run of one flow for one call; see the module docstring for its rules."""

    def __init__(
        self,
        flow: Flow,
        call: CallInfo,
        clock: Clock,
        *,
        calendars: Mapping[str, Calendar] | None = None,
        max_steps: int | None = None,
    ) -> None:
        if call.tenant != flow.tenant:
            raise ValueError(f"flow {flow.name!r} belongs to another tenant than {call.tenant!r}")
        supplied = dict(calendars or {})
        if flow.external_calendars:
            missing = sorted(name for name in flow.external_calendars if name not in supplied)
            if missing:
                raise ValueError(f"flow {flow.name!r} needs the calendars {', '.join(missing)}")
        self.flow = flow
        self.call = call
        self._clock = clock
        self._calendars = {**supplied, **flow.calendars}
        self._max_steps = min(flow.spec.max_steps, max_steps or flow.spec.max_steps)
        self._zone = flow.zone
        self._vars: dict[str, Value] = dict(flow.initial_vars)
        for name, value in call.carried.items():
            # Another site's flow set these; only what this flow declares, with the same
            # type, is taken, so a sender cannot invent variables or change their kind.
            declared = flow.variables.get(f"vars.{name}")
            if (
                declared is not None
                and value is not None
                and not isinstance(value, tuple)
                and value_type(value) == declared
            ):
                self._vars[name] = value
        self._builtins: dict[str, Value] = {
            "caller": call.caller,
            "called": call.called,
            "tenant": call.tenant,
            "site": call.site,
            "transfer.from_site": call.from_site,
            "call.id": call.call_id,
            "digits": "",
            "http.status": Decimal(0),
            "http.ok": False,
            "http.error": "",
        }
        self._started_mono = clock.monotonic()
        self._started_at = clock.now()
        self._started = False
        self._done = False
        self._outcome = ""
        self._wait: _Wait | None = None
        self._ref = 0
        self._steps_taken = 0
        self._bad = 0
        self._silent = 0
        self._visits: list[_Visit] = []
        self.ignored = 0  # answers that did not match what the run was waiting for

    # -- the public surface ------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._done

    @property
    def waiting_for(self) -> int | None:
        """The ref of the action the run waits on, if any."""
        return self._wait.ref if self._wait is not None else None

    @property
    def outcome(self) -> str:
        return self._outcome

    @property
    def variables(self) -> dict[str, Value]:
        return dict(self._vars)

    @property
    def path(self) -> tuple[Visit, ...]:
        return tuple(
            Visit(
                step=v.step,
                type=v.type,
                at=self._started_at + timedelta(seconds=v.at_offset),
                elapsed=v.at_offset,
                inputs=tuple(v.inputs),
                outcome=v.outcome,
                notes=tuple(v.notes),
            )
            for v in self._visits
        )

    def record(self) -> CallRecord:
        return CallRecord(
            tenant=self.call.tenant,
            call_id=self.call.call_id,
            flow=self.flow.name,
            version=self.flow.version,
            digest=self.flow.digest,
            caller=self.call.caller,
            called=self.call.called,
            started_at=self._started_at,
            path=self.path,
            outcome=self._outcome,
            variables=self.variables,
        )

    def start(self) -> list[Action]:
        if self._started:
            raise RuntimeError("this flow run has already started")
        self._started = True
        actions: list[Action] = []
        self._run(self.flow.start, actions)
        return actions

    def handle(self, event: Event) -> list[Action]:
        if self._done or not self._started:
            return []
        if isinstance(event, CallEnded):
            if self._visits and not self._visits[-1].outcome:
                self._visits[-1].outcome = "caller hung up"
            self._finish("caller hung up")
            return []
        wait = self._wait
        if wait is None or event.ref != wait.ref or not isinstance(event, _ANSWERS[wait.kind]):
            self.ignored += 1
            return []
        self._wait = None
        actions: list[Action] = []
        following = self._answer(self.flow.step(wait.step), event, actions)
        if following is not None:
            self._run(following, actions)
        return actions

    # -- running steps -------------------------------------------------------------------

    def _run(self, name: str, actions: list[Action]) -> None:
        current: str | None = name
        while current is not None and not self._done:
            current = self._enter(current, actions)

    def _enter(self, name: str, actions: list[Action]) -> str | None:
        if self._steps_taken >= self._max_steps:
            self._note(f"step limit of {self._max_steps} reached before '{name}'")
            self._end(Hangup("step_limit"), "hangup step_limit", actions)
            return None
        self._steps_taken += 1
        step = self.flow.step(name)
        self._visits.append(_Visit(name, step.type, self._clock.monotonic() - self._started_mono))
        self._bad = self._silent = 0
        return self._begin(name, step, actions)

    def _begin(self, name: str, step: Step, actions: list[Action]) -> str | None:  # noqa: PLR0911, PLR0912 - one case per step type
        match step:
            case PlayStep():
                ref = self._wait_for("media", name)
                actions.append(Play(ref, self._prompt(step.prompt), step.barge_in))
            case SayStep():
                return self._say(name, step, actions)
            case MenuStep() | GatherStep():
                self._collect(name, step, step.prompt, actions)
            case CallbackStep():
                ref = self._wait_for("input", name)
                prompt = self._prompt(step.prompt)
                actions.append(Collect(ref, prompt, 1, None, step.timeout, step.timeout))
            case SetStep():
                for var, source in step.vars.items():
                    self._vars[var] = self._value(source, f"vars.{var}")
                return step.next
            case BranchStep():
                return self._branch(step)
            case HoursStep():
                return self._hours(step)
            case HttpStep():
                return self._http(name, step, actions)
            case QueueStep():
                self._queue(step, actions)
            case TransferStep():
                self._transfer(step, actions)
            case VoicemailStep():
                ref = self._wait_for("record", name)
                prompt = self._prompt(step.prompt)
                actions.append(Record(ref, prompt, step.beep, step.max_duration, step.terminator))
            case CaseStep():
                actions.append(self._case(step, "ivr", None))
                return step.next
            case HangupStep():
                self._outcome_is(step.reason)
                self._end(Hangup(step.reason), f"hangup {step.reason}", actions)
        return None

    def _answer(self, step: Step, event: Event, actions: list[Action]) -> str | None:  # noqa: PLR0911 - one case per answer
        match step, event:
            case PlayStep() | SayStep(), MediaFinished():
                return step.next
            case MenuStep(), DigitsEntered():
                self._typed(event)
                if event.digits in step.options:
                    self._builtins["digits"] = event.digits
                    self._outcome_is(f"option {event.digits}")
                    return step.options[event.digits]
                return self._retry_bad(step, actions)
            case GatherStep(), DigitsEntered():
                self._typed(event, step.terminator)
                return self._gathered(step, event.digits, actions)
            case MenuStep() | GatherStep(), InputTimedOut():
                self._current.inputs.append("(timeout)")
                return self._retry_silent(step, actions)
            case CallbackStep(), DigitsEntered() | InputTimedOut():
                return self._callback(step, event, actions)
            case HttpStep(), HttpResponded() | HttpFailed():
                return self._http_answer(step, event)
            case VoicemailStep(), RecordingFinished():
                if event.duration >= step.min_duration:
                    actions.append(self._case(step, "voicemail", event.recording))
                    self._outcome_is(f"message of {event.duration:g}s")
                else:
                    self._outcome_is(f"message too short ({event.duration:g}s)")
                return step.next
        raise AssertionError(f"{type(event).__name__} cannot answer a {step.type} step")

    # -- steps that do not wait ----------------------------------------------------------

    def _branch(self, step: BranchStep) -> str:
        for i, case in enumerate(step.cases, start=1):
            if self._condition(case.when):
                self._outcome_is(f"case {i}")
                return case.goto
        self._outcome_is("else")
        return step.else_

    def _hours(self, step: HoursStep) -> str:
        verdict = self._calendars[step.calendar].verdict(self._clock.now())
        self._outcome_is(f"{verdict.status} ({verdict.reason})")
        if verdict.status == "open":
            return step.open
        if verdict.status == "holiday" and step.holiday is not None:
            return step.holiday
        return step.closed

    def _queue(self, step: QueueStep, actions: list[Action]) -> None:
        priority = self._value(step.priority, "priority")
        level = int(priority) if isinstance(priority, Decimal) else 0
        level = max(0, min(MAX_PRIORITY, level))
        call = self.call
        queue = Queue(
            call.tenant, call.call_id, step.queue, level, tuple(step.skills), step.max_wait
        )
        self._outcome_is(f"priority {level}")
        self._end(queue, f"queue {step.queue}", actions)

    def _transfer(self, step: TransferStep, actions: list[Action]) -> None:
        kind, template = step.target
        target = self._render(template).strip()
        if not target:
            self._note(f"the {kind} to transfer to is empty")
            self._end(Hangup("transfer_failed"), "hangup transfer_failed", actions)
            return
        transfer = Transfer(self.call.tenant, self.call.call_id, kind, target)
        self._outcome_is(f"{kind} {target}")
        self._end(transfer, f"transfer {kind} {target}", actions)

    # -- steps that wait -----------------------------------------------------------------

    def _wait_for(self, kind: WaitKind, step: str) -> int:
        """A new ref for an action the run will wait on; the caller emits the action."""
        self._ref += 1
        self._wait = _Wait(kind, self._ref, step)
        return self._ref

    def _collect(
        self,
        name: str,
        step: MenuStep | GatherStep,
        prompt: Sequence[PromptItem],
        actions: list[Action],
    ) -> None:
        if isinstance(step, MenuStep):
            most, terminator = max(len(key) for key in step.options), None
        else:
            most, terminator = step.max_digits, step.terminator
        ref = self._wait_for("input", name)
        parts = self._prompt(prompt)
        actions.append(Collect(ref, parts, most, terminator, step.timeout, step.digit_timeout))

    def _retry_bad(self, step: MenuStep | GatherStep, actions: list[Action]) -> str | None:
        self._bad += 1
        if self._bad <= step.retries:
            again = [*(step.invalid or []), *step.prompt]
            self._collect(self._current.step, step, again, actions)
            return None
        self._outcome_is("invalid")
        if step.on_invalid is not None:
            return step.on_invalid
        self._end(Hangup("menu_failed"), "hangup menu_failed", actions)
        return None

    def _retry_silent(self, step: MenuStep | GatherStep, actions: list[Action]) -> str | None:
        self._silent += 1
        if self._silent <= step.silent_retries:
            again = [*(step.no_input or []), *step.prompt]
            self._collect(self._current.step, step, again, actions)
            return None
        self._outcome_is("timeout")
        if step.on_timeout is not None:
            return step.on_timeout
        self._end(Hangup("no_input"), "hangup no_input", actions)
        return None

    def _gathered(self, step: GatherStep, digits: str, actions: list[Action]) -> str | None:
        problem = digits_problem(digits, step)
        rules = step.validate_
        if problem is None and rules is not None and rules.condition is not None:
            before = self._builtins["digits"]
            self._builtins["digits"] = digits
            if not self._condition(rules.condition):
                problem = "the condition does not hold"
            self._builtins["digits"] = before
        if problem is not None:
            self._note(f"{digits or 'nothing'}: {problem}")
            return self._retry_bad(step, actions)
        self._builtins["digits"] = digits
        self._vars[step.into] = digits
        self._outcome_is("valid")
        return step.next

    def _callback(
        self, step: CallbackStep, event: DigitsEntered | InputTimedOut, actions: list[Action]
    ) -> str:
        if isinstance(event, InputTimedOut):
            self._current.inputs.append("(timeout)")
            self._outcome_is("declined (timeout)")
            return step.declined
        self._typed(event)
        if event.digits != step.accept:
            self._outcome_is("declined")
            return step.declined
        number = to_text(self._value(step.number, "number")).strip()
        if not number:
            self._note("no number to call back")
            self._outcome_is("declined (no number)")
            return step.declined
        actions.append(RequestCallback(self.call.tenant, self.call.call_id, step.queue, number))
        self._outcome_is(f"accepted ({number})")
        return step.accepted

    def _say(self, name: str, step: SayStep, actions: list[Action]) -> str | None:
        value = self._value(step.value, "value")
        language = step.language or self.flow.spec.language
        try:
            spoken = say(value, step.as_, language, step.currency)
        except SayError as exc:
            self._note(f"nothing said: {exc}")
            return step.next
        self._outcome_is(spoken.text)
        ref = self._wait_for("media", name)
        actions.append(Say(ref, spoken.text, spoken.words, language, step.barge_in))
        return None

    def _http(self, name: str, step: HttpStep, actions: list[Action]) -> str | None:
        url = self._render(step.url, in_url=True)
        headers = tuple((key, self._render(value)) for key, value in step.headers.items())
        if any("\r" in v or "\n" in v for _, v in headers):
            return self._http_error(step, "request", "a header value holds a line break")
        body = None
        if step.body is not None:
            document = {
                key: json_value(self._value(source, f"body.{key}"))
                for key, source in step.body.items()
            }
            body = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
            headers = (*headers, ("Content-Type", "application/json"))
        ref = self._wait_for("http", name)
        actions.append(HttpRequest(ref, step.method, url, headers, body, step.timeout))
        return None

    def _http_answer(self, step: HttpStep, event: HttpResponded | HttpFailed) -> str:
        if isinstance(event, HttpFailed):
            self._builtins["http.status"] = Decimal(0)
            return self._http_error(step, event.reason, event.detail)
        self._builtins["http.status"] = Decimal(event.status)
        if not 200 <= event.status < 300:
            return self._http_error(step, "status", f"status {event.status}")
        try:
            values = response_fields(step.fields, event.body) if step.fields else {}
        except BadResponse as exc:
            return self._http_error(step, exc.kind, exc.detail)
        self._vars.update(values)
        self._builtins["http.ok"] = True
        self._builtins["http.error"] = ""
        self._outcome_is(f"status {event.status}")
        return step.next

    def _http_error(self, step: HttpStep, kind: str, detail: str) -> str:
        self._builtins["http.ok"] = False
        self._builtins["http.error"] = kind
        self._outcome_is(f"error: {kind}" + (f" ({detail})" if detail else ""))
        return step.on_error

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _current(self) -> _Visit:
        return self._visits[-1]

    def _outcome_is(self, text: str) -> None:
        self._current.outcome = text

    def _note(self, text: str) -> None:
        if self._visits:
            self._current.notes.append(text)

    def _typed(self, event: DigitsEntered, terminator: str | None = None) -> None:
        shown = event.digits + (terminator or "" if event.terminated else "")
        self._current.inputs.append(shown or "(none)")

    def _end(self, action: Action, outcome: str, actions: list[Action]) -> None:
        actions.append(action)
        self._finish(outcome)

    def _finish(self, outcome: str) -> None:
        self._done = True
        self._wait = None
        self._outcome = outcome

    def _lookup(self, path: tuple[str, ...]) -> Value:
        if path[0] == "vars" and len(path) == 2:
            return self._vars.get(path[1])
        if path[0] == "now" and len(path) == 2:
            return _now_field(self._clock.now().astimezone(self._zone), path[1])
        name = ".".join(path)
        if name in self._builtins:
            return self._builtins[name]
        raise EvalError(f"unknown variable {name}")

    def _value(self, source: str, what: str) -> Value:
        try:
            return evaluate(self.flow.exprs[source], self._lookup)
        except EvalError as exc:
            self._note(f"{what}: {exc}")
            return None

    def _condition(self, source: str) -> bool:
        try:
            return truth(evaluate(self.flow.exprs[source], self._lookup))
        except EvalError as exc:
            self._note(f"condition {source!r} is false: {exc}")
            return False

    def _render(self, text: str, *, in_url: bool = False) -> str:
        pieces: list[str] = []
        for part in self.flow.templates[text].parts:
            if isinstance(part, Hole):
                try:
                    value = to_text(evaluate(part.expr, self._lookup))
                except EvalError as exc:
                    self._note(f"{{...}} in {text!r}: {exc}")
                    value = ""
                pieces.append(quote(value, safe="") if in_url else value)
            else:
                pieces.append(part)
        return "".join(pieces)[:MAX_TEXT_CHARS]

    def _prompt(self, items: Sequence[PromptItem]) -> tuple[PromptPart, ...]:
        parts: list[PromptPart] = []
        for item in items:
            if item.speech is not None:
                language = item.language or self.flow.spec.language
                parts.append(SpeechPrompt(self._render(item.speech), language))
            elif item.file is not None:
                parts.append(FilePrompt(item.file))
            elif item.tone is not None:
                parts.append(TonePrompt(item.tone, item.duration))
            elif item.silence is not None:
                parts.append(SilencePrompt(item.silence))
        return tuple(parts)

    def _case(
        self,
        step: CaseStep | VoicemailStep,
        source: Literal["ivr", "voicemail"],
        recording: str | None,
    ) -> CreateCase:
        fields = {
            key: to_text(self._value(expr, f"fields.{key}")) for key, expr in step.fields.items()
        }
        return CreateCase(
            tenant=self.call.tenant,
            call_id=self.call.call_id,
            subject=self._render(step.subject),
            fields=fields,
            department=step.department,
            urgency=step.urgency,
            source=source,
            recording=recording,
        )


def _now_field(local: datetime, name: str) -> Value:
    numbers = {
        "year": local.year,
        "month": local.month,
        "day": local.day,
        "hour": local.hour,
        "minute": local.minute,
        "weekday": local.isoweekday(),
    }
    if name in numbers:
        return Decimal(numbers[name])
    if name == "date":
        return local.date().isoformat()
    if name == "time":
        return f"{local.hour:02d}:{local.minute:02d}"
    raise EvalError(f"unknown variable now.{name}")
