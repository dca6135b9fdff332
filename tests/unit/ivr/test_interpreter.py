"""The interpreter as a state machine: refs, ignored events, the clock, limits, records."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from telportal.clock import FakeClock
from telportal.ivr import (
    CallEnded,
    CallInfo,
    Collect,
    CreateCase,
    DigitsEntered,
    FlowRun,
    Hangup,
    InputTimedOut,
    MediaFinished,
    Play,
    Queue,
    Record,
    RecordingFinished,
    SpeechPrompt,
    load_flow,
)
from telportal.ivr.calendar import Calendar, CalendarSpec
from tests.unit.ivr.support import MONDAY_10, flow_text, make_flow, run

MENU = """
steps:
  hello:
    type: play
    prompt: Hello.
    next: menu
  menu:
    type: menu
    prompt: Press 1.
    options: {"1": sales}
    on_timeout: sales
    on_invalid: sales
  sales:
    type: queue
    queue: sales
"""
CALL = CallInfo("acme", "13800000000", "4008001000", "call-1", "shanghai")


def start(body: str = MENU, clock: FakeClock | None = None) -> FlowRun:
    return FlowRun(make_flow(body), CALL, clock or FakeClock(MONDAY_10))


def test_a_run_is_driven_by_answers_with_matching_refs() -> None:
    run = start()
    assert run.start() == [Play(1, (SpeechPrompt("Hello.", "en"),), False)]
    assert run.waiting_for == 1
    actions = run.handle(MediaFinished(1))
    assert actions == [Collect(2, (SpeechPrompt("Press 1.", "en"),), 1, None, 5.0, 2.0)]
    assert run.handle(DigitsEntered(2, "1")) == [Queue("acme", "call-1", "sales", 0, (), None)]
    assert run.finished
    assert run.outcome == "queue sales"


def test_answers_that_do_not_match_are_ignored() -> None:
    run = start()
    run.start()
    assert run.handle(MediaFinished(7)) == []  # a ref never issued
    assert run.handle(DigitsEntered(1, "1")) == []  # the right ref, the wrong kind
    assert run.handle(InputTimedOut(1)) == []
    assert run.ignored == 3
    assert run.handle(MediaFinished(1)) != []
    assert run.handle(MediaFinished(1)) == []  # a duplicate
    assert run.ignored == 4


def test_nothing_happens_before_start_or_after_the_end() -> None:
    run = start()
    assert run.handle(MediaFinished(1)) == []
    run.start()
    with pytest.raises(RuntimeError, match="already started"):
        run.start()
    run.handle(CallEnded())
    assert run.finished
    assert run.handle(MediaFinished(1)) == []
    assert run.outcome == "caller hung up"


def test_the_caller_hanging_up_ends_the_run_without_actions() -> None:
    run = start()
    run.start()
    run.handle(MediaFinished(1))
    assert run.handle(CallEnded()) == []
    assert run.finished
    assert [(v.step, v.outcome) for v in run.path] == [("hello", ""), ("menu", "caller hung up")]


def test_a_flow_runs_only_for_its_own_tenant() -> None:
    with pytest.raises(ValueError, match="another tenant"):
        FlowRun(make_flow(MENU), CallInfo("globex", "1", "2"), FakeClock())


def test_calendars_named_but_not_defined_must_be_supplied() -> None:
    body = """
    steps:
      h:
        type: hours
        calendar: shared
        open: end
        closed: end
      end:
        type: hangup
    """
    flow = load_flow(flow_text(body), "t.yaml", calendars={"shared"})
    with pytest.raises(ValueError, match="needs the calendars shared"):
        FlowRun(flow, CALL, FakeClock())
    calendar = Calendar.build("shared", CalendarSpec.model_validate({"weekly": {"mon": "24h"}}))
    run = FlowRun(flow, CALL, FakeClock(MONDAY_10), calendars={"shared": calendar})
    assert run.start() == [Hangup("completed")]
    assert run.path[0].outcome == "open (weekly hours)"


def test_the_path_records_steps_times_and_keys_from_the_injected_clock() -> None:
    clock = FakeClock(MONDAY_10)
    run = start(clock=clock)
    run.start()
    clock.advance(2.5)  # the greeting takes 2.5 s
    run.handle(MediaFinished(1))
    clock.advance(4)
    run.handle(DigitsEntered(2, "7"))
    clock.advance(1)
    run.handle(DigitsEntered(3, "1"))
    record = run.record()
    assert [(v.step, v.elapsed, v.inputs, v.outcome) for v in record.path] == [
        ("hello", 0.0, (), ""),
        ("menu", 2.5, ("7", "1"), "option 1"),
        ("sales", 7.5, (), "priority 0"),
    ]
    assert record.path[1].at == MONDAY_10 + timedelta(seconds=2.5)
    assert (record.flow, record.version, record.tenant, record.call_id) == (
        "t",
        "1",
        "acme",
        "call-1",
    )
    assert len(record.digest) == 12
    assert record.digits == ("7", "1")
    assert record.started_at == MONDAY_10


def test_the_step_limit_stops_a_runaway_loop_with_a_safe_hangup() -> None:
    body = """
    max_steps: 25
    vars: {n: 0}
    steps:
      count:
        type: set
        vars: {n: vars.n + 1}
        next: check
      check:
        type: branch
        cases:
          - when: vars.n > 1000
            goto: done
        else: count
      done:
        type: hangup
    """
    run = start(body)
    assert run.start() == [Hangup("step_limit")]
    assert run.outcome == "hangup step_limit"
    assert len(run.path) == 25
    assert run.variables["n"] == Decimal(13)
    assert run.path[-1].notes == ("step limit of 25 reached before 'check'",)


def test_the_runner_may_set_a_lower_step_limit() -> None:
    # Every "1" goes round the menu again; the limit ends it whatever the caller does.
    body = """
    steps:
      menu:
        type: menu
        prompt: Press 1 to hear this again.
        options: {"1": again, "0": out}
      again:
        type: play
        prompt: Again.
        next: menu
      out:
        type: hangup
    """
    result = run(body, "1" * 100, max_steps=9)
    assert result.outcome == "hangup step_limit"
    assert result.actions[-1] == Hangup("step_limit")
    assert len(result.path) == 9


def test_expressions_that_fail_at_run_time_give_null_and_a_note() -> None:
    body = """
    vars: {price: null}
    steps:
      calc:
        type: set
        vars:
          total: vars.price * 2
          half: 1 / 0
        next: check
      check:
        type: branch
        cases:
          - when: vars.total > 10
            goto: big
        else: small
      big:
        type: hangup
        reason: big
      small:
        type: hangup
        reason: small
    """
    result = run(body)
    assert result.outcome == "hangup small"
    assert result.variables["total"] is None
    assert result.path[0].notes == (
        "vars.total: '*' needs numbers, not a null",
        "vars.half: '/' failed: DivisionByZero",
    )
    assert result.path[1].notes == (
        "condition 'vars.total > 10' is false: cannot order a null and a number",
    )


def test_a_recording_interrupted_by_hang_up_still_becomes_a_case() -> None:
    body = """
    steps:
      vm:
        type: voicemail
        prompt: Leave a message.
        next: bye
      bye:
        type: hangup
    """
    run = start(body)
    [record] = run.start()
    assert isinstance(record, Record)
    actions = run.handle(RecordingFinished(record.ref, "rec-9", 12.0))
    assert isinstance(actions[0], CreateCase)
    assert actions[0].recording == "rec-9"
    assert run.handle(CallEnded()) == []


def test_now_variables_use_the_flow_time_zone() -> None:
    body = """
    timezone: Asia/Shanghai
    steps:
      s:
        type: set
        vars:
          stamp: now.date + " " + now.time
          parts: string(now.year) + "-" + string(now.month) + "-" + string(now.day)
          when: string(now.weekday) + "@" + string(now.hour) + ":" + string(now.minute)
        next: end
      end:
        type: hangup
    """
    result = run(body, at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))  # Sunday 23:30 UTC
    assert result.variables == {
        "stamp": "2026-03-02 07:30",
        "parts": "2026-3-2",
        "when": "1@7:30",
    }


def test_runs_of_one_flow_start_alike_and_share_no_variables() -> None:
    # A flow's starting values are made once, when it is loaded; each run takes a copy.
    flow = make_flow(
        """
        vars: {greeting: "hello"}
        steps:
          s:
            type: set
            vars: {greeting: vars.greeting + " again", name: caller}
            next: end
          end:
            type: hangup
        """
    )
    first = FlowRun(flow, CALL, FakeClock(MONDAY_10))
    assert first.variables == {"greeting": "hello", "name": None}
    first.start()
    assert first.variables == {"greeting": "hello again", "name": "13800000000"}
    second = FlowRun(flow, CallInfo("acme", "555", "4008001000", "call-2"), FakeClock(MONDAY_10))
    assert second.variables == {"greeting": "hello", "name": None}
    second.start()
    assert second.variables == {"greeting": "hello again", "name": "555"}
    assert flow.initial_vars == {"greeting": "hello", "name": None}
