"""Running a flow without a phone: scripted keys, a fake clock, HTTP from a fixture.

The key script is what the caller presses, in order. Each Collect takes keys from it the
way a phone's keypad buffer would: up to the Collect's `max_digits` (and the terminator
right after them, if there is one), or up to its terminator. Besides the keys 0-9, *, #
and A-D:

    space   the caller pauses: a gather that has keys ends (digit timeout)
    T       the caller says nothing until the timeout
    H       the caller hangs up (when the flow next waits for keys)

When the script runs out, every further Collect times out. Media finishes at once;
timeouts, HTTP timeouts and recordings move the fake clock by their length, so the times
on the path are what a real call would show. Recordings last `recording_seconds`.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from telportal.clock import FakeClock
from telportal.ivr.actions import Action, Collect, HttpRequest, Play, Record, Say
from telportal.ivr.calendar import Calendar
from telportal.ivr.events import (
    CallEnded,
    DigitsEntered,
    Event,
    HttpFailed,
    InputTimedOut,
    MediaFinished,
    RecordingFinished,
)
from telportal.ivr.expr import Value
from telportal.ivr.fixtures import HttpFixture
from telportal.ivr.flow import Flow
from telportal.ivr.interpreter import FlowRun
from telportal.ivr.record import CallInfo, CallRecord, Visit

KEYS = frozenset("0123456789*#ABCD")
MAX_EVENTS = 10_000  # far beyond any flow's step limit; a guard, not a rule


class ScriptError(ValueError):
    """A key script with characters that are neither keys nor T, H or spaces."""


@dataclass(frozen=True, slots=True)
class SimulationResult:
    flow: Flow
    call: CallInfo
    at: datetime
    transcript: tuple[Action | Event, ...]  # actions out and events in, in order
    actions: tuple[Action, ...]
    record: CallRecord
    unused_keys: str

    @property
    def path(self) -> tuple[Visit, ...]:
        return self.record.path

    @property
    def outcome(self) -> str:
        return self.record.outcome

    @property
    def variables(self) -> Mapping[str, Value]:
        return self.record.variables


class _Keypad:
    def __init__(self, script: str) -> None:
        bad = sorted({ch for ch in script if ch not in KEYS and ch not in " THth"})
        if bad:
            raise ScriptError(f"not keys: {''.join(bad)!r} (use 0-9 * # A-D, T, H and spaces)")
        self.rest = script

    def answer(self, collect: Collect) -> tuple[DigitsEntered | InputTimedOut | CallEnded, float]:
        """The caller's answer to `collect`, and how long it took."""
        script = self.rest.lstrip(" ")
        if not script or script[0] in "Tt":
            self.rest = script[1:]
            return InputTimedOut(collect.ref), collect.timeout
        if script[0] in "Hh":
            self.rest = script[1:]
            return CallEnded(), 0.0
        digits: list[str] = []
        i = 0
        terminated = False
        paused = True  # the input ends by the digit timeout unless a rule below ends it
        while i < len(script):
            key = script[i]
            if key in "Hh":
                break
            i += 1
            if key in " Tt":
                break
            if key == collect.terminator:
                terminated, paused = True, False
                break
            digits.append(key)
            if len(digits) == collect.max_digits:
                paused = False
                # A caller who types the terminator after a full input means it for
                # this input, not for the next one.
                if i < len(script) and script[i] == collect.terminator:
                    terminated = True
                    i += 1
                break
        waited = collect.digit_timeout if paused else 0.0
        self.rest = script[i:]
        return DigitsEntered(collect.ref, "".join(digits), terminated), waited


def simulate(
    flow: Flow,
    digits: str,
    caller: str,
    at: datetime,
    http_fixture: Mapping[str, Any] | HttpFixture | None = None,
    *,
    called: str | None = None,
    calendars: Mapping[str, Calendar] | None = None,
    call_id: str = "simulated",
    site: str = "",
    recording_seconds: float = 10.0,
    max_steps: int | None = None,
) -> SimulationResult:
    """Run `flow` for one call at `at` (timezone-aware) with the key script `digits`."""
    if at.tzinfo is None:
        raise ValueError("the simulated time must be timezone-aware")
    keypad = _Keypad(digits)
    fixture = http_fixture if isinstance(http_fixture, HttpFixture) else HttpFixture(http_fixture)
    clock = FakeClock(at)
    number = called if called is not None else (flow.spec.numbers or [""])[0]
    call = CallInfo(flow.tenant, caller, number, call_id, site)
    run = FlowRun(flow, call, clock, calendars=calendars, max_steps=max_steps)
    transcript: list[Action | Event] = []
    actions: list[Action] = []
    pending = run.start()
    for _ in range(MAX_EVENTS):
        transcript.extend(pending)
        actions.extend(pending)
        if run.finished:
            break
        event, took = _answer(pending, keypad, fixture, recording_seconds)
        if event is None:
            break
        clock.advance(took)
        transcript.append(event)
        pending = run.handle(event)
    record = run.record()
    return SimulationResult(flow, call, at, tuple(transcript), tuple(actions), record, keypad.rest)


def _answer(
    actions: list[Action], keypad: _Keypad, fixture: HttpFixture, recording_seconds: float
) -> tuple[Event | None, float]:
    """The event for the action the run waits on (the last one that waits)."""
    for action in reversed(actions):
        if isinstance(action, Play | Say):
            return MediaFinished(action.ref), 0.0
        if isinstance(action, Collect):
            return keypad.answer(action)
        if isinstance(action, HttpRequest):
            answer = fixture.answer(action)
            took = (
                action.timeout
                if isinstance(answer, HttpFailed) and answer.reason == "timeout"
                else 0.0
            )
            return answer, took
        if isinstance(action, Record):
            took = min(recording_seconds, action.max_duration)
            return RecordingFinished(action.ref, f"recording-{action.ref}", took), took
    return None, 0.0
